// The terminal websocket: flow control, input queue and automatic reconnection.
// The wire protocol (opcodes, close codes, events) is protocol.js.

import { backoffDelay } from './format.js';
import {
  CLOSE_NORMAL,
  OP_INPUT,
  OP_OUTPUT,
  OP_PAUSE,
  OP_RESIZE,
  OP_RESUME,
  closeMeaning,
  isFinalClose,
} from './protocol.js';

const HIGH_WATERMARK = 128 * 1024;
const LOW_WATERMARK = 16 * 1024;
const MAX_QUEUED_INPUT = 64 * 1024;
const CONNECT_TIMEOUT_MS = 15000;
// WebSocket.readyState values (spelled out so tests can pass a fake WebSocket class).
const WS_CONNECTING = 0;
const WS_OPEN = 1;

const encoder = new TextEncoder();

function frame(opcode, payload) {
  const out = new Uint8Array(1 + (payload ? payload.length : 0));
  out[0] = opcode;
  if (payload) out.set(payload, 1);
  return out;
}

/** xterm's onBinary gives a "binary string": one char per byte. */
function binaryStringToBytes(text) {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i += 1) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

/** Absolute ws:// or wss:// URL for a server path such as "/ws/term/abc/". */
export function websocketUrl(path, loc = window.location) {
  if (/^wss?:\/\//i.test(path)) return path;
  const scheme = loc.protocol === 'https:' ? 'wss://' : 'ws://';
  return scheme + loc.host + (path.startsWith('/') ? path : `/${path}`);
}

export class TerminalConnection {
  /**
   * @param {import('@xterm/xterm').Terminal} term
   * @param {string} url absolute websocket URL
   * @param {object} hooks
   *   onState(state, detail): 'connecting' | 'open' | 'reconnecting' | 'closed'
   *   onEvent(event): a parsed JSON text frame
   *   onOutput(): called for every output frame (cheap; used to hide overlays)
   *   onFinalClose({code, reason, title, message}): the server closed for good (protocol.js's
   *     meaning of the code); no reconnect
   *   onInputDropped(): the offline input queue overflowed (called once per outage)
   * @param {object} options
   *   socket: a WebSocket to `url` made beforehand, for the first connection (so that its
   *     handshake overlaps the page's setup); start() must come in the task that made it, before
   *     any of its events is dispatched. One no longer connecting by then is closed and replaced.
   *   highWatermark, lowWatermark, maxQueuedInput, backoff, WebSocket: for tests
   */
  constructor(term, url, hooks = {}, options = {}) {
    this.term = term;
    this.url = url;
    this.hooks = hooks;
    this.highWatermark = options.highWatermark ?? HIGH_WATERMARK;
    this.lowWatermark = options.lowWatermark ?? LOW_WATERMARK;
    this.maxQueuedInput = options.maxQueuedInput ?? MAX_QUEUED_INPUT;
    this._backoff = options.backoff ?? backoffDelay;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._adopted = options.socket ?? null;

    this._ws = null;
    this._wsAbort = null;
    this._flow = null;
    this._attempt = 0;
    this._everOpened = false;
    this._final = false;
    this._suspended = false;
    this._reconnectTimer = null;
    this._connectTimer = null;
    this._queue = [];
    this._queuedBytes = 0;
    this._droppedNotified = false;
    this._lastSize = null;
    this.state = 'idle';
    this.stats = { connects: 0, pauses: 0, resumes: 0, bytesIn: 0, bytesOut: 0 };
  }

  /** The current WebSocket (or null between connections). */
  get socket() {
    return this._ws;
  }

  get isOpen() {
    return !!this._ws && this._ws.readyState === WS_OPEN;
  }

  get isFinal() {
    return this._final;
  }

  start() {
    if (this._final || this._ws) return;
    this._connect();
  }

  /** Text typed in the terminal (xterm onData). */
  sendInput(text) {
    if (!text) return;
    this._sendInputBytes(encoder.encode(text));
  }

  /** Binary string from xterm onBinary (e.g. some mouse reports). */
  sendBinary(text) {
    if (!text) return;
    this._sendInputBytes(binaryStringToBytes(text));
  }

  /** Sends the size when it differs from the last one sent on this socket (or when forced). */
  sendResize(cols, rows, force = false) {
    if (!this.isOpen || !(cols > 0) || !(rows > 0)) return false;
    const last = this._lastSize;
    if (!force && last && last.cols === cols && last.rows === rows) return false;
    this._lastSize = { cols, rows };
    return this._sendFrame(this._ws, frame(OP_RESIZE, encoder.encode(JSON.stringify({ cols, rows }))));
  }

  /** Closes for good with CLOSE_NORMAL (no reconnect). */
  close(reason = 'client closed') {
    this._final = true;
    this._clearTimers();
    this._takeAdopted()?.close(CLOSE_NORMAL, reason);
    this._closeSocket(CLOSE_NORMAL, reason);
    this._queue = [];
    this._queuedBytes = 0;
    this._setState('closed', { code: CLOSE_NORMAL, reason });
  }

  /** Stops the connection without making it final (page put in the back/forward cache). */
  suspend() {
    if (this._final) return;
    this._suspended = true;
    this._clearTimers();
    this._closeSocket(CLOSE_NORMAL, 'page hidden');
  }

  /** Reconnects right away after suspend(), or cuts a pending backoff wait short. */
  resume() {
    if (this._final) return;
    this._suspended = false;
    if (this._ws) return;
    this._clearTimers();
    this._connect();
  }

  /** Reconnect now if we are waiting in backoff (e.g. the browser came back online). */
  reconnectNow() {
    if (this._final || this._suspended || this._ws) return;
    this._clearTimers();
    this._connect();
  }

  dispose() {
    this.close('disposed');
    this.hooks = {};
  }

  // ---- internals -------------------------------------------------------

  _setState(state, detail = {}) {
    this.state = state;
    this.hooks.onState?.(state, detail);
  }

  _clearTimers() {
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    if (this._connectTimer !== null) clearTimeout(this._connectTimer);
    this._reconnectTimer = null;
    this._connectTimer = null;
  }

  /** The socket made beforehand (options.socket) while it is still connecting, once; else null. */
  _takeAdopted() {
    const ws = this._adopted;
    this._adopted = null;
    if (ws && ws.readyState !== WS_CONNECTING) {
      ws.close(); // its first events may have gone unheard: a new socket gets the screen replayed
      return null;
    }
    return ws;
  }

  /** Removes every listener of the current socket and closes it. */
  _closeSocket(code, reason) {
    const ws = this._ws;
    this._ws = null;
    this._flow = null;
    if (this._wsAbort) this._wsAbort.abort();
    this._wsAbort = null;
    if (ws && (ws.readyState === WS_OPEN || ws.readyState === WS_CONNECTING)) {
      try {
        ws.close(code, reason);
      } catch {
        /* already closing */
      }
    }
  }

  _connect() {
    if (this._final) return;
    const isReconnect = this._everOpened;
    this._setState(isReconnect || this._attempt > 0 ? 'reconnecting' : 'connecting', {
      attempt: this._attempt,
      connecting: true,
    });

    let ws;
    try {
      ws = this._takeAdopted() ?? new this._WebSocket(this.url);
    } catch (err) {
      this._scheduleReconnect({ code: 0, reason: String(err && err.message) });
      return;
    }
    ws.binaryType = 'arraybuffer';
    const abort = new AbortController();
    const { signal } = abort;
    const flow = { pending: 0, paused: false };
    this._ws = ws;
    this._wsAbort = abort;
    this._flow = flow;
    this._lastSize = null;
    this.stats.connects += 1;

    this._connectTimer = setTimeout(() => {
      this._connectTimer = null;
      if (ws === this._ws && ws.readyState === WS_CONNECTING) {
        // Give up on this attempt; the resulting close event schedules the next one.
        try {
          ws.close();
        } catch {
          /* ignore */
        }
      }
    }, CONNECT_TIMEOUT_MS);

    ws.addEventListener(
      'open',
      () => {
        if (ws !== this._ws) return;
        if (this._connectTimer !== null) clearTimeout(this._connectTimer);
        this._connectTimer = null;
        if (isReconnect) {
          // The server replays the recent screen on every connect. Reset in the
          // write queue, so output of the old socket still being parsed lands
          // before the reset and the replay after it.
          this.term.write('', () => this.term.reset());
        }
        this._everOpened = true;
        this._droppedNotified = false;
        this._setState('open', { reconnected: isReconnect });
        this.sendResize(this.term.cols, this.term.rows, true);
        this._flushQueue();
      },
      { signal },
    );

    ws.addEventListener('message', (event) => this._onMessage(ws, flow, event), { signal });

    ws.addEventListener(
      'close',
      (event) => {
        if (ws !== this._ws) return;
        this._ws = null;
        this._flow = null;
        abort.abort();
        if (this._wsAbort === abort) this._wsAbort = null;
        if (this._connectTimer !== null) clearTimeout(this._connectTimer);
        this._connectTimer = null;
        this._onClose(event);
      },
      { signal },
    );

    // 'error' is always followed by 'close'; nothing to do here but keep it quiet.
    ws.addEventListener('error', () => {}, { signal });
  }

  _onMessage(ws, flow, event) {
    if (ws !== this._ws) return;
    const { data } = event;
    if (typeof data === 'string') {
      let parsed;
      try {
        parsed = JSON.parse(data);
      } catch {
        return;
      }
      if (parsed && typeof parsed === 'object') {
        this._attempt = 0;
        this.hooks.onEvent?.(parsed);
      }
      return;
    }
    if (!(data instanceof ArrayBuffer) || data.byteLength === 0) return;
    const bytes = new Uint8Array(data);
    if (bytes[0] !== OP_OUTPUT) return; // unknown opcode: ignore, stay compatible
    this._attempt = 0;
    const payload = bytes.subarray(1);
    this.stats.bytesIn += payload.length;
    this.hooks.onOutput?.(payload.length);
    if (payload.length === 0) return;

    const size = payload.length;
    flow.pending += size;
    this.term.write(payload, () => {
      flow.pending = Math.max(0, flow.pending - size);
      if (flow.paused && flow.pending < this.lowWatermark) {
        flow.paused = false;
        if (ws === this._ws && this._sendFrame(ws, frame(OP_RESUME))) this.stats.resumes += 1;
      }
    });
    if (!flow.paused && flow.pending > this.highWatermark) {
      flow.paused = true;
      if (this._sendFrame(ws, frame(OP_PAUSE))) this.stats.pauses += 1;
    }
  }

  _onClose(event) {
    const { code, reason } = event;
    if (this._final) return;
    if (this._suspended) {
      this._setState('closed', { code, reason, suspended: true });
      return;
    }
    if (isFinalClose(code)) {
      this._final = true;
      this._clearTimers();
      this._queue = [];
      this._queuedBytes = 0;
      this._setState('closed', { code, reason });
      const { title, message } = closeMeaning(code);
      this.hooks.onFinalClose?.({ code, reason, title, message });
      return;
    }
    this._scheduleReconnect({ code, reason });
  }

  _scheduleReconnect(detail) {
    if (this._final || this._suspended) return;
    const delay = this._backoff(this._attempt);
    this._attempt += 1;
    this._clearTimers();
    this._setState('reconnecting', { ...detail, delay, attempt: this._attempt });
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      this._connect();
    }, delay);
  }

  _sendFrame(ws, bytes) {
    if (!ws || ws.readyState !== WS_OPEN) return false;
    try {
      ws.send(bytes);
      return true;
    } catch {
      return false;
    }
  }

  _sendInputBytes(bytes) {
    if (this._final) return;
    if (this.isOpen && this._queue.length === 0) {
      if (this._sendFrame(this._ws, frame(OP_INPUT, bytes))) {
        this.stats.bytesOut += bytes.length;
        return;
      }
    }
    this._enqueue(bytes);
  }

  _enqueue(bytes) {
    if (this._queuedBytes + bytes.length > this.maxQueuedInput) {
      // Keep what was typed first, in order; drop the overflow rather than reorder.
      if (!this._droppedNotified) {
        this._droppedNotified = true;
        this.hooks.onInputDropped?.();
      }
      return;
    }
    this._queue.push(bytes);
    this._queuedBytes += bytes.length;
  }

  _flushQueue() {
    while (this._queue.length > 0 && this.isOpen) {
      const bytes = this._queue[0];
      if (!this._sendFrame(this._ws, frame(OP_INPUT, bytes))) return;
      this._queue.shift();
      this._queuedBytes -= bytes.length;
      this.stats.bytesOut += bytes.length;
    }
  }
}
