import { test } from 'node:test';
import assert from 'node:assert/strict';

import { TerminalConnection, websocketUrl } from '../src/connection.js';
import { OP_INPUT, OP_PAUSE, OP_RESIZE, OP_RESUME, closeMeaning } from '../src/protocol.js';

const decoder = new TextDecoder();
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** Minimal stand-in for the browser WebSocket. */
class FakeSocket {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.listeners = new Map();
    this.closedWith = null;
    FakeSocket.instances.push(this);
  }

  addEventListener(type, fn, { signal } = {}) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    signal?.addEventListener('abort', () => this.listeners.get(type).delete(fn));
  }

  listenerCount() {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  emit(type, event = {}) {
    for (const fn of [...(this.listeners.get(type) || [])]) fn(event);
  }

  send(data) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(new Uint8Array(data));
  }

  close(code = 1005, reason = '') {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // test helpers
  open() {
    this.readyState = 1;
    this.emit('open');
  }

  serverClose(code, reason = '') {
    this.readyState = 3;
    this.emit('close', { code, reason });
  }

  output(bytes) {
    const frame = new Uint8Array(bytes.length + 1);
    frame.set(bytes, 1);
    this.emit('message', { data: frame.buffer });
  }

  text(obj) {
    this.emit('message', { data: JSON.stringify(obj) });
  }

  frames(op) {
    return this.sent.filter((f) => f[0] === op);
  }
}

/** Terminal stand-in: write() callbacks are released by hand to model a slow renderer. */
function fakeTerm() {
  return {
    cols: 80,
    rows: 24,
    written: [],
    pending: [],
    resets: 0,
    write(data, cb) {
      this.pending.push(() => {
        this.written.push(typeof data === 'string' ? data : decoder.decode(data));
        cb?.();
      });
    },
    flush() {
      while (this.pending.length) this.pending.shift()();
    },
    reset() {
      this.resets += 1;
      this.written.push('<reset>');
    },
  };
}

function setup(hooks = {}, options = {}) {
  FakeSocket.instances = [];
  const term = fakeTerm();
  const conn = new TerminalConnection(term, 'ws://h/ws/x/', hooks, {
    WebSocket: FakeSocket,
    backoff: () => 5,
    ...options,
  });
  conn.start();
  return { term, conn, ws: () => FakeSocket.instances.at(-1) };
}

test('websocketUrl picks ws or wss from the page protocol', () => {
  assert.equal(websocketUrl('/ws/a/', { protocol: 'http:', host: 'h:8000' }), 'ws://h:8000/ws/a/');
  assert.equal(websocketUrl('/ws/a/', { protocol: 'https:', host: 'h' }), 'wss://h/ws/a/');
});

test('sends resize on open, input frames, binary input and dedupes resizes', () => {
  const { conn, ws } = setup();
  ws().open();
  const [resize] = ws().frames(OP_RESIZE);
  assert.deepEqual(JSON.parse(decoder.decode(resize.subarray(1))), { cols: 80, rows: 24 });
  conn.sendInput('ls 한\r');
  assert.equal(decoder.decode(ws().frames(OP_INPUT)[0].subarray(1)), 'ls 한\r');
  conn.sendBinary('\x1b[M\xff!');
  assert.deepEqual([...ws().frames(OP_INPUT)[1]], [0, 0x1b, 0x5b, 0x4d, 0xff, 0x21]);
  assert.equal(conn.sendResize(80, 24), false);
  assert.equal(conn.sendResize(100, 30), true);
  assert.equal(ws().frames(OP_RESIZE).length, 2);
});

test('flow control: one pause above the high watermark, one resume below the low one', () => {
  const { term, ws } = setup({}, { highWatermark: 1000, lowWatermark: 100 });
  ws().open();
  for (let i = 0; i < 10; i += 1) ws().output(new Uint8Array(300));
  assert.equal(ws().frames(OP_PAUSE).length, 1);
  assert.equal(ws().frames(OP_RESUME).length, 0);
  term.flush();
  assert.equal(ws().frames(OP_PAUSE).length, 1);
  assert.equal(ws().frames(OP_RESUME).length, 1);
  // pause -> resume order
  const ops = ws().sent.map((f) => f[0]).filter((op) => op === OP_PAUSE || op === OP_RESUME);
  assert.deepEqual(ops, [OP_PAUSE, OP_RESUME]);
});

test('JSON text frames go to onEvent; output resets attempts', () => {
  const events = [];
  const { ws } = setup({ onEvent: (e) => events.push(e) });
  ws().open();
  ws().text({ type: 'status', state: 'running' });
  ws().emit('message', { data: 'not json' });
  assert.deepEqual(events, [{ type: 'status', state: 'running' }]);
});

test('abnormal close reconnects, queues input in order and resets before replay', async () => {
  const states = [];
  const { term, conn, ws } = setup({ onState: (s) => states.push(s) });
  const first = ws();
  first.open();
  first.output(new TextEncoder().encode('old screen'));
  first.serverClose(1006);
  assert.equal(first.listenerCount(), 0, 'listeners of the dead socket are removed');
  assert.equal(conn.state, 'reconnecting');
  conn.sendInput('a');
  conn.sendInput('b');
  await tick(20);
  const second = ws();
  assert.notEqual(second, first);
  second.open();
  const inputs = second.frames(OP_INPUT).map((f) => decoder.decode(f.subarray(1)));
  assert.deepEqual(inputs, ['a', 'b']);
  second.output(new TextEncoder().encode('replayed'));
  term.flush();
  assert.deepEqual(term.written, ['old screen', '', '<reset>', 'replayed']);
  assert.ok(states.includes('reconnecting'));
  assert.equal(states.at(-1), 'open');
});

test('offline input queue is bounded', async () => {
  let dropped = 0;
  const { conn, ws } = setup({ onInputDropped: () => (dropped += 1) }, { maxQueuedInput: 10 });
  ws().open();
  ws().serverClose(1006);
  conn.sendInput('12345678');
  conn.sendInput('abcdef'); // would exceed 10 bytes: dropped
  conn.sendInput('9');
  assert.equal(dropped, 1);
  await tick(20);
  ws().open();
  const inputs = ws().frames(OP_INPUT).map((f) => decoder.decode(f.subarray(1)));
  assert.deepEqual(inputs, ['12345678', '9']);
});

for (const code of [1000, 4403, 4404, 4410]) {
  test(`close code ${code} is final: no reconnect`, async () => {
    const finals = [];
    const { conn, ws } = setup({ onFinalClose: (d) => finals.push(d.code) });
    ws().open();
    ws().serverClose(code);
    await tick(30);
    assert.equal(FakeSocket.instances.length, 1);
    assert.deepEqual(finals, [code]);
    assert.equal(conn.isFinal, true);
    conn.sendInput('ignored');
  });
}

test('a final close hands the code, its title and its message to onFinalClose', async () => {
  const finals = [];
  const { ws } = setup({ onFinalClose: (d) => finals.push(d) });
  ws().open();
  ws().serverClose(4410, 'ended');
  const { title, message } = closeMeaning(4410);
  assert.deepEqual(finals, [{ code: 4410, reason: 'ended', title, message }]);
});

test('close code 4503 (sandbox host unreachable) reconnects', async () => {
  const finals = [];
  const { conn, ws } = setup({ onFinalClose: (d) => finals.push(d.code) });
  ws().open();
  ws().serverClose(4503);
  assert.equal(conn.state, 'reconnecting');
  await tick(20);
  assert.equal(FakeSocket.instances.length, 2);
  assert.deepEqual(finals, []);
  conn.dispose();
});

test('close() is final and closes with 1000', async () => {
  const { conn, ws } = setup();
  ws().open();
  const sock = ws();
  conn.close('bye');
  assert.deepEqual(sock.closedWith, { code: 1000, reason: 'bye' });
  await tick(20);
  assert.equal(FakeSocket.instances.length, 1);
});

/** A connection given a socket made beforehand (in `readyState`), not started yet. */
function withEarlySocket(readyState = 0) {
  FakeSocket.instances = [];
  const early = new FakeSocket('ws://h/ws/x/');
  early.readyState = readyState;
  const term = fakeTerm();
  const options = { WebSocket: FakeSocket, backoff: () => 5, socket: early };
  const conn = new TerminalConnection(term, 'ws://h/ws/x/', {}, options);
  return { early, term, conn, ws: () => FakeSocket.instances.at(-1) };
}

test('a socket made beforehand carries the first connection; a reconnect makes a new one', async () => {
  const { early, term, conn, ws } = withEarlySocket();
  conn.start();
  assert.equal(FakeSocket.instances.length, 1, 'no second socket for the first connection');
  early.open();
  assert.equal(conn.state, 'open');
  assert.equal(early.frames(OP_RESIZE).length, 1);
  early.output(new TextEncoder().encode('prompt# '));
  term.flush();
  assert.deepEqual(term.written, ['prompt# ']);
  early.serverClose(1006);
  await tick(20);
  assert.notEqual(ws(), early);
  ws().open();
  assert.equal(conn.state, 'open');
});

test('a socket made beforehand that is no longer connecting is closed and replaced', () => {
  const { early, conn, ws } = withEarlySocket(1); // opened, its events unheard
  conn.start();
  assert.ok(early.closedWith, 'the stale socket is closed');
  assert.notEqual(ws(), early);
  ws().open();
  assert.equal(conn.state, 'open');
});

test('close() before the first connection closes the socket made beforehand', () => {
  const { early, conn } = withEarlySocket();
  conn.close('bye');
  assert.deepEqual(early.closedWith, { code: 1000, reason: 'bye' });
  assert.equal(FakeSocket.instances.length, 1);
});
