// The session page's terminals: xterm.js options, the first terminal's view, fitting it to
// the window, and the visitor's settings (comfort.js) on every terminal, tabs included.

import { installComfort } from './comfort.js';
import { language } from './i18n.js';
import { TERMINAL_THEMES } from './settings.js';
import { createTerminalView } from './tabs.js';

export const FONT_FAMILY = [
  '"JetBrains Mono"',
  '"Cascadia Mono"',
  '"SF Mono"',
  'Menlo',
  'Consolas',
  '"DejaVu Sans Mono"',
  '"Liberation Mono"',
  '"Noto Sans Mono"',
  '"Noto Sans Mono CJK KR"',
  '"Noto Sans CJK KR"',
  '"D2Coding"',
  '"NanumGothicCoding"',
  '"Apple SD Gothic Neo"',
  '"Malgun Gothic"',
  'monospace',
].join(', ');

/**
 * A Korean page's stack: a CJK monospace font first, whose Latin letters are half its Hangul's
 * width, so that a Hangul character fills its two cells (Unicode 11 widths, comfort.js) without
 * a gap; after a Latin-first font, Hangul from a fallback font is narrower than two cells.
 */
export const KOREAN_FONT_FAMILY = ['"D2Coding"', '"Noto Sans Mono CJK KR"', '"NanumGothicCoding"', FONT_FAMILY].join(', ');

/** The terminal's font stack for the page's language. */
export function terminalFont(lang) {
  return lang === 'ko' ? KOREAN_FONT_FAMILY : FONT_FAMILY;
}

/** The dark terminal theme (the visitor's theme and font size are applied by comfort.js). */
export const THEME = TERMINAL_THEMES.dark;

/** Opens an http(s) link from the terminal in a new tab, with no way back to this page. */
function safeOpenLink(event, uri) {
  let url;
  try {
    url = new URL(uri);
  } catch {
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return;
  event.preventDefault?.();
  const win = window.open(url.href, '_blank', 'noopener,noreferrer');
  if (win) win.opener = null;
}

/**
 * The page's terminal views: `firstView` (terminal 0, in `host`), `makeView(host)` for the
 * tabs, `scheduleFit()` (refits the terminal on screen) and `comfort` (the settings).
 * `state.tabs` is the tab bar once there is one; `toaster` is ui.js's.
 */
export function createTerminalViews({ doc, host, store, toaster, state }) {
  const toast = (message, kind) => toaster.show(message, { kind, timeoutMs: 6000 });
  // Theme, font size, copy/paste, search: settings apply to every attached terminal;
  // copy, paste and search act on the active one, window.playground.term.
  const comfort = installComfort({
    doc,
    store,
    active: () => (window.playground && window.playground.term) || firstView.term,
    toast,
  });

  /** A terminal view in `viewHost` with the page's options; the visitor's settings apply to it. */
  function makeView(viewHost) {
    const options = {
      fontFamily: terminalFont(language()),
      fontSize: 14,
      lineHeight: 1.1,
      cursorBlink: true,
      scrollback: 5000,
      macOptionIsMeta: true,
      theme: { ...THEME },
    };
    const view = createTerminalView(viewHost, { options, onLink: safeOpenLink });
    comfort.attach(view.term, view.scheduleFit);
    const dispose = view.dispose;
    view.dispose = () => {
      comfort.detach(view.term); // a closed tab's terminal leaves the settings' reach
      dispose();
    };
    return view;
  }

  const firstView = store.add(makeView(host));

  /** Refit the terminal on screen (a tab is refitted when it is shown). */
  function scheduleFit() {
    if (state.nodes) state.nodes.currentTabs().fitActive();
    else if (state.tabs) state.tabs.fitActive();
    else firstView.scheduleFit();
  }

  firstView.fit();
  store.listen(window, 'resize', scheduleFit);
  if (typeof ResizeObserver === 'function') {
    const observer = new ResizeObserver(scheduleFit);
    observer.observe(host.parentElement);
    store.add(() => observer.disconnect());
  }
  // Web fonts may load late and change the cell size.
  if (doc.fonts && doc.fonts.ready) doc.fonts.ready.then(() => !store.disposed && scheduleFit());

  return { comfort, makeView, firstView, scheduleFit, toast };
}
