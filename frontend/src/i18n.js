// The page's language: English or Korean, one message catalogue per language (i18n/en.json,
// i18n/ko.json; the Django templates render the same files, playground/i18n.py), so each
// sentence has one source. The language is the visitor's choice from the switch (kept in
// localStorage, and in a cookie so that the server renders the same language), else the
// browser's (navigator.languages), else English. Sentences have no plurals: `{name}` holes only.

import en from './i18n/en.json' with { type: 'json' };
import ko from './i18n/ko.json' with { type: 'json' };

export const CATALOGUES = { en, ko };
export const LANGUAGES = Object.keys(CATALOGUES);
/** The cookie (read by playground/i18n.py) and localStorage key of the visitor's choice. */
export const LANGUAGE_COOKIE = 'playground_language';
const STORAGE_KEY = 'playground.language';
const RELOADED_KEY = 'playground.language-reloaded';
const YEAR_SECONDS = 365 * 24 * 3600;

let current = 'en';

/** The supported language of a BCP 47 tag ('ko-KR' → 'ko'), or null. */
export function supported(tag) {
  const base = String(tag || '').toLowerCase().split('-')[0];
  return LANGUAGES.includes(base) ? base : null;
}

/** The language to show: the saved choice, else the first supported of `browserLanguages`, else 'en'. */
export function chooseLanguage(saved, browserLanguages = []) {
  for (const tag of [saved, ...browserLanguages]) {
    const lang = supported(tag);
    if (lang) return lang;
  }
  return 'en';
}

/** The sentence of `key` in the page's language (English when missing), its `{name}` holes filled from `params`. */
export function t(key, params = {}) {
  const text = CATALOGUES[current][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (hole, name) => (name in params ? String(params[name]) : hole));
}

/** The page's language ('en' or 'ko'). */
export function language() {
  return current;
}

/** Sets the page's language for t() (tests; pages call initLanguage). */
export function setLanguage(lang) {
  current = supported(lang) || 'en';
}

function savedChoice(win) {
  try {
    return win.localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled
  }
}

function cookieLanguage(doc) {
  const match = /(?:^|;\s*)playground_language=(\w+)/.exec(doc.cookie || '');
  return match ? supported(match[1]) : null;
}

/** Remembers `lang` as the visitor's choice (localStorage and the cookie the server reads). */
export function rememberLanguage(win, lang) {
  try {
    win.localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // storage disabled: the cookie still carries the choice
  }
  win.document.cookie = `${LANGUAGE_COOKIE}=${lang}; path=/; max-age=${YEAR_SECONDS}; samesite=lax`;
}

/** True when this tab already reloaded for the language (marks it so): never a reload loop. */
function reloadedOnce(win) {
  try {
    if (win.sessionStorage.getItem(RELOADED_KEY)) return true;
    win.sessionStorage.setItem(RELOADED_KEY, '1');
    return false;
  } catch {
    return true; // no storage: no reload
  }
}

/**
 * Chooses the page's language and wires the switch (`[data-language-choice]` buttons, wherever they
 * are, now or later). When the
 * choice differs from the language the server rendered (`<html lang>`), and the cookie can carry
 * it, the page reloads once so the server's sentences match.
 */
export function initLanguage(win) {
  const doc = win.document;
  const rendered = supported(doc.documentElement.lang) || 'en';
  const saved = savedChoice(win) || cookieLanguage(doc);
  setLanguage(chooseLanguage(saved, win.navigator.languages || [win.navigator.language]));
  if (saved && current !== rendered) {
    rememberLanguage(win, current);
    if (cookieLanguage(doc) === current && !reloadedOnce(win)) win.location.reload();
  }
  // Delegated: the session page opened in place brings its switch later (session_template.html).
  doc.addEventListener('click', (event) => {
    const choice = event.target instanceof win.Element ? event.target.closest('[data-language-choice]') : null;
    if (!choice) return;
    rememberLanguage(win, choice.dataset.languageChoice);
    win.location.reload();
  });
}
