import { test } from 'node:test';
import assert from 'node:assert/strict';

import { homeTarUrl } from '../src/homedownload.js';
import { applyTakeover } from '../src/takeover.js';

test('a takeover adds its instructor to those typing and giving back removes them', () => {
  const typing = new Set();
  applyTakeover(typing, { type: 'takeover', on: true, by: 'Alice Kim' });
  applyTakeover(typing, { type: 'takeover', on: true, by: 'Bob' });
  assert.deepEqual([...typing], ['Alice Kim', 'Bob']);
  applyTakeover(typing, { type: 'takeover', on: false, by: 'Alice Kim' });
  assert.deepEqual([...typing], ['Bob']);
});

test('a takeover event without a boolean on changes nothing', () => {
  const typing = new Set(['Bob']);
  applyTakeover(typing, { type: 'takeover', on: 'yes', by: 'Eve' });
  applyTakeover(typing, null);
  assert.deepEqual([...typing], ['Bob']);
});

test("the home download points at the session's home.tar", () => {
  assert.equal(homeTarUrl('0f3a'), '/api/sessions/0f3a/home.tar');
  assert.equal(homeTarUrl('a/b'), '/api/sessions/a%2Fb/home.tar');
});
