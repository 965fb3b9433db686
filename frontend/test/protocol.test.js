import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  CLOSE_ENDED,
  CLOSE_FORBIDDEN,
  CLOSE_NORMAL,
  CLOSE_UNAVAILABLE,
  CLOSE_UNKNOWN,
  OP_INPUT,
  OP_OUTPUT,
  OP_PAUSE,
  OP_RESIZE,
  OP_RESUME,
  closeMeaning,
  isFinalClose,
  messageOf,
} from '../src/protocol.js';

test('the opcodes are the bytes the server reads and writes', () => {
  assert.deepEqual([OP_INPUT, OP_RESIZE, OP_PAUSE, OP_RESUME, OP_OUTPUT], [0, 1, 2, 3, 0]);
});

test('the close codes are the numbers the server sends', () => {
  assert.deepEqual(
    [CLOSE_NORMAL, CLOSE_FORBIDDEN, CLOSE_UNKNOWN, CLOSE_ENDED, CLOSE_UNAVAILABLE],
    [1000, 4403, 4404, 4410, 4503],
  );
});

test('normal, forbidden, unknown and ended closes are final; an unreachable host is not', () => {
  for (const code of [CLOSE_NORMAL, CLOSE_FORBIDDEN, CLOSE_UNKNOWN, CLOSE_ENDED]) {
    assert.equal(isFinalClose(code), true, `${code} is final`);
  }
  assert.equal(isFinalClose(CLOSE_UNAVAILABLE), false);
});

test('a close code the protocol does not list is a lost connection the client reconnects after', () => {
  for (const code of [1001, 1006, 1011, 4000]) {
    assert.equal(isFinalClose(code), false);
    assert.match(closeMeaning(code).message, /reconnects/);
  }
});

test('every close code has a title and a sentence to show', () => {
  for (const code of [CLOSE_NORMAL, CLOSE_FORBIDDEN, CLOSE_UNKNOWN, CLOSE_ENDED, CLOSE_UNAVAILABLE]) {
    const { title, message } = closeMeaning(code);
    assert.ok(title.length > 0, `title of ${code}`);
    assert.match(message, /\.$/, `message of ${code} is a sentence`);
  }
  assert.equal(closeMeaning(CLOSE_FORBIDDEN).title, 'Access denied');
  assert.equal(closeMeaning(CLOSE_UNKNOWN).title, 'Session not found');
});

test("messageOf gives the event's message, or the fallback when it is missing, empty or not a string", () => {
  assert.equal(messageOf({ message: 'The shell exited.' }, 'fallback'), 'The shell exited.');
  assert.equal(messageOf({ message: '' }, 'fallback'), 'fallback');
  assert.equal(messageOf({ message: 42 }, 'fallback'), 'fallback');
  assert.equal(messageOf({}, 'fallback'), 'fallback');
  assert.equal(messageOf(null, 'fallback'), 'fallback');
});
