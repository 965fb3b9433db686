// The page's theme, light or dark, on every page (comfort.js lets the visitor pick one on the
// session page). Kept apart from comfort.js so that pages without a terminal load no xterm code.

import { loadSettings, resolveTheme } from './settings.js';

export const LIGHT_QUERY = '(prefers-color-scheme: light)';

/** Whether the system asks for a light theme. */
export function prefersLight(win = window) {
  return !!(win.matchMedia && win.matchMedia(LIGHT_QUERY).matches);
}

/** Themes the whole page (CSS variables keyed on <html data-theme>); returns the theme used. */
export function applyPageTheme(doc = document, settings = loadSettings()) {
  const theme = resolveTheme(settings, prefersLight(doc.defaultView || window));
  doc.documentElement.dataset.theme = theme;
  return theme;
}
