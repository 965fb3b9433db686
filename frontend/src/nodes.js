// The node panel of the session page (docs/nodes.md): the session's nodes with their address,
// memory and CPU use and port badges, "+ Add node", a remove button per node, and each node's
// terminals. The list is asked for (GET .../instances/) about once a second while the page is
// visible, less often after failures. Clicking a node shows its terminals: node1's are the page's
// own (session.js), another node's are opened the first time it is shown (terminal 0 and its
// tabs, tabs.js) and stay connected while another node is on screen.

import { apiRequest } from './api.js';
import { DisposableStore } from './disposables.js';
import { button, element, setShown, setText } from './dom.js';
import { cpuPercent, formatNodeStats, nextPollDelay, nodesUrl } from './nodemodel.js';
import { createPortBadges, placeInOrder } from './ports.js';
import { createTabs, openTerminal } from './tabs.js';
import { confirmAction } from './ui.js';
import { t } from './i18n.js';

/** The states of a node on its way out: no longer shown. */
const GOING = ['removing', 'destroyed'];
const PANEL_KEY = 'playground.nodesPanel';
/** What a node's row says instead of its address while it has none. */
/** The catalogue key of what a node's line says in place of its address while it has none. */
const STATE_WORDS = { requested: 'nodes.starting', provisioning: 'nodes.starting', failed: 'nodes.could_not_start' };
const NARROW = '(max-width: 1000px)'; // the panel starts closed here, and is a menu over the terminal on a phone

/** The API's live nodes in name order (node2 before node10). */
function byNumber(instances) {
  const number = (name) => Number.parseInt(String(name).replace(/^\D+/, ''), 10) || 0;
  return [...instances].sort((a, b) => number(a.name) - number(b.name) || String(a.name).localeCompare(b.name));
}

/**
 * `els`: the panel's elements (panel, toggle, list, add, addReason, toolsTitle) and the top
 * bar's `instance` (the name of the node on screen); `first`:
 * `{name, tabs}` (node1's terminals, the page's own); `area`: the element of the terminals;
 * `makeView(host)` (terminalviews.js); `onShown(name, term)`: the node and terminal on screen;
 * `onSessionGone()`: the list says the session has ended (what node1's terminal tells while it
 * is there); `toast(message, kind)`; `store`: the page's DisposableStore; `lab`: the session has a
 * lab's panel, which takes the room: the node panel starts closed, and its state is not remembered;
 * `onPolled()`: after each answer of the list (what else the page follows rides on this poll).
 */
export function createNodes({ doc, els, sessionId, first, area, makeView, onShown, onSessionGone, toast, store, lab = false, onPolled = () => {} }) {
  const nodes = new Map(); // name -> {name, data, li, els, badges, cpu, reading, tabs, store}
  const removing = new Set(); // nodes this page asked to remove
  let current = first.name;
  let timer = 0;
  let inFlight = false;
  let failures = 0;
  let stopped = false;
  let firstGone = false; // node1 was removed while other nodes went on: its terminal no longer tells the session's end
  let added = 0; // nodes this page added: an answer asked for before the last one may not list it
  let limit = null; // {count, message}: the API refused a node at `count` live nodes

  // ---- the panel: open or closed (collapsed on a wide window, a menu on a narrow one) ---------
  const narrow = window.matchMedia ? window.matchMedia(NARROW).matches : false;
  let remembered = null;
  try {
    remembered = localStorage.getItem(PANEL_KEY);
  } catch {
    /* storage unavailable */
  }
  setPanelOpen(narrow || lab ? false : remembered !== 'closed');

  function setPanelOpen(open, remember = false) {
    els.panel.parentElement.dataset.nodes = open ? 'open' : 'closed';
    els.toggle.setAttribute('aria-expanded', String(open));
    if (!remember) return;
    try {
      localStorage.setItem(PANEL_KEY, open ? 'open' : 'closed');
    } catch {
      /* storage unavailable */
    }
  }
  store.listen(els.toggle, 'click', () => {
    const open = els.panel.parentElement.dataset.nodes !== 'open';
    setPanelOpen(open, !isNarrow() && !lab);
    if (open) nodes.get(current)?.els.select.focus();
  });
  store.listen(els.panel, 'keydown', (event) => {
    if (event.key === 'Escape' && isNarrow()) {
      setPanelOpen(false);
      els.toggle.focus();
    }
  });
  function isNarrow() {
    return window.matchMedia ? window.matchMedia(NARROW).matches : false;
  }

  // ---- one node's row -------------------------------------------------------------------------
  function makeRow(name) {
    const nameEl = element(doc, 'span', { className: 'node-name', text: name });
    const address = element(doc, 'span', { className: 'node-address' });
    const stats = element(doc, 'span', { className: 'node-stats' });
    const select = button(doc, { className: 'node-select', id: `node-${name}` }, () => selectNode(name, true));
    select.append(nameEl, address, stats);
    const remove = button(
      doc,
      { className: 'node-remove', text: '×', title: t('nodes.remove', { name }), attrs: { 'aria-label': t('nodes.remove', { name }) } },
      () => removeNode(name),
    );
    const ports = element(doc, 'ul', { className: 'port-badges', attrs: { 'aria-label': t('nodes.ports_of', { name }) } });
    ports.hidden = true;
    const li = element(doc, 'li', { className: 'node', dataset: { node: name } }, select, remove, ports);
    const badges = createPortBadges({ doc, sessionId, node: name, list: ports, toast });
    return { name, li, badges, els: { select, address, stats, remove }, data: null, reading: null, tabs: null, store: null };
  }

  /** Shows node `data` (the API's instance JSON with stats and ports) in its row. */
  function showRow(node, data, atMs) {
    node.data = data;
    node.li.dataset.state = data.state;
    const reading = data.stats ? { cpuSeconds: data.stats.cpu_seconds, atMs } : null;
    const percent = cpuPercent(node.reading, reading);
    node.reading = reading;
    setText(node.els.address, data.address || (STATE_WORDS[data.state] ? t(STATE_WORDS[data.state]) : ''));
    const stats = formatNodeStats(data.stats, percent);
    setText(node.els.stats, stats);
    setShown(node.els.stats, Boolean(stats));
    node.badges.update(data.ports || []);
  }

  /**
   * The list from the API's answer: rows added, changed and removed (not when `complete` is false:
   * an answer asked for before this page added a node); the one on screen kept if it is still there.
   */
  function render(instances, atMs, complete = true) {
    const live = byNumber(instances.filter((i) => i && i.name && !GOING.includes(i.state) && !removing.has(i.name)));
    const names = new Set(live.map((i) => i.name));
    for (const data of live) showNode(data, atMs);
    if (complete && nodes.has(first.name) && !names.has(first.name) && names.size > 0) firstGone = true;
    if (complete) for (const name of [...nodes.keys()]) if (!names.has(name)) dropNode(name);
    arrange();
  }

  /** Node `data`'s row, made the first time. */
  function showNode(data, atMs) {
    let node = nodes.get(data.name);
    if (!node) {
      node = makeRow(data.name);
      nodes.set(data.name, node);
    }
    showRow(node, data, atMs);
  }

  /** The rows in node order, remove offered while there is more than one, the one on screen marked. */
  function arrange() {
    placeInOrder(els.list, byNumber([...nodes.values()].map((node) => node.data)).map((data) => nodes.get(data.name).li));
    for (const node of nodes.values()) {
      const last = nodes.size <= 1;
      node.els.remove.disabled = last;
      node.els.remove.title = last ? t('nodes.last_cannot_go') : t('nodes.remove', { name: node.name });
    }
    if (!nodes.has(current) && nodes.size) selectNode(nodes.keys().next().value, false);
    markCurrent();
    updateAdd();
  }

  function markCurrent() {
    for (const node of nodes.values()) {
      const on = node.name === current;
      node.li.classList.toggle('is-current', on);
      if (on) node.els.select.setAttribute('aria-current', 'true');
      else node.els.select.removeAttribute('aria-current');
    }
    setText(els.toolsTitle, t('nodes.on', { name: current }));
    setText(els.instance, current);
  }

  // ---- terminals of a node ------------------------------------------------------------------
  /** Node `node`'s terminals (terminal 0 and its tabs), opened once. */
  function openTerminals(node) {
    if (node.name === first.name) return first.tabs;
    if (node.tabs) return node.tabs;
    if (!node.data || !node.data.terminal) return null;
    node.store = new DisposableStore();
    const prefix = `${node.name}-`;
    const zero = openTerminal({
      doc,
      area,
      id: `${prefix}terminal-0`,
      path: node.data.terminal,
      makeView,
      hooks: {
        onState: (state) => {
          node.li.dataset.conn = state;
        },
        onEvent: (event) => {
          if (event.type === 'exit' && event.terminal === 0) refresh(); // the node was removed
        },
      },
    });
    node.store.add(() => {
      for (const listener of zero.listeners) listener.dispose();
      zero.conn.dispose();
      zero.view.dispose();
      zero.view.host.remove();
    });
    node.tabs = createTabs({
      doc,
      sessionId,
      instance: node.name,
      area,
      first: { view: zero.view, conn: zero.conn },
      makeView,
      onActive: (term) => {
        if (current === node.name) onShown(node.name, term);
      },
      toast,
      store: node.store,
      idPrefix: prefix,
    });
    node.tabs.show(false);
    zero.conn.start();
    node.tabs.restore();
    return node.tabs;
  }

  /** Shows node `name`'s terminals (and hides the others'); `focus`: the visitor clicked it. */
  function selectNode(name, focus) {
    const node = nodes.get(name);
    if (!node) return;
    const tabs = openTerminals(node);
    if (!tabs) {
      toast(t('nodes.not_running', { name }), 'info');
      return;
    }
    current = name;
    for (const other of [first.tabs, ...[...nodes.values()].map((n) => n.tabs)]) {
      if (other && other !== tabs) other.show(false);
    }
    tabs.show(true, focus);
    markCurrent();
    if (focus && isNarrow()) setPanelOpen(false);
  }

  /** A node that is no longer listed: its row and its terminals go. */
  function dropNode(name) {
    const node = nodes.get(name);
    nodes.delete(name);
    if (!node) return;
    node.li.remove();
    node.store?.dispose();
    if (name === first.name) first.tabs.show(false);
  }

  // ---- adding and removing --------------------------------------------------------------------
  function updateAdd() {
    if (limit && nodes.size < limit.count) limit = null; // a node went: there is room again
    els.add.disabled = Boolean(limit) || stopped;
    setText(els.addReason, limit ? limit.message : '');
    setShown(els.addReason, Boolean(limit));
  }

  async function addNode() {
    if (els.add.disabled) return;
    els.add.disabled = true;
    els.add.setAttribute('aria-busy', 'true');
    const result = await apiRequest(nodesUrl(sessionId), { method: 'POST', body: {} });
    els.add.removeAttribute('aria-busy');
    if (result.ok && result.data && result.data.name) {
      added += 1;
      showNode(result.data, performance.now()); // shown at once, and its terminal: as Play with Docker did
      arrange();
      selectNode(result.data.name, true);
    } else if (result.status === 409 && result.error === 'too_many_nodes') {
      limit = { count: nodes.size, message: result.message };
    } else if (!result.ok) {
      toast(result.message || t('nodes.add_failed'), 'error');
    }
    updateAdd();
    refresh();
  }

  async function removeNode(name) {
    const node = nodes.get(name);
    if (!node || node.els.remove.disabled) return;
    const sure = await confirmAction(doc, {
      title: t('nodes.remove_confirm', { name }),
      message: t('nodes.remove_message', { name }),
      yes: t('nodes.remove', { name }),
      no: t('common.keep'),
    });
    if (!sure) return;
    removing.add(name);
    node.els.remove.disabled = true;
    const result = await apiRequest(nodesUrl(sessionId, name), { method: 'DELETE' });
    if (result.status === 204 || result.status === 404) {
      if (name === first.name) firstGone = true; // (the last node is never removed: others go on)
      dropNode(name);
      if (current === name && nodes.size) selectNode(nodes.keys().next().value, false);
      markCurrent();
      updateAdd();
    } else {
      removing.delete(name);
      node.els.remove.disabled = false;
      toast(result.message || t('nodes.remove_failed', { name }), 'error');
    }
    refresh();
  }

  // ---- polling -------------------------------------------------------------------------------
  async function poll() {
    timer = 0;
    if (stopped || doc.hidden || inFlight) return;
    inFlight = true;
    const addedBefore = added;
    const result = await apiRequest(nodesUrl(sessionId));
    inFlight = false;
    if (stopped) return;
    if (result.ok && result.data && Array.isArray(result.data.instances)) {
      failures = 0;
      render(result.data.instances, performance.now(), addedBefore === added);
      if (firstGone && nodes.size === 0) onSessionGone(); // while node1 is there, its terminal says why
    } else {
      failures += 1;
      if (firstGone && (result.status === 404 || result.status === 410)) onSessionGone();
    }
    onPolled();
    schedule();
  }

  function schedule() {
    if (stopped || doc.hidden || timer || inFlight) return;
    timer = setTimeout(poll, nextPollDelay(failures));
  }

  /** Asks for the list now (after a change), unless a request is on its way. */
  function refresh() {
    clearTimeout(timer);
    timer = 0;
    poll();
  }

  store.listen(doc, 'visibilitychange', () => {
    if (doc.hidden) {
      clearTimeout(timer);
      timer = 0;
    } else {
      refresh();
    }
  });
  store.listen(els.add, 'click', addNode);
  store.add(() => {
    stopped = true;
    clearTimeout(timer);
    for (const node of nodes.values()) node.store?.dispose();
  });

  /** The session is over: no more polling or adding; the nodes' terminals are closed. */
  function finish() {
    stopped = true;
    clearTimeout(timer);
    updateAdd();
    for (const node of nodes.values()) {
      node.els.remove.disabled = true;
      node.tabs?.finish();
    }
  }

  return {
    /** Starts the list with `instances` (the session's, when known) and polls from then on. */
    start(instances) {
      if (Array.isArray(instances)) render(instances, performance.now());
      refresh();
    },
    refresh,
    finish,
    select: (name) => selectNode(name, true),
    current: () => current,
    /** The terminal number on screen of the node on screen (the upload's target). */
    activeTerminal: () => (current === first.name ? first.tabs : nodes.get(current)?.tabs)?.active() ?? 0,
    /** The tabs of the node on screen (for fitting). */
    currentTabs: () => (current === first.name ? first.tabs : nodes.get(current)?.tabs) || first.tabs,
    list: () => [...nodes.keys()],
    /** True once this page asked to remove node `name` (its terminals' end is no session's end). */
    isRemoved: (name) => removing.has(name),
    tabs: (name) => (name === first.name ? first.tabs : nodes.get(name)?.tabs ?? null),
  };
}
