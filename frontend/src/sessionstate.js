// The session page's state, in one object: what the page has (connection, countdown, tabs)
// and where it is (finished or not, output seen, extension offered). No DOM: the page's
// modules read it freely and change it through the transitions below.

const MAX_EARLY_INPUT = 64 * 1024; // characters held before terminal 0's connection exists

export class SessionState {
  constructor(sessionId) {
    this.sessionId = sessionId;
    this.conn = null; // terminal 0's TerminalConnection, once the session is loaded
    this.countdown = null; // the Countdown, once the session is loaded
    this.tabs = null; // the tab bar (tabs.js), once the session is loaded
    this.finished = false; // the final screen is up: no input, no reconnect
    this.live = false; // the server may still hold a sandbox for this session (only after finish)
    this.sawOutput = false; // the terminal has shown output: no more "Starting…" notice
    this.extendable = false; // Extend is offered
    this.skewMs = 0; // server clock minus client clock (0 unless off by more than 2 s)
    this.earlyInput = []; // [method, data] typed before `conn` existed, in order
    this.earlyChars = 0;
  }

  /**
   * What was typed in terminal 0 (`method` is the connection's `sendInput` or `sendBinary`): given
   * to the connection, or, while the session is still loading and there is none, held for it (up
   * to 64 K characters; the rest is dropped). Nothing is taken once the session finished.
   */
  type(method, data) {
    if (this.finished || !data) return;
    if (this.conn) {
      this.conn[method](data);
      return;
    }
    if (this.earlyChars + data.length > MAX_EARLY_INPUT) return;
    this.earlyInput.push([method, data]);
    this.earlyChars += data.length;
  }

  /** Terminal 0's connection is made: it gets what was typed before, in order. */
  setConnection(conn) {
    this.conn = conn;
    for (const [method, data] of this.earlyInput) conn[method](data);
    this.earlyInput = [];
    this.earlyChars = 0;
  }

  /**
   * Enters the final state; false when it already was (the first end wins).
   * `live` = the session itself may still be running (e.g. only its shell exited).
   */
  finish(live = false) {
    if (this.finished) return false;
    this.finished = true;
    this.live = live;
    this.extendable = false;
    return true;
  }

  /** Output arrived; true the first time only. */
  noteOutput() {
    if (this.sawOutput) return false;
    this.sawOutput = true;
    return true;
  }

  /** Whether the "Starting sandbox…" notice may be shown. */
  mayShowStarting() {
    return !this.finished && !this.sawOutput;
  }

  /** Offers Extend when `can`, never once finished; returns whether it is offered. */
  setExtendable(can) {
    this.extendable = Boolean(can) && !this.finished;
    return this.extendable;
  }

  /** The server confirmed the session ended (End session): nothing left to end. */
  endConfirmed() {
    this.live = false;
  }

  /** Whether the session still needs ending before a new one starts; asks only once. */
  takeLive() {
    const live = this.live;
    this.live = false;
    return live;
  }

  /** Whether End session can still do something (before the end, or after one that left the session live). */
  canEnd() {
    return !this.finished || this.live;
  }
}
