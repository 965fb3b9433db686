// The session page's state, in one object: what the page has (connection, countdown, tabs)
// and where it is (finished or not, output seen, extension offered). No DOM: the page's
// modules read it freely and change it through the transitions below.

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
