import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createModel, filterRows, flagsOf, secondsSince, sortRows, stepText, stuckReason } from '../src/dashboard.js';
import { buttonState, handPath, raisedMessage, sendHand } from '../src/handraise.js';
import { setLanguage } from '../src/i18n.js';
import { createEventHandler } from '../src/serverevents.js';

const NOW = Date.parse('2026-12-03T14:00:00Z');
const minutesAgo = (m) => new Date(NOW - m * 60000).toISOString();

function row(fields) {
  return {
    learner: 1,
    name: 'Min',
    state: 'active',
    connected: true,
    step: 2,
    steps: 5,
    finished: false,
    checks_passed: 1,
    checks_failed: 0,
    failed_here: 0,
    step_started_at: minutesAgo(1),
    last_activity: minutesAgo(1),
    stuck: false,
    stuck_reason: null,
    stuck_at: minutesAgo(-9),
    hand: null,
    watch: '/workshops/7/learners/1/watch/',
    ...fields,
  };
}

test('a row becomes stuck for time by itself once its stuck_at has come', () => {
  assert.equal(stuckReason(row({ stuck_at: minutesAgo(-1) }), NOW), null);
  assert.equal(stuckReason(row({ stuck_at: minutesAgo(0) }), NOW), 'time');
  assert.equal(stuckReason(row({ stuck_reason: 'checks', stuck_at: null }), NOW), 'checks');
  assert.equal(stuckReason(row({ stuck_at: null }), NOW), null);
});

test('the seconds since a time never go below zero and are null without a time', () => {
  assert.equal(secondsSince(minutesAgo(2), NOW), 120);
  assert.equal(secondsSince(minutesAgo(-2), NOW), 0);
  assert.equal(secondsSince(null, NOW), null);
});

test('rows sort by a column either way, rows without a value last, ties by name', () => {
  const rows = [
    row({ learner: 1, name: 'Min', step: 3 }),
    row({ learner: 2, name: 'jo', step: 1 }),
    row({ learner: 3, name: 'Ari', step: null }),
    row({ learner: 4, name: 'Bo', step: 3 }),
  ];
  assert.deepEqual(sortRows(rows, { key: 'step' }, NOW).map((r) => r.name), ['jo', 'Bo', 'Min', 'Ari']);
  assert.deepEqual(sortRows(rows, { key: 'step', descending: true }, NOW).map((r) => r.name), ['Bo', 'Min', 'jo', 'Ari']);
  assert.deepEqual(sortRows(rows, { key: 'name' }, NOW).map((r) => r.name), ['Ari', 'Bo', 'jo', 'Min']);
  const timed = [row({ name: 'A', step_started_at: minutesAgo(1) }), row({ name: 'B', step_started_at: minutesAgo(8) })];
  assert.deepEqual(sortRows(timed, { key: 'on_step', descending: true }, NOW).map((r) => r.name), ['B', 'A']);
});

test('the filters keep names with the typed part, the stuck and the raised hands', () => {
  const rows = [
    row({ name: 'Min Ji' }),
    row({ name: 'Jo', stuck_reason: 'checks' }),
    row({ name: 'Ari', stuck_at: minutesAgo(1) }),
    row({ name: 'Bo', hand: { id: 1, raised_at: minutesAgo(1), sentence: '' } }),
  ];
  const names = (filters) => filterRows(rows, filters, NOW).map((r) => r.name);
  assert.deepEqual(names({ name: ' ji ' }), ['Min Ji']);
  assert.deepEqual(names({ stuckOnly: true }), ['Jo', 'Ari']);
  assert.deepEqual(names({ handOnly: true }), ['Bo']);
  assert.deepEqual(names({}), ['Min Ji', 'Jo', 'Ari', 'Bo']);
});

test('the model takes a snapshot, then rows and the help queue as they come', () => {
  const model = createModel();
  assert.equal(model.apply({ type: 'snapshot', rows: [row({ learner: 1 })], histogram: null, help: [] }), true);
  model.apply({ type: 'row', row: row({ learner: 2, name: 'Jo' }), histogram: { steps: 5, counts: [0, 2, 0, 0, 0], finished: 0 } });
  model.apply({ type: 'row', row: row({ learner: 1, step: 3 }), histogram: { steps: 5, counts: [0, 1, 1, 0, 0], finished: 0 } });
  assert.deepEqual([...model.rows.values()].map((r) => [r.name, r.step]), [['Min', 3], ['Jo', 2]]);
  assert.deepEqual(model.histogram.counts, [0, 1, 1, 0, 0]);
  model.apply({ type: 'help', help: [{ id: 4, learner: 2, name: 'Jo' }] });
  assert.equal(model.help[0].name, 'Jo');
  assert.equal(model.apply({ type: 'error', code: 'forbidden' }), false);
});

test('a row says its step out of the steps, finished, or a free sandbox, and its flags', () => {
  setLanguage('en');
  assert.equal(stepText(row({ step: 3, steps: 7 })), '3/7');
  assert.equal(stepText(row({ finished: true })), 'finished');
  assert.equal(stepText(row({ step: null, steps: null })), 'free sandbox');
  const flags = flagsOf(row({ stuck_reason: 'checks', hand: { id: 1 } }), NOW).map(([, text]) => text);
  assert.deepEqual(flags, ['stuck: failed checks', 'hand raised']);
  setLanguage('ko');
  assert.equal(stepText(row({ finished: true })), '완료');
  setLanguage('en');
});

test('the hand button raises, then lowers, through the session hand API', async () => {
  setLanguage('en');
  assert.equal(handPath('abc'), '/api/sessions/abc/hand/');
  assert.deepEqual(buttonState(null), { label: 'Raise hand', pressed: false });
  assert.deepEqual(buttonState({ raised_at: 'x', sentence: '' }), { label: 'Lower hand', pressed: true });
  assert.match(raisedMessage({ sentence: 'port 8080?' }), /port 8080\?/);
  const calls = [];
  const request = async (path, init) => {
    calls.push({ path, ...init });
    return init.method === 'POST' ? { ok: true, data: { hand: { raised_at: 'now', sentence: init.body.sentence } } } : { ok: true, data: null };
  };
  assert.deepEqual(await sendHand('abc', 'help', request), { ok: true, hand: { raised_at: 'now', sentence: 'help' }, message: '' });
  assert.deepEqual(await sendHand('abc', null, request), { ok: true, hand: null, message: '' });
  assert.deepEqual(calls.map((c) => c.method), ['POST', 'DELETE']);
  const refused = async () => ({ ok: false, data: null, message: 'This session has ended.' });
  assert.deepEqual(await sendHand('abc', '', refused), { ok: false, hand: null, message: 'This session has ended.' });
});

test("the terminal's hand event sets the hand button's state", () => {
  const seen = [];
  const onEvent = createEventHandler({ handRaise: { setHand: (hand) => seen.push(hand) } });
  onEvent({ type: 'hand', hand: { raised_at: 'now', sentence: 'help' } });
  onEvent({ type: 'hand', hand: null });
  assert.deepEqual(seen, [{ raised_at: 'now', sentence: 'help' }, null]);
});
