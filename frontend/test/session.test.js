import { test } from 'node:test';
import assert from 'node:assert/strict';

import { measureSkew } from '../src/countdown.js';
import { createEndScreen, endedFallback } from '../src/endscreen.js';
import { createEventHandler } from '../src/serverevents.js';
import { SessionState } from '../src/sessionstate.js';
import { connectionLabel } from '../src/status.js';

test('a new session state is not finished, offers no Extend and may show the starting notice', () => {
  const state = new SessionState('abc');
  assert.equal(state.sessionId, 'abc');
  assert.equal(state.finished, false);
  assert.equal(state.extendable, false);
  assert.equal(state.mayShowStarting(), true);
  assert.equal(state.canEnd(), true);
});

test('the session finishes once: the first end wins, a later one changes nothing', () => {
  const state = new SessionState('abc');
  assert.equal(state.finish(true), true);
  assert.equal(state.finish(false), false);
  assert.equal(state.finished, true);
  assert.equal(state.live, true);
});

test('finishing withdraws Extend and it cannot be offered again', () => {
  const state = new SessionState('abc');
  assert.equal(state.setExtendable(true), true);
  state.finish();
  assert.equal(state.extendable, false);
  assert.equal(state.setExtendable(true), false);
});

test('the first output is noted once and ends the starting notice', () => {
  const state = new SessionState('abc');
  assert.equal(state.noteOutput(), true);
  assert.equal(state.noteOutput(), false);
  assert.equal(state.mayShowStarting(), false);
});

test('the starting notice is not shown once the session finished', () => {
  const state = new SessionState('abc');
  state.finish();
  assert.equal(state.mayShowStarting(), false);
});

test('End session stays possible after an end that left the session live, until the server confirms', () => {
  const state = new SessionState('abc');
  state.finish(true); // e.g. only the shell exited
  assert.equal(state.canEnd(), true);
  state.endConfirmed();
  assert.equal(state.canEnd(), false);
});

test('a session that ended for good cannot be ended again', () => {
  const state = new SessionState('abc');
  state.finish(false);
  assert.equal(state.canEnd(), false);
});

test('a live session is ended before a new one starts, and only once', () => {
  const state = new SessionState('abc');
  state.finish(true);
  assert.equal(state.takeLive(), true);
  assert.equal(state.takeLive(), false);
});

test('keys typed while the session loads reach its connection once made, in order, and go straight on after', () => {
  const state = new SessionState('abc');
  const sent = [];
  const conn = {
    sendInput: (data) => sent.push(['input', data]),
    sendBinary: (data) => sent.push(['binary', data]),
  };
  state.type('sendInput', 'echo ');
  state.type('sendBinary', '\x1b[M');
  state.type('sendInput', 'hi\r');
  assert.deepEqual(sent, []);
  state.setConnection(conn);
  assert.deepEqual(sent, [['input', 'echo '], ['binary', '\x1b[M'], ['input', 'hi\r']]);
  state.type('sendInput', 'ls\r');
  assert.deepEqual(sent.at(-1), ['input', 'ls\r']);
  assert.equal(state.earlyInput.length, 0);
});

test('early keys are held up to 64 K characters and none is taken once the session finished', () => {
  const state = new SessionState('abc');
  state.type('sendInput', 'x'.repeat(64 * 1024));
  state.type('sendInput', 'over');
  assert.equal(state.earlyInput.length, 1);
  const sent = [];
  state.setConnection({ sendInput: (data) => sent.push(data) });
  state.finish();
  state.type('sendInput', 'late');
  assert.deepEqual(sent.map((data) => data.length), [64 * 1024]);
});

test('clock skew counts only when the clocks differ by more than 2 s', () => {
  assert.equal(measureSkew(1000, 1000, null), 0);
  assert.equal(measureSkew(10_000, 10_000, 10_000), 0); // half a second: the Date header's rounding
  assert.equal(measureSkew(10_000, 10_000, 20_000), 10_500);
  assert.equal(measureSkew(20_000, 20_000, 10_000), -9_500);
});

/** An end screen over fakes; `shown` collects what the overlay showed, `finishes` the onFinish calls. */
function endScreen() {
  const shown = [];
  const finishes = [];
  const state = new SessionState('abc');
  const doc = { body: { dataset: {}, classList: { add() {} } } };
  const term = { options: {}, blur() {} };
  const overlay = { show: (o) => shown.push(o) };
  const screen = createEndScreen({ doc, state, overlay, term, onFinish: (live) => finishes.push(live) });
  return { screen, shown, finishes, state, doc, term };
}

test("the end screen shows the server's sentence for why the session ended", () => {
  const { screen, shown, doc, term } = endScreen();
  screen.finishExit({ type: 'exit', reason: 'expired', message: "This session's time ran out." });
  assert.equal(shown.length, 1);
  assert.equal(shown[0].title, 'Session expired');
  assert.equal(shown[0].message, "This session's time ran out.");
  assert.equal(doc.body.dataset.endedReason, 'expired');
  assert.equal(term.options.disableStdin, true);
});

test('the end screen says a generic sentence only when the server sent none', () => {
  const { screen, shown } = endScreen();
  screen.finishExit({ type: 'exit', reason: 'some_new_reason' });
  assert.equal(shown[0].title, 'Session ended');
  assert.equal(shown[0].message, endedFallback());
});

test('a shell that exited leaves the session live: "Start a new session" ends it first', () => {
  const { screen, shown, finishes, state } = endScreen();
  screen.finishExit({ type: 'exit', reason: 'shell_exited', message: 'The shell exited. End this session.' });
  assert.equal(shown[0].message, 'The shell exited. End this session.');
  assert.deepEqual(finishes, [true]);
  assert.equal(state.live, true);
});

test('a final close after the exit event changes nothing; one without it shows the close code meaning', () => {
  const first = endScreen();
  first.screen.finishExit({ type: 'exit', reason: 'deleted', message: 'You ended this session.' });
  first.screen.finishClosed({ code: 4410, title: 'Session ended', message: 'gone' });
  assert.equal(first.shown.length, 1);
  const second = endScreen();
  second.screen.finishClosed({ code: 4403, title: 'Access denied', message: 'Not yours.' });
  assert.deepEqual([second.shown[0].title, second.shown[0].message], ['Access denied', 'Not yours.']);
  assert.deepEqual(second.finishes, [false]);
});

test('server events reach the top bar, the status and the end screen', () => {
  const calls = [];
  const record = (name) => (...args) => calls.push([name, ...args]);
  const onEvent = createEventHandler({
    state: new SessionState('abc'),
    status: { hideStarting: record('hideStarting'), showStarting: record('showStarting') },
    topbar: {
      showBanner: record('showBanner'),
      hideBanner: record('hideBanner'),
      updateExtendable: record('extendable'),
    },
    endScreen: { finishExit: record('exit'), finishFailed: record('failed') },
    toaster: { show: record('toast') },
  });
  onEvent({ type: 'status', state: 'provisioning', message: 'Starting your sandbox…' });
  onEvent({ type: 'status', state: 'running' });
  onEvent({ type: 'warning', message: 'This session ends in 5 minutes.', extendable: true });
  onEvent({ type: 'warning' });
  onEvent({ type: 'error' });
  onEvent({ type: 'no_such_type' });
  onEvent({ type: 'exit', reason: 'idle', message: 'Idle.' });
  assert.deepEqual(calls, [
    ['showStarting', 'Starting your sandbox…'],
    ['hideStarting'],
    ['showBanner', 'This session ends in 5 minutes.', true],
    ['toast', 'Something went wrong.', { kind: 'error', timeoutMs: 10000 }],
    ['exit', { type: 'exit', reason: 'idle', message: 'Idle.' }],
  ]);
});

test('the connection label says when the next try comes while waiting to reconnect', () => {
  assert.equal(connectionLabel('open'), 'Connected');
  assert.equal(connectionLabel('reconnecting', { delay: 2400 }), 'Reconnecting… (retry in 2 s)');
  assert.equal(connectionLabel('reconnecting', { delay: 100 }), 'Reconnecting… (retry in 1 s)');
  assert.equal(connectionLabel('reconnecting', { delay: 2400, connecting: true }), 'Reconnecting…');
});
