// The terminal websocket's wire protocol, in one place (the server's side:
// playground/sandboxes/consumers.py; the contract: docs/architecture.md).
//
// Binary frames: the first byte is the opcode, the rest the payload.
//   client -> server   OP_INPUT + input bytes
//                      OP_RESIZE + UTF-8 JSON {"cols": int, "rows": int}
//                      OP_PAUSE (stop sending output), OP_RESUME (send it again)
//   server -> client   OP_OUTPUT + output bytes
// Text frames from the server: JSON events {"type": "status" | "expiry" | "warning" | "error" | "exit", ...};
// `exit` carries the `reason` and the sentence to show (`message`).

import { t } from './i18n.js';

export const OP_INPUT = 0x00;
export const OP_RESIZE = 0x01;
export const OP_PAUSE = 0x02;
export const OP_RESUME = 0x03;
export const OP_OUTPUT = 0x00;

export const CLOSE_NORMAL = 1000;
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_UNKNOWN = 4404;
export const CLOSE_ENDED = 4410;
export const CLOSE_UNAVAILABLE = 4503;

/** The `exit` reason of a shell that ended by itself (the session may go on). */
export const SHELL_EXITED = 'shell_exited';
/** The `exit` reason on a node's terminals when that node was removed (the session goes on with its other nodes). */
export const NODE_REMOVED = 'node_removed';

/**
 * What each close code means: `final` = the client must not reconnect; `title` and
 * `message` = the catalogue keys of what the page says when the connection ends this way.
 */
const CLOSE_MEANINGS = Object.freeze({
  [CLOSE_NORMAL]: {
    final: true,
    title: 'conn.closed',
    message: 'conn.normal',
  },
  [CLOSE_FORBIDDEN]: {
    final: true,
    title: 'session.access_denied',
    message: 'conn.forbidden',
  },
  [CLOSE_UNKNOWN]: {
    final: true,
    title: 'session.not_found',
    message: 'conn.unknown',
  },
  [CLOSE_ENDED]: {
    final: true,
    title: 'end.title.deleted',
    message: 'end.ended_fallback',
  },
  [CLOSE_UNAVAILABLE]: {
    final: false,
    title: 'conn.reconnecting_title',
    message: 'conn.unavailable',
  },
});

const LOST = Object.freeze({
  final: false,
  title: 'conn.reconnecting_title',
  message: 'conn.lost',
});

/** The meaning of close `code` ({final, title, message}, in the page's language); a code not listed is a lost connection (reconnect). */
export function closeMeaning(code) {
  const meaning = Object.prototype.hasOwnProperty.call(CLOSE_MEANINGS, code) ? CLOSE_MEANINGS[code] : LOST;
  return { final: meaning.final, title: t(meaning.title), message: t(meaning.message) };
}

/** True when a close with `code` is for good: the client must not reconnect. */
export function isFinalClose(code) {
  return closeMeaning(code).final;
}

/** The event's `message` when it is a non-empty string, else `fallback`. */
export function messageOf(event, fallback) {
  const message = event && event.message;
  return typeof message === 'string' && message ? message : fallback;
}
