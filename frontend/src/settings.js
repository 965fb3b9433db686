// The visitor's terminal settings (theme, font size): parsing, persistence in
// localStorage, and the xterm themes. No DOM here, so node tests can import it.

export const STORAGE_KEY = 'playground.settings';

export const FONT_SIZE = Object.freeze({ min: 10, max: 32, step: 2, default: 14, presentation: 22 });

export const THEME_NAMES = Object.freeze(['dark', 'light']);

export const TERMINAL_THEMES = Object.freeze({
  dark: Object.freeze({
    background: '#0d1117',
    foreground: '#e6edf3',
    cursor: '#e6edf3',
    cursorAccent: '#0d1117',
    selectionBackground: 'rgba(56, 139, 253, 0.4)',
    black: '#484f58',
    red: '#ff7b72',
    green: '#3fb950',
    yellow: '#d29922',
    blue: '#58a6ff',
    magenta: '#bc8cff',
    cyan: '#39c5cf',
    white: '#b1bac4',
    brightBlack: '#6e7681',
    brightRed: '#ffa198',
    brightGreen: '#56d364',
    brightYellow: '#e3b341',
    brightBlue: '#79c0ff',
    brightMagenta: '#d2a8ff',
    brightCyan: '#56d4dd',
    brightWhite: '#f0f6fc',
  }),
  // Dark enough colours for a white background, also on a washed-out projector.
  light: Object.freeze({
    background: '#ffffff',
    foreground: '#1f2328',
    cursor: '#1f2328',
    cursorAccent: '#ffffff',
    selectionBackground: 'rgba(9, 105, 218, 0.25)',
    black: '#24292f',
    red: '#cf222e',
    green: '#116329',
    yellow: '#7d4e00',
    blue: '#0550ae',
    magenta: '#8250df',
    cyan: '#1b7c83',
    white: '#6e7781',
    brightBlack: '#57606a',
    brightRed: '#a40e26',
    brightGreen: '#1a7f37',
    brightYellow: '#633c01',
    brightBlue: '#0969da',
    brightMagenta: '#a475f9',
    brightCyan: '#3192aa',
    brightWhite: '#8c959f',
  }),
});

/**
 * Settings as stored: `theme` is 'dark', 'light' or null (follow the system); `fontSize` an
 * integer, or null until the visitor picks one (then it follows the screen: see autoFontSize);
 * `presenting` the large presentation mode, and `sizeBefore` the size to return to after it.
 */
export function defaultSettings() {
  return { theme: null, fontSize: null, presenting: false, sizeBefore: null };
}

/** The font size for a visitor who never chose one: larger on a projector-sized screen. */
export function autoFontSize(screenWidth) {
  return screenWidth >= 1800 ? 18 : FONT_SIZE.default;
}

/** The font size to use: the chosen one, else the one for this screen. */
export function effectiveFontSize(settings, screenWidth) {
  return settings.fontSize === null ? autoFontSize(screenWidth) : clampFontSize(settings.fontSize);
}

/** The change of settings that turns the presentation mode on or off. */
export function presentationChange(settings, on, screenWidth) {
  const current = effectiveFontSize(settings, screenWidth);
  if (on) {
    return { presenting: true, sizeBefore: settings.fontSize,
      fontSize: Math.max(current, FONT_SIZE.presentation) };
  }
  return { presenting: false, sizeBefore: null, fontSize: settings.sizeBefore };
}

export function clampFontSize(size) {
  if (typeof size !== 'number' || !Number.isFinite(size)) return FONT_SIZE.default;
  return Math.min(FONT_SIZE.max, Math.max(FONT_SIZE.min, Math.round(size)));
}

/** Settings from stored text; anything unreadable or out of range falls back to the default. */
export function parseSettings(text) {
  const settings = defaultSettings();
  let stored;
  try {
    stored = JSON.parse(text);
  } catch {
    return settings;
  }
  if (!stored || typeof stored !== 'object') return settings;
  if (THEME_NAMES.includes(stored.theme)) settings.theme = stored.theme;
  if (typeof stored.fontSize === 'number') settings.fontSize = clampFontSize(stored.fontSize);
  if (stored.presenting === true) settings.presenting = true;
  if (typeof stored.sizeBefore === 'number') settings.sizeBefore = clampFontSize(stored.sizeBefore);
  return settings;
}

export function loadSettings(storage = globalThis.localStorage) {
  try {
    return parseSettings(storage ? storage.getItem(STORAGE_KEY) : null);
  } catch {
    return defaultSettings(); // storage disabled (private mode, blocked cookies)
  }
}

export function saveSettings(settings, storage = globalThis.localStorage) {
  try {
    const { theme, fontSize, presenting, sizeBefore } = settings;
    storage?.setItem(STORAGE_KEY, JSON.stringify({ theme, fontSize, presenting, sizeBefore }));
    return true;
  } catch {
    return false;
  }
}

/** 'dark' or 'light': the chosen theme, or the system's preference when none was chosen. */
export function resolveTheme(settings, prefersLight = false) {
  if (THEME_NAMES.includes(settings.theme)) return settings.theme;
  return prefersLight ? 'light' : 'dark';
}

/** The next font size one step up (+1) or down (-1), within bounds. */
export function stepFontSize(size, direction) {
  return clampFontSize(clampFontSize(size) + Math.sign(direction) * FONT_SIZE.step);
}
