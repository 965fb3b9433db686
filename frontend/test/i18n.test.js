// The message catalogues: every key in both languages with the same {holes}, t() and the
// language choice, and no UI sentence left hard-coded in the DOM-building code of src/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { CATALOGUES, chooseLanguage, initLanguage, language, setLanguage, t } from '../src/i18n.js';

const holes = (sentence) => [...sentence.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('every key of the English catalogue is in the Korean one and the other way round', () => {
  assert.deepEqual(Object.keys(CATALOGUES.ko).sort(), Object.keys(CATALOGUES.en).sort());
});

test('each Korean sentence has the holes of its English one, and none is empty', () => {
  for (const [key, english] of Object.entries(CATALOGUES.en)) {
    assert.deepEqual(holes(CATALOGUES.ko[key]), holes(english), key);
    assert.ok(english.trim() && CATALOGUES.ko[key].trim(), key);
  }
});

test('t() fills the holes in the page language and falls back to English, then to the key', () => {
  setLanguage('ko');
  assert.equal(t('landing.starting_nodes', { title: 'Swarm' }), 'Swarm의 노드를 시작하는 중입니다…');
  assert.equal(t('no.such.key'), 'no.such.key');
  setLanguage('en');
  assert.equal(t('api.server_error', { status: 502 }), 'The server had a problem (HTTP 502). Please try again.');
});

test('the language is the saved choice, else the first supported browser language, else English', () => {
  assert.equal(chooseLanguage(null, ['ko-KR', 'en-US']), 'ko');
  assert.equal(chooseLanguage(null, ['de-DE', 'en-GB', 'ko']), 'en');
  assert.equal(chooseLanguage('en', ['ko-KR']), 'en');
  assert.equal(chooseLanguage(null, ['fr']), 'en');
});

// A sentence-like literal (a capital, then words with a space) where DOM text is set: textContent,
// title/label/text/message properties, aria-label attributes, toasts and setText(). Files still to
// be moved to the catalogue are listed, so that the list only shrinks.
const NOT_YET_TRANSLATED = new Set([]);
const UI_LITERAL =
  /(?:textContent\s*=|\b(?:title|label|text|message|placeholder)\s*:|'aria-label'\s*:|setText\([^,]+,|\.show\(|\['menu-[a-z-]+',)\s*(['`])[A-Z][a-z]+[ .…\\][^'`]*\1|\b(?:text|placeholder|'aria-label')\s*:\s*'[A-Z][a-z]+'/;

test('no UI sentence is hard-coded outside the catalogue in the translated files of src/', () => {
  const dir = new URL('../src/', import.meta.url);
  const found = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.js') && !NOT_YET_TRANSLATED.has(n))) {
    readFileSync(new URL(name, dir), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (!line.trim().startsWith('//') && UI_LITERAL.test(line)) found.push(`${name}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(found, []);
});

test('the check catches a new hard-coded sentence', () => {
  assert.ok(UI_LITERAL.test("statusBox.textContent = 'Starting your sandbox…';"));
  assert.ok(UI_LITERAL.test("toaster.show('Reconnected now.', { kind: 'info' })"));
  assert.ok(UI_LITERAL.test("button(doc, { id: 'x', text: 'Close' }, close)"));
  assert.ok(!UI_LITERAL.test("statusBox.textContent = t('landing.starting');"));
});

/** A window whose page the server rendered in `rendered`, with `stored` in localStorage and a working cookie jar. */
function fakeWindow({ rendered, stored = null, languages = [] }) {
  const storage = (init) => {
    const map = new Map(Object.entries(init));
    return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => map.set(k, String(v)) };
  };
  let jar = '';
  const win = {
    localStorage: storage(stored ? { 'playground.language': stored } : {}),
    sessionStorage: storage({}),
    navigator: { languages },
    reloads: 0,
    location: { reload: () => (win.reloads += 1) },
    Element: class {},
    document: {
      documentElement: { lang: rendered },
      addEventListener: () => {},
      get cookie() {
        return jar;
      },
      set cookie(value) {
        jar = value.split(';')[0];
      },
    },
  };
  return win;
}

test('a saved choice the server did not render sets the cookie and reloads once, never in a loop', () => {
  const win = fakeWindow({ rendered: 'en', stored: 'ko', languages: ['en-US'] });
  initLanguage(win);
  assert.equal(win.document.cookie, 'playground_language=ko');
  assert.equal(win.reloads, 1);
  initLanguage(win); // the server still rendered English: no second reload
  assert.equal(win.reloads, 1);
  setLanguage('en');
});

test('without a saved choice the browser languages choose, and nothing reloads', () => {
  const win = fakeWindow({ rendered: 'ko', languages: ['ko-KR', 'en'] });
  initLanguage(win);
  assert.equal(language(), 'ko');
  assert.equal(win.reloads, 0);
  setLanguage('en');
});

test('a Korean page shows its own sentence for the common refusals, the server\'s for the rest', async () => {
  const { apiRequest } = await import('../src/api.js');
  const reply = (status, body) => async () =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const realFetch = globalThis.fetch;
  try {
    setLanguage('ko');
    globalThis.fetch = reply(503, { error: 'at_capacity', message: 'The playground is full.' });
    assert.equal((await apiRequest('/api/sessions/')).message, CATALOGUES.ko['api.capacity']);
    globalThis.fetch = reply(429, { error: 'too_many_sessions', message: 'Too many.' });
    assert.equal((await apiRequest('/api/sessions/')).message, CATALOGUES.ko['api.too_many_sessions']);
    globalThis.fetch = reply(400, { error: 'bad_image', message: 'No such image.' });
    assert.equal((await apiRequest('/api/sessions/')).message, 'No such image.');
    setLanguage('en');
    globalThis.fetch = reply(503, { error: 'at_capacity', message: 'The playground is full.' });
    assert.equal((await apiRequest('/api/sessions/')).message, 'The playground is full.');
  } finally {
    globalThis.fetch = realFetch;
    setLanguage('en');
  }
});
