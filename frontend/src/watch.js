// The instructor's watch page (/workshops/<id>/learners/<pk>/watch/, playground/workshops/watch.py):
// a learner's terminal live through ws/watch/<session>/<node>/, read-only until "Take over",
// with a tab per node when the learner has several. The terminal view and its connection are the
// session page's (tabs.js, connection.js); the server drops a watcher's input until it has taken
// over, and every resize (the learner's window sizes the terminal).

import { TerminalConnection, websocketUrl } from './connection.js';
import { setLanguage, t } from './i18n.js';
import { messageOf } from './protocol.js';
import { createTerminalView } from './tabs.js';
import { THEME, terminalFont } from './terminalviews.js';

/** The watch websocket's path for node `node` of session `sessionHex`. */
export function watchPath(sessionHex, node) {
  return `/ws/watch/${encodeURIComponent(sessionHex)}/${encodeURIComponent(node)}/`;
}

/** The control frame (a text frame) that takes the terminal over (`on`) or gives it back. */
export function takeoverFrame(on) {
  return JSON.stringify({ type: 'takeover', on: Boolean(on) });
}

/** What the page says of a connection `state` of TerminalConnection ('' once open). */
export function stateText(state) {
  if (state === 'connecting') return t('watch.connecting');
  if (state === 'reconnecting') return t('watch.reconnecting');
  return '';
}

/** Starts the watch page in `doc` (its `#watch` section); returns `{ conn, select(node) }`. */
export function openWatch(doc, WebSocketClass = globalThis.WebSocket) {
  const root = doc.getElementById('watch');
  if (!root) return null;
  setLanguage(doc.documentElement.lang);
  const byId = (id) => doc.getElementById(id);
  const els = { mode: byId('watch-mode'), toggle: byId('watch-toggle'), status: byId('watch-status') };
  const nodesData = byId('watch-node-names');
  const nodes = nodesData ? JSON.parse(nodesData.textContent) : ['node1'];
  const view = createTerminalView(byId('watch-terminal'), {
    options: {
      fontFamily: terminalFont(doc.documentElement.lang),
      fontSize: 14,
      lineHeight: 1.1,
      cursorBlink: false,
      disableStdin: true,
      scrollback: 5000,
      theme: { ...THEME },
    },
    onLink: () => {},
  });
  let conn = null;
  let typing = false;

  function setTyping(on) {
    typing = Boolean(on);
    view.term.options.disableStdin = !typing;
    els.mode.textContent = typing ? t('watch.typing') : t('watch.read_only');
    els.mode.dataset.mode = typing ? 'typing' : 'read-only';
    els.toggle.textContent = typing ? t('watch.give_back') : t('watch.take_over');
    els.toggle.setAttribute('aria-pressed', String(typing));
    if (typing) view.term.focus();
  }

  const hooks = {
    onState(state) {
      els.status.textContent = stateText(state);
      els.toggle.disabled = state !== 'open';
      if (state !== 'open') setTyping(false); // a new connection starts read-only
    },
    onEvent(event) {
      if (event.type === 'takeover') setTyping(event.on === true);
      else if (event.type === 'error' || event.type === 'exit') els.status.textContent = messageOf(event, '');
      else if (event.type === 'status' && event.state !== 'running') els.status.textContent = messageOf(event, '');
      else if (event.type === 'status') els.status.textContent = '';
    },
    onFinalClose({ message }) {
      els.status.textContent = message;
      els.toggle.disabled = true;
    },
  };

  function select(node) {
    conn?.dispose(); // closing the old connection gives its terminal back
    view.term.reset();
    setTyping(false);
    for (const tab of doc.querySelectorAll('[data-watch-node]')) {
      tab.setAttribute('aria-selected', String(tab.dataset.watchNode === node));
    }
    conn = new TerminalConnection(view.term, websocketUrl(watchPath(root.dataset.session, node)), hooks, {
      WebSocket: WebSocketClass,
    });
    conn.start();
  }

  view.term.onData((data) => typing && conn?.sendInput(data));
  view.term.onBinary((data) => typing && conn?.sendBinary(data));
  els.toggle.addEventListener('click', () => {
    if (conn?.isOpen) conn.socket.send(takeoverFrame(!typing));
  });
  for (const tab of doc.querySelectorAll('[data-watch-node]')) {
    tab.addEventListener('click', () => select(tab.dataset.watchNode));
  }
  const win = doc.defaultView || window;
  win.addEventListener('resize', () => view.scheduleFit());
  win.addEventListener('pagehide', () => conn?.dispose());
  view.fit();
  select(nodes[0]);
  return {
    get conn() {
      return conn;
    },
    select,
  };
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => openWatch(document));
  else openWatch(document);
}
