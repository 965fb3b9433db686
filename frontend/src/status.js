// What the session page says about its connection: the label in the top bar (#conn-state)
// and the "Starting sandbox…" notice over the terminal (#starting).

import { setShown, setText } from './dom.js';
import { t } from './i18n.js';

/** The catalogue key of each connection state's label. */
const CONN_LABELS = {
  idle: 'conn.connecting',
  connecting: 'conn.connecting',
  open: 'conn.open',
  reconnecting: 'conn.reconnecting',
  closed: 'conn.closed',
};

/** The label for connection `state` (TerminalConnection's onState), with the retry wait when known. */
export function connectionLabel(state, detail = {}) {
  if (state === 'reconnecting' && detail.delay && !detail.connecting) {
    return t('conn.retry_in', { seconds: Math.max(1, Math.round(detail.delay / 1000)) });
  }
  return CONN_LABELS[state] ? t(CONN_LABELS[state]) : state;
}

/** `els`: the page's elements (connState, starting, startingText); `state`: the SessionState. */
export function createStatus({ els, state }) {
  function setConnState(connState, detail = {}) {
    const el = els.connState;
    if (!el) return;
    const label = connectionLabel(connState, detail);
    el.dataset.state = connState;
    setText(el, label);
    el.title = label;
  }

  /** Shows the starting notice with `text` (the server's, when it sent one), unless output or the end came first. */
  function showStarting(text) {
    if (!state.mayShowStarting()) return;
    setText(els.startingText, text || t('term.starting'));
    setShown(els.starting, true);
  }

  function hideStarting() {
    setShown(els.starting, false);
  }

  return { setConnState, showStarting, hideStarting };
}
