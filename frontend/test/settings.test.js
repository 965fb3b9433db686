import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  FONT_SIZE,
  STORAGE_KEY,
  autoFontSize,
  effectiveFontSize,
  loadSettings,
  parseSettings,
  presentationChange,
  resolveTheme,
  saveSettings,
  stepFontSize,
} from '../src/settings.js';

function memoryStorage(initial = {}) {
  const items = { ...initial };
  return {
    items,
    getItem: (key) => (key in items ? items[key] : null),
    setItem: (key, value) => {
      items[key] = String(value);
    },
  };
}

test('unreadable or foreign stored settings fall back to the defaults', () => {
  const defaults = { theme: null, fontSize: null, presenting: false, sizeBefore: null };
  for (const text of [null, '', 'not json', '[]', '42', '{"theme": "blue", "fontSize": "big"}']) {
    assert.deepEqual(parseSettings(text), defaults, String(text));
  }
});

test('stored font sizes are clamped and rounded into the allowed range', () => {
  assert.equal(parseSettings('{"fontSize": 2}').fontSize, FONT_SIZE.min);
  assert.equal(parseSettings('{"fontSize": 400}').fontSize, FONT_SIZE.max);
  assert.equal(parseSettings('{"fontSize": 15.6}').fontSize, 16);
});

test('settings survive a save and a load', () => {
  const storage = memoryStorage();
  const settings = { theme: 'light', fontSize: 20, presenting: true, sizeBefore: 16 };
  assert.equal(saveSettings(settings, storage), true);
  assert.deepEqual(loadSettings(storage), settings);
  assert.ok(STORAGE_KEY in storage.items);
});

test('a storage that throws (private mode) gives the defaults and a failed save', () => {
  const broken = {
    getItem() {
      throw new Error('denied');
    },
    setItem() {
      throw new Error('denied');
    },
  };
  assert.equal(loadSettings(broken).fontSize, null);
  assert.equal(saveSettings({ theme: 'dark', fontSize: 14 }, broken), false);
});

test('the theme follows the system until one is chosen', () => {
  assert.equal(resolveTheme({ theme: null }, true), 'light');
  assert.equal(resolveTheme({ theme: null }, false), 'dark');
  assert.equal(resolveTheme({ theme: 'dark' }, true), 'dark');
});

test('an unchosen font size follows the screen; a chosen one wins', () => {
  assert.equal(autoFontSize(1366), FONT_SIZE.default);
  assert.equal(autoFontSize(1920), 18);
  assert.equal(effectiveFontSize({ fontSize: null }, 1920), 18);
  assert.equal(effectiveFontSize({ fontSize: 12 }, 1920), 12);
});

test('font size steps stop at the bounds', () => {
  assert.equal(stepFontSize(14, 1), 16);
  assert.equal(stepFontSize(14, -1), 12);
  assert.equal(stepFontSize(FONT_SIZE.max, 1), FONT_SIZE.max);
  assert.equal(stepFontSize(FONT_SIZE.min, -1), FONT_SIZE.min);
});

test('presentation mode enlarges the text and gives back the size from before', () => {
  const settings = { theme: null, fontSize: 12, presenting: false, sizeBefore: null };
  const on = presentationChange(settings, true, 1366);
  assert.deepEqual(on, { presenting: true, sizeBefore: 12, fontSize: FONT_SIZE.presentation });
  Object.assign(settings, on);
  assert.deepEqual(presentationChange(settings, false, 1366), { presenting: false, sizeBefore: null, fontSize: 12 });
  const big = { theme: null, fontSize: 28, presenting: false, sizeBefore: null };
  assert.equal(presentationChange(big, true, 1366).fontSize, 28);
});
