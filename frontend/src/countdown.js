// The session's "time left" in the top bar, and the clock skew it is corrected by.

import { formatCountdown } from './format.js';
import { t } from './i18n.js';

/** Seconds left at which the countdown turns to a warning, then to critical. */
const WARNING_SECONDS = 300;
const CRITICAL_SECONDS = 60;
/** A skew smaller than this is the Date header's rounding and network time, not a wrong clock. */
const SKEW_THRESHOLD_MS = 2000;

/**
 * The server clock minus the client clock in ms, from a request sent at `requestedAt` and
 * answered at `receivedAt` (client ms) with a Date header of `serverDate` (ms, or null).
 * 0 unless the clocks differ by more than 2 s.
 */
export function measureSkew(requestedAt, receivedAt, serverDate) {
  if (serverDate === null || serverDate === undefined) return 0;
  // The Date header has one-second resolution: its middle is half a second later.
  const measured = serverDate + 500 - (requestedAt + receivedAt) / 2;
  return Math.abs(measured) > SKEW_THRESHOLD_MS ? measured : 0;
}

/** The server time `iso` as a client-clock "HH:MM" ('' when `iso` is not a date). */
export function localTime(iso, skewMs = 0) {
  const when = Date.parse(iso);
  if (Number.isNaN(when)) return '';
  return new Date(when - skewMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Live "time left" display in `el`; the deadline is kept in the client's clock. */
export class Countdown {
  /** `onExpired()` is called once each time the time left reaches zero. */
  constructor(el, onExpired) {
    this.el = el;
    this.onExpired = onExpired;
    this.deadline = null;
    this.expired = false;
    this.stopped = false;
    this._timer = setInterval(() => this.render(), 250);
  }

  setSecondsLeft(seconds) {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return;
    this.deadline = Date.now() + seconds * 1000;
    if (seconds > 0) this.expired = false;
    this.render();
  }

  /** `skewMs` = server clock minus client clock, when known. */
  setExpiresAt(iso, skewMs = 0) {
    const when = Date.parse(iso);
    if (Number.isNaN(when)) return;
    this.deadline = when - skewMs;
    this.expired = false;
    this.render();
  }

  /** Stops counting, showing `text` when given. */
  stop(text) {
    this.stopped = true;
    if (text !== undefined) this._set(text, 'is-ended');
    clearInterval(this._timer);
  }

  /** Stops counting for a session that ended: "Session expired" when its time ran out, else "Ended". */
  stopEnded(expired = this.expired) {
    this.stop(expired ? t('end.title.expired') : t('end.countdown_ended'));
  }

  _set(text, level) {
    if (this.el.textContent !== text) this.el.textContent = text;
    this.el.dataset.level = level;
  }

  render() {
    if (this.stopped || this.deadline === null) return;
    const left = Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
    if (left <= 0) {
      this._set(t('end.title.expired'), 'is-expired');
      if (!this.expired) {
        this.expired = true;
        this.onExpired?.();
      }
      return;
    }
    const level = left <= CRITICAL_SECONDS ? 'is-critical' : left <= WARNING_SECONDS ? 'is-warning' : 'is-ok';
    this._set(formatCountdown(left), level);
  }

  dispose() {
    clearInterval(this._timer);
  }
}
