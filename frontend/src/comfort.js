// Comfort of the session page: theme (light/dark, the whole page), font size,
// copy on select and paste, a context menu, and search in the scrollback.
//
// Settings apply to every terminal attached with `comfort.attach(term, fit)`
// (one per tab); copy, paste and search act on `active()`, the terminal shown.

import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';

import {
  FONT_SIZE,
  TERMINAL_THEMES,
  effectiveFontSize,
  loadSettings,
  presentationChange,
  resolveTheme,
  saveSettings,
  stepFontSize,
} from './settings.js';
import { LIGHT_QUERY, applyPageTheme, prefersLight } from './theme.js';
import { t } from './i18n.js';

/** Applies `settings` (theme and font size) to one xterm Terminal. */
export function applyTerminalSettings(term, settings, theme = resolveTheme(settings, prefersLight()),
  screenWidth = window.innerWidth) {
  term.options.theme = { ...TERMINAL_THEMES[theme] };
  const size = effectiveFontSize(settings, screenWidth);
  if (term.options.fontSize !== size) term.options.fontSize = size;
}

/** Search highlight colours per theme (the addon wants #RRGGBB). */
const SEARCH_COLOURS = {
  dark: { matchBackground: '#5a4a00', activeMatchBackground: '#b07d00' },
  light: { matchBackground: '#fff1a8', activeMatchBackground: '#ffb000' },
};

function searchOptions(theme) {
  const colours = SEARCH_COLOURS[theme];
  return {
    caseSensitive: false,
    decorations: {
      ...colours,
      matchOverviewRuler: colours.activeMatchBackground,
      activeMatchColorOverviewRuler: colours.activeMatchBackground,
    },
  };
}

/** Copies text to the clipboard; falls back to execCommand where the Clipboard API is absent (plain http). */
export async function copyText(text, doc = document) {
  if (!text) return false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  const focused = doc.activeElement;
  const area = doc.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.cssText = 'position:fixed;top:0;left:0;opacity:0;pointer-events:none';
  doc.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = doc.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  if (focused && typeof focused.focus === 'function') focused.focus();
  return ok;
}

function el(doc, tag, props = {}, children = []) {
  const node = doc.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else if (key.startsWith('aria-') || key === 'role' || key === 'title' || key === 'for')
      node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

function button(doc, id, label, title, cls = 'btn btn-tool') {
  return el(doc, 'button', { id, type: 'button', className: cls, text: label, title, 'aria-label': title });
}

/**
 * Installs the controls (topbar buttons, search bar, context menu) and keyboard shortcuts.
 * `active()` returns the terminal on screen; `toast(message, kind)` tells the visitor something.
 */
export function installComfort({ doc = document, store, active, toast }) {
  const win = doc.defaultView || window;
  const settings = loadSettings();
  const attached = new Map(); // Terminal -> { fit, search }
  const screenWidth = win.innerWidth; // read once: resizing the window does not change the text size
  let theme = applyPageTheme(doc, settings);
  const fontSize = () => effectiveFontSize(settings, screenWidth);

  function applyAll() {
    theme = applyPageTheme(doc, settings);
    doc.documentElement.classList.toggle('is-presenting', settings.presenting);
    for (const [term, entry] of attached) {
      try {
        applyTerminalSettings(term, settings, theme, screenWidth);
        entry.fit?.();
      } catch {
        detach(term); // disposed (its tab was closed) without a detach
      }
    }
    renderControls();
  }

  function update(change) {
    Object.assign(settings, change);
    saveSettings(settings);
    applyAll();
  }

  /**
   * Starts applying the settings to `term`, an opened Terminal (and gives it search,
   * Unicode 11 widths and copy on select). `fit()` refits it after a font size change.
   */
  function attach(term, fit) {
    if (attached.has(term)) return;
    // Unicode 11 widths (emoji take two cells) and search decorations are xterm's "proposed" API.
    term.options.allowProposedApi = true;
    term.loadAddon(new Unicode11Addon());
    term.unicode.activeVersion = '11';
    const search = new SearchAddon({ highlightLimit: 500 });
    term.loadAddon(search);
    const entry = { fit, search };
    attached.set(term, entry);
    const results = search.onDidChangeResults(({ resultIndex, resultCount }) => {
      if (term === active()) showResults(resultIndex, resultCount);
    });
    // Copy on select: when a mouse selection ends (not when search or "Select all" selects).
    const onMouseUp = () => {
      if (term.hasSelection()) copyText(term.getSelection(), doc);
    };
    term.element?.addEventListener('mouseup', onMouseUp);
    const selection = { dispose: () => term.element?.removeEventListener('mouseup', onMouseUp) };
    term.attachCustomKeyEventHandler((event) => handleTerminalKey(event));
    entry.dispose = () => {
      results.dispose();
      selection.dispose();
    };
    applyTerminalSettings(term, settings, theme, screenWidth);
    store.add(() => detach(term));
  }

  /** Stops applying the settings to `term` (before its tab disposes it). */
  function detach(term) {
    const entry = attached.get(term);
    if (!entry) return;
    attached.delete(term);
    try {
      entry.dispose();
    } catch {
      /* already disposed with the terminal */
    }
  }

  // ---- copy and paste ------------------------------------------------------
  async function copySelection() {
    const term = active();
    const text = term ? term.getSelection() : '';
    if (!text) {
      toast(t('comfort.select_first'), 'info');
      return false;
    }
    const ok = await copyText(text, doc);
    if (!ok) toast(t('comfort.copy_denied'), 'warning');
    return ok;
  }

  async function paste() {
    const term = active();
    if (!term) return;
    if (!(navigator.clipboard && navigator.clipboard.readText && win.isSecureContext)) {
      toast(t('comfort.paste_keyboard'), 'info');
      term.focus();
      return;
    }
    try {
      const text = await navigator.clipboard.readText();
      if (text) term.paste(text);
    } catch {
      toast(t('comfort.paste_denied'), 'info');
    }
    term.focus();
  }

  function selectAll() {
    active()?.selectAll();
  }

  // ---- keyboard ------------------------------------------------------------
  /** Shortcut handling inside a terminal; false = xterm must not handle the key. */
  function handleTerminalKey(event) {
    if (event.type !== 'keydown') return !isShortcut(event);
    return !runShortcut(event);
  }

  function isShortcut(event) {
    const key = event.key.toLowerCase();
    if (event.ctrlKey && event.shiftKey && !event.altKey && ['c', 'v', 'f'].includes(key)) return true;
    if (event.shiftKey && !event.ctrlKey && event.key === 'Insert') return true;
    return event.ctrlKey && !event.altKey && ['=', '+', '-', '_', '0'].includes(event.key);
  }

  /** Runs the shortcut `event` names, if any; true when it did. */
  function runShortcut(event) {
    if (!isShortcut(event)) return false;
    const key = event.key.toLowerCase();
    // Keyboard paste is the browser's own (a paste event xterm handles): no permission prompt.
    if (key === 'v' || event.key === 'Insert') return true;
    event.preventDefault();
    if (key === 'c') copySelection();
    else if (key === 'f') openSearch();
    else if (event.key === '0') update({ fontSize: null, presenting: false, sizeBefore: null });
    else update({ fontSize: stepFontSize(fontSize(), ['=', '+'].includes(event.key) ? 1 : -1) });
    return true;
  }

  // Outside the terminal (toolbar, search bar): the page-wide shortcuts only.
  store.listen(doc, 'keydown', (event) => {
    if (event.defaultPrevented || event.target.closest?.('.xterm')) return;
    const key = event.key.toLowerCase();
    const pageWide = (event.ctrlKey && event.shiftKey && key === 'f') ||
      (event.ctrlKey && !event.shiftKey && !event.altKey && ['=', '+', '-', '0'].includes(event.key));
    if (pageWide) runShortcut(event);
  });

  // ---- topbar controls -----------------------------------------------------
  const smaller = button(doc, 'font-smaller', t('comfort.smaller_label'), t('comfort.smaller'));
  const size = el(doc, 'span', { id: 'font-size', className: 'font-size', title: t('comfort.font_size') });
  const bigger = button(doc, 'font-bigger', t('comfort.bigger_label'), t('comfort.bigger'));
  const themeButton = button(doc, 'theme-toggle', '', t('comfort.theme'));
  const presentButton = button(doc, 'present-toggle', t('comfort.present'), t('comfort.present_title'));
  const searchButton = button(doc, 'search-open', t('comfort.search'), t('comfort.search_title'));
  const group = el(doc, 'div', { className: 'tools', role: 'group', 'aria-label': t('comfort.display') },
    [searchButton, smaller, size, bigger, themeButton, presentButton]);
  const anchor = doc.getElementById('conn-state');
  anchor?.parentNode.insertBefore(group, anchor);
  store.add(() => group.remove());
  store.listen(smaller, 'click', () => update({ fontSize: stepFontSize(fontSize(), -1) }));
  store.listen(bigger, 'click', () => update({ fontSize: stepFontSize(fontSize(), 1) }));
  store.listen(themeButton, 'click', () => update({ theme: theme === 'dark' ? 'light' : 'dark' }));
  store.listen(presentButton, 'click', () =>
    update(presentationChange(settings, !settings.presenting, screenWidth)));
  store.listen(searchButton, 'click', () => (searchBar.hidden ? openSearch() : closeSearch()));

  function renderControls() {
    size.textContent = `${fontSize()}px`;
    smaller.disabled = fontSize() <= FONT_SIZE.min;
    bigger.disabled = fontSize() >= FONT_SIZE.max;
    presentButton.setAttribute('aria-pressed', String(settings.presenting));
    // The button names what it does (the other theme); the page itself shows the current one.
    themeButton.textContent = theme === 'dark' ? t('comfort.light') : t('comfort.dark');
    themeButton.title = theme === 'dark' ? t('comfort.to_light') : t('comfort.to_dark');
    themeButton.setAttribute('aria-label', themeButton.title);
  }

  // A system theme change is followed until the visitor picks one.
  const media = win.matchMedia ? win.matchMedia(LIGHT_QUERY) : null;
  if (media) store.listen(media, 'change', () => settings.theme === null && applyAll());

  // ---- search --------------------------------------------------------------
  const input = el(doc, 'input', {
    id: 'search-input', type: 'search', placeholder: t('comfort.search'), autocomplete: 'off', spellcheck: false,
    'aria-label': t('comfort.search_label'),
  });
  const count = el(doc, 'span', { id: 'search-count', className: 'search-count', 'aria-live': 'polite' });
  const prev = button(doc, 'search-prev', '\u2191', t('comfort.prev'), 'btn btn-icon');
  const next = button(doc, 'search-next', '\u2193', t('comfort.next'), 'btn btn-icon');
  const close = button(doc, 'search-close', '\u00d7', t('comfort.close_search'), 'btn btn-icon');
  const searchBar = el(doc, 'div', { id: 'search-bar', className: 'search-bar', role: 'search', hidden: true },
    [input, count, prev, next, close]);
  doc.querySelector('.term-area')?.append(searchBar);
  store.add(() => searchBar.remove());

  function find(backwards = false) {
    const term = active();
    const entry = term && attached.get(term);
    if (!entry) return false;
    if (!input.value) {
      entry.search.clearDecorations();
      count.textContent = '';
      return false;
    }
    const options = searchOptions(theme);
    const found = backwards ? entry.search.findPrevious(input.value, options)
      : entry.search.findNext(input.value, options);
    if (!found) count.textContent = t('comfort.no_matches');
    searchBar.dataset.found = String(found);
    return found;
  }

  function showResults(index, total) {
    if (searchBar.hidden || !input.value) return;
    count.textContent = total === 0 ? t('comfort.no_matches') : index >= 0 ? t('comfort.match_of', { index: index + 1, total }) : `${total}+`;
  }

  function openSearch() {
    searchBar.hidden = false;
    const term = active();
    if (term && term.hasSelection() && !term.getSelection().includes('\n')) input.value = term.getSelection();
    input.focus();
    input.select();
    searchButton.setAttribute('aria-expanded', 'true');
  }

  function closeSearch() {
    searchBar.hidden = true;
    searchButton.setAttribute('aria-expanded', 'false');
    count.textContent = '';
    for (const entry of attached.values()) entry.search.clearDecorations();
    active()?.focus();
  }

  store.listen(input, 'input', () => {
    const term = active();
    attached.get(term)?.search.clearActiveDecoration?.();
    find(false);
  });
  store.listen(input, 'keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      find(event.shiftKey);
    } else if (event.key === 'Escape') {
      event.preventDefault();
      closeSearch();
    }
  });
  store.listen(prev, 'click', () => find(true));
  store.listen(next, 'click', () => find(false));
  store.listen(close, 'click', closeSearch);

  // ---- context menu --------------------------------------------------------
  const menuItems = [
    ['menu-copy', t('comfort.copy'), 'Ctrl+Shift+C', copySelection],
    ['menu-paste', t('comfort.paste'), 'Ctrl+Shift+V', paste],
    ['menu-select-all', t('comfort.select_all'), '', selectAll],
    ['menu-search', t('comfort.search_menu'), 'Ctrl+Shift+F', openSearch],
  ].map(([id, label, hint, action]) => {
    const item = el(doc, 'button', { id, type: 'button', className: 'menu-item', role: 'menuitem', tabIndex: -1 },
      [el(doc, 'span', { text: label }), el(doc, 'kbd', { text: hint })]);
    store.listen(item, 'click', () => {
      hideMenu();
      action();
    });
    return item;
  });
  const menu = el(doc, 'div', { id: 'context-menu', className: 'context-menu', role: 'menu', hidden: true,
    'aria-label': t('term.label') }, menuItems);
  doc.body.append(menu);
  store.add(() => menu.remove());

  function showMenu(x, y) {
    const term = active();
    menuItems[0].disabled = !(term && term.hasSelection());
    menu.hidden = false;
    const { innerWidth, innerHeight } = win;
    const rect = menu.getBoundingClientRect();
    menu.style.left = `${Math.max(0, Math.min(x, innerWidth - rect.width - 4))}px`;
    menu.style.top = `${Math.max(0, Math.min(y, innerHeight - rect.height - 4))}px`;
    (menuItems.find((item) => !item.disabled) || menuItems[1]).focus();
  }

  function hideMenu(refocus = false) {
    if (menu.hidden) return;
    menu.hidden = true;
    if (refocus) active()?.focus();
  }

  const terminalArea = doc.querySelector('.term-area');
  if (terminalArea) {
    store.listen(terminalArea, 'contextmenu', (event) => {
      if (event.target.closest?.('.search-bar')) return;
      event.preventDefault();
      const fromKeyboard = event.button !== 2 || (event.clientX === 0 && event.clientY === 0);
      const box = terminalArea.getBoundingClientRect();
      showMenu(fromKeyboard ? box.left + 24 : event.clientX, fromKeyboard ? box.top + 24 : event.clientY);
    });
  }
  store.listen(doc, 'pointerdown', (event) => {
    if (!menu.hidden && !menu.contains(event.target)) hideMenu();
  }, { capture: true });
  store.listen(menu, 'keydown', (event) => {
    const enabled = menuItems.filter((item) => !item.disabled);
    const at = enabled.indexOf(doc.activeElement);
    if (event.key === 'Escape' || event.key === 'Tab') {
      event.preventDefault();
      hideMenu(true);
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : -1;
      enabled[(at + step + enabled.length) % enabled.length]?.focus();
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      enabled[event.key === 'Home' ? 0 : enabled.length - 1]?.focus();
    }
  });
  store.listen(win, 'blur', () => hideMenu());

  applyAll();
  return {
    attach,
    detach,
    settings: () => ({ ...settings }),
    theme: () => theme,
    update,
    copySelection,
    paste,
    openSearch,
    closeSearch,
  };
}
