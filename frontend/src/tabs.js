// Terminal tabs (issue #5): more shells in the same sandbox.
//
// A tab bar above the terminal: one tab per terminal of the instance, a "+" that opens
// another (POST .../terminals/) and a "×" on each tab but the first (DELETE .../terminals/<n>/).
// Each tab is a TerminalView (its own xterm.js Terminal in its own element) with its own
// TerminalConnection, so switching tabs keeps every screen and each reconnects by itself.
// Terminal 0 belongs to the session page (its events carry the session's state); the tabs
// after it report only their own end. On reload the open tabs are listed (GET) and restored.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';

import { apiRequest } from './api.js';
import { TerminalConnection, websocketUrl } from './connection.js';
import { button, element } from './dom.js';
import { CLOSE_NORMAL, CLOSE_UNKNOWN, SHELL_EXITED, messageOf } from './protocol.js';
import { t } from './i18n.js';

/**
 * An xterm.js Terminal opened in `host`, with fitting to its element and clickable links.
 * `fit()` sizes it now, `scheduleFit()` on the next frame (both do nothing while hidden).
 */
export function createTerminalView(host, { options, onLink }) {
  const term = new Terminal(options);
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  term.loadAddon(new WebLinksAddon(onLink));
  term.open(host);
  let frame = 0;
  function fit() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    if (host.hidden) return;
    try {
      fitAddon.fit();
    } catch {
      /* element not visible yet */
    }
  }
  function scheduleFit() {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      fit();
    });
  }
  function dispose() {
    if (frame) cancelAnimationFrame(frame);
    term.dispose();
  }
  return { term, host, fit, scheduleFit, dispose };
}

/**
 * A terminal pane (hidden until shown) in `area` with its view (`makeView(host)`) and its
 * websocket to `path` (TerminalConnection with `hooks`, not started), the keyboard and the size
 * wired to it. `listeners` are to be disposed with the view.
 */
export function openTerminal({ doc, area, id, path, makeView, hooks }) {
  const host = element(doc, 'div', { className: 'terminal-pane', id });
  host.hidden = true;
  area.append(host);
  const view = makeView(host);
  const conn = new TerminalConnection(view.term, websocketUrl(path), hooks);
  const listeners = [
    view.term.onData((data) => conn.sendInput(data)),
    view.term.onBinary((data) => conn.sendBinary(data)),
    view.term.onResize(({ cols, rows }) => conn.sendResize(cols, rows)),
  ];
  return { view, conn, listeners };
}

function terminalsUrl(sessionId, instance, number) {
  const base = `/api/sessions/${encodeURIComponent(sessionId)}/instances/${encodeURIComponent(instance)}/terminals/`;
  return number === undefined ? base : `${base}${number}/`;
}

function label(number) {
  return t('tabs.shell', { number: number + 1 });
}

/**
 * The tab bar and the tabs after the first.
 *
 * `first` = {view, conn} of terminal 0; `area` = the element holding the terminals;
 * `makeView(host)` creates a TerminalView with the page's options (and its settings applied);
 * `onActive(term)` is told which Terminal is on screen; `toast(message, kind)`.
 * `idPrefix` goes in front of the element ids (`tab-<n>`, `terminal-<n>`, `tab-add`): '' for
 * the first node's tabs, `<node>-` for another node's (nodes.js), so the ids stay unique.
 */
export function createTabs({ doc, sessionId, instance, area, first, makeView, onActive, toast, store, idPrefix = '' }) {
  const tabs = new Map(); // number -> {number, view, conn, button, wrap}
  let active = 0;
  let finished = false;
  let shown = true; // false while another node's terminals are on screen
  const rememberKey = idPrefix ? `pg-active-tab-${sessionId}-${instance}` : `pg-active-tab-${sessionId}`;
  let remembered = NaN; // the tab shown before a reload (read before showing the first)
  try {
    remembered = Number.parseInt(sessionStorage.getItem(rememberKey) || '', 10);
  } catch {
    /* storage unavailable */
  }

  const list = element(doc, 'div', { className: 'tabbar-tabs', attrs: { role: 'tablist' } });
  const addLabel = t('tabs.add');
  const add = button(
    doc,
    { className: 'tab-add', id: `${idPrefix}tab-add`, text: '+', title: addLabel, attrs: { 'aria-label': addLabel } },
    openTab,
  );
  const barLabel = t('tabs.bar', { instance });
  const bar = element(doc, 'nav', { className: 'tabbar', attrs: { 'aria-label': barLabel } }, list, add);
  bar.dataset.node = instance;
  area.parentNode.insertBefore(bar, area);

  function tabButton(number) {
    const select = button(
      doc,
      {
        className: 'tab-select',
        id: `${idPrefix}tab-${number}`,
        text: label(number),
        attrs: { role: 'tab' },
        dataset: { terminal: String(number) },
      },
      () => activate(number),
    );
    select.addEventListener('keydown', (event) => onTabKey(event, number));
    const wrap = element(doc, 'span', { className: 'tab' }, select);
    if (number !== 0) {
      const close = button(
        doc,
        {
          className: 'tab-close',
          text: '×',
          title: t('tabs.close_title', { label: label(number) }),
          attrs: { 'aria-label': t('tabs.close', { label: label(number) }) },
        },
        () => closeTab(number),
      );
      wrap.append(close);
    }
    list.append(wrap);
    return { button: select, wrap };
  }

  /** Left/Right/Home/End move between tabs; Delete closes the focused one (not the first). */
  function onTabKey(event, number) {
    const numbers = [...tabs.keys()];
    const at = numbers.indexOf(number);
    const moves = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: numbers.length - 1 };
    if (event.key in moves) {
      event.preventDefault();
      const next = numbers[(moves[event.key] + numbers.length) % numbers.length];
      activate(next);
      tabs.get(next).button.focus();
    } else if (event.key === 'Delete' && number !== 0) {
      event.preventDefault();
      closeTab(number);
    }
  }

  function register(number, view, conn) {
    const { button: select, wrap } = tabButton(number);
    select.setAttribute('aria-controls', view.host.id);
    view.host.setAttribute('role', 'tabpanel');
    view.host.setAttribute('aria-labelledby', select.id);
    tabs.set(number, { number, view, conn, button: select, wrap });
  }

  function activate(number, focus = true) {
    const tab = tabs.get(number);
    if (!tab) return;
    active = number;
    for (const other of tabs.values()) {
      const isActive = other === tab;
      other.view.host.hidden = !(isActive && shown);
      other.button.setAttribute('aria-selected', String(isActive));
      other.button.tabIndex = isActive ? 0 : -1;
      other.wrap.classList.toggle('is-active', isActive);
    }
    try {
      sessionStorage.setItem(rememberKey, String(number));
    } catch {
      /* storage unavailable: the first tab is shown after a reload */
    }
    if (!shown) return;
    tab.view.fit();
    onActive(tab.view.term, number);
    if (focus && !finished) tab.view.term.focus();
  }

  /** Shows these terminals (their bar and the active one) or hides them all (another node's are on screen). */
  function show(visible, focus = false) {
    shown = visible;
    bar.hidden = !visible;
    activate(active, focus);
  }

  function removeTab(number, pageGone = false) {
    const tab = tabs.get(number);
    if (!tab || number === 0) return;
    tabs.delete(number);
    for (const listener of tab.listeners || []) listener.dispose();
    tab.conn.dispose();
    tab.view.dispose();
    tab.view.host.remove();
    tab.wrap.remove();
    if (active === number && !pageGone) activate([...tabs.keys()].filter((n) => n < number).pop() ?? 0);
  }

  function openView(number, path) {
    const { view, conn, listeners } = openTerminal({
      doc,
      area,
      id: `${idPrefix}terminal-${number}`,
      path,
      makeView,
      hooks: {
        onState: (state) => {
          const tab = tabs.get(number);
          if (tab) tab.wrap.dataset.state = state;
        },
        onEvent: (event) => onTabEvent(number, event),
        onFinalClose: ({ code }) => {
          // The tab ended: nothing to reconnect to.
          if (code === CLOSE_NORMAL || code === CLOSE_UNKNOWN) removeTab(number);
        },
      },
    });
    register(number, view, conn);
    tabs.get(number).listeners = listeners;
    conn.start();
    return tabs.get(number);
  }

  function onTabEvent(number, event) {
    if (event.type === 'exit' && event.terminal === number) {
      if (event.reason === SHELL_EXITED) toast(`${label(number)} exited.`, 'info');
      removeTab(number);
    } else if (event.type === 'error' && messageOf(event, '')) {
      toast(event.message, 'error');
    }
    // Session-wide events (expiry, warnings, the session's end) come on terminal 0's connection.
  }

  async function openTab() {
    if (finished) return;
    add.disabled = true;
    const result = await apiRequest(terminalsUrl(sessionId, instance), { method: 'POST', body: {} });
    add.disabled = finished;
    if (!result.ok || !result.data) {
      toast(result.message || t('tabs.open_failed'), 'error');
      return;
    }
    openView(result.data.id, result.data.terminal);
    activate(result.data.id);
  }

  async function closeTab(number) {
    const tab = tabs.get(number);
    if (!tab || number === 0) return;
    const result = await apiRequest(terminalsUrl(sessionId, instance, number), { method: 'DELETE' });
    if (result.status === 204 || result.status === 404) {
      removeTab(number);
      return;
    }
    toast(result.message || t('tabs.close_failed'), 'error');
  }

  /** Open the tabs the instance already has (after a reload), then show the remembered one. */
  async function restore() {
    const result = await apiRequest(terminalsUrl(sessionId, instance));
    if (!result.ok || !result.data || finished) return;
    for (const { id, terminal } of result.data.terminals || []) {
      if (id !== 0 && !tabs.has(id)) openView(id, terminal);
    }
    if (tabs.has(remembered) && remembered !== active) activate(remembered, false);
  }

  /** The session is over: no more tabs, every connection closed. */
  function finish() {
    finished = true;
    add.disabled = true;
    for (const tab of tabs.values()) {
      if (tab.number !== 0 && !tab.conn.isFinal) tab.conn.close('session finished');
    }
  }

  function fitActive() {
    tabs.get(active)?.view.scheduleFit();
  }

  register(0, first.view, first.conn);
  activate(0, false);
  /** Closes every tab's connection but terminal 0's (its owner's) and removes the tab bar. */
  function dispose() {
    for (const number of [...tabs.keys()]) removeTab(number, true); // the shown tab is remembered
    bar.remove();
  }
  store.add(dispose);

  return {
    open: openTab,
    close: closeTab,
    activate,
    restore,
    finish,
    fitActive,
    show,
    dispose,
    list: () => [...tabs.keys()],
    active: () => active,
    term: (number) => tabs.get(number)?.view.term ?? null,
    connection: (number) => tabs.get(number)?.conn ?? null,
  };
}
