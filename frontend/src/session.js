// Session page: puts its parts together and loads the session. The parts: the state
// (sessionstate.js), the terminals (terminalviews.js, tabs.js) and terminal 0's websocket
// (connection.js), the top bar (topbar.js, status.js, countdown.js), the server's events
// (serverevents.js) and the end-of-session screen (endscreen.js).

import { getSession } from './api.js';
import { createBroadcastBanner } from './broadcast.js';
import { createHandRaise } from './handraise.js';
import { showRecordingsLink } from './recordingslink.js';
import { TerminalConnection, websocketUrl } from './connection.js';
import { Countdown, measureSkew } from './countdown.js';
import { DisposableStore } from './disposables.js';
import { createEndScreen, endedFallback } from './endscreen.js';
import { t } from './i18n.js';
import { NODE_REMOVED } from './protocol.js';
import { createFiles } from './files.js';
import { createNodes } from './nodes.js';
import { createSetupStatus } from './setup.js';
import { createOpenPort } from './ports.js';
import { showRegistry } from './registry.js';
import { linkHomeDownloads } from './homedownload.js';
import { createEventHandler } from './serverevents.js';
import { SessionState } from './sessionstate.js';
import { createTakeoverBanner } from './takeover.js';
import { createStatus } from './status.js';
import { createTabs } from './tabs.js';
import { createTerminalViews } from './terminalviews.js';
import { createTopBar } from './topbar.js';
import { createOverlay, createToaster } from './ui.js';

const ELEMENT_IDS = {
  terminal: 'terminal',
  instance: 'instance-name',
  limits: 'limits',
  timeLeft: 'time-left',
  endButton: 'end-session',
  extendButton: 'extend-session',
  banner: 'banner',
  bannerText: 'banner-text',
  bannerExtend: 'banner-extend',
  bannerClose: 'banner-close',
  connState: 'conn-state',
  starting: 'starting',
  startingText: 'starting-text',
  overlay: 'overlay',
  toasts: 'toasts',
  nodesPanel: 'nodes-panel',
  nodesToggle: 'nodes-toggle',
  nodeList: 'node-list',
  nodeAdd: 'node-add',
  nodeAddReason: 'node-add-reason',
  nodeToolsTitle: 'node-tools-title',
  portOpenForm: 'port-open-form',
  portOpen: 'port-open',
  portOpenError: 'port-open-error',
  downloadForm: 'download-form',
  downloadPath: 'download-path',
  uploadButton: 'upload-button',
  uploadInput: 'upload-input',
  transferStatus: 'transfer-status',
  transferText: 'transfer-text',
  transferProgress: 'transfer-progress',
  transferClose: 'transfer-close',
  setupStatus: 'setup-status',
  setupText: 'setup-text',
  setupDetail: 'setup-detail',
  setupProgress: 'setup-progress',
  setupLogButton: 'setup-log-button',
  setupClose: 'setup-close',
};

const RESET_RELOAD_MS = 1500; // the time to read that the sandbox was replaced

/** The session page's elements by role (null for one the page does not have). */
function pageElements(doc) {
  return Object.fromEntries(Object.entries(ELEMENT_IDS).map(([role, id]) => [role, doc.getElementById(id)]));
}

/**
 * Starts the session page in `doc`; returns window.playground (see frontend/README.md).
 * `started`: the start's answer when the page was opened in place (sessionpage.js), so the
 * session is not asked for again and the terminal connects at once, with `started.socket` (its
 * first terminal's websocket, made in this task) when there is one.
 */
export function initSession(doc = document, started = null) {
  const els = pageElements(doc);
  const state = new SessionState(doc.body.dataset.sessionId || '');
  const store = new DisposableStore();
  const toaster = store.add(createToaster(els.toasts));
  const views = createTerminalViews({ doc, host: els.terminal, store, toaster, state });
  const term = views.firstView.term;
  const status = createStatus({ els, state });
  const topbar = createTopBar({
    els,
    state,
    store,
    toaster,
    scheduleFit: views.scheduleFit,
    onEnded: () => endScreen.showRemoved(),
  });
  const endScreen = createEndScreen({
    doc,
    state,
    overlay: createOverlay(els.overlay),
    term,
    onFinish: (live) => {
      status.hideStarting();
      topbar.finish(live);
      if (state.conn && !state.conn.isFinal) state.conn.close('session finished');
      state.tabs?.finish();
      state.nodes?.finish();
    },
  });
  const broadcast = createBroadcastBanner(doc);
  const takeover = createTakeoverBanner(doc);
  const handRaise = createHandRaise(doc, state.sessionId, { toaster }); // a workshop learner's "Raise hand"
  const onEvent = createEventHandler({
    state,
    status,
    topbar,
    endScreen,
    toaster,
    broadcast,
    takeover,
    handRaise,
    onLabStep: (step) => api.lab?.goTo(step),
    onReset: () => {
      // New sandboxes of the same names: the terminal reconnects by itself; the reload brings the
      // tabs, the node panel and the lab (back at step 1) up to date.
      toaster.show(t('session.reset'), { kind: 'info', timeoutMs: 3000 });
      setTimeout(() => window.location.reload(), RESET_RELOAD_MS);
    },
  });

  // Typed while the session loads (a resumed tab is typed in at once): held until the connection exists.
  store.add(term.onData((data) => state.type('sendInput', data)));
  store.add(term.onBinary((data) => state.type('sendBinary', data)));
  store.add(term.onResize(({ cols, rows }) => state.conn?.sendResize(cols, rows)));

  store.listen(window, 'online', () => state.conn?.reconnectNow());
  store.listen(window, 'pagehide', (event) => {
    if (event.persisted) state.conn?.suspend();
    else dispose();
  });
  store.listen(window, 'pageshow', (event) => {
    if (event.persisted && state.conn && !state.finished) state.conn.resume();
  });

  function dispose() {
    state.conn?.dispose();
    state.countdown?.dispose();
    store.dispose();
  }

  const api = {
    page: 'session',
    term,
    sessionId: state.sessionId,
    socket: () => (state.conn ? state.conn.socket : null),
    connection: () => state.conn,
    comfort: views.comfort,
    fit: views.firstView.fit,
    dispose,
    session: null,
  };
  window.playground = api;

  /**
   * The node panel (nodes.js), its ports and files (ports.js, files.js), with node1's tabs as the
   * first node's; a template's setup line (setup.js), which follows the panel's poll.
   */
  function startNodes(instance, data) {
    if (!els.nodesPanel) return;
    const setup = createSetupStatus({
      doc,
      els: {
        status: els.setupStatus,
        text: els.setupText,
        detail: els.setupDetail,
        progress: els.setupProgress,
        logButton: els.setupLogButton,
        close: els.setupClose,
      },
      sessionId: state.sessionId,
      store,
    });
    setup.update(data.template);
    state.nodes = createNodes({
      doc,
      els: {
        panel: els.nodesPanel,
        toggle: els.nodesToggle,
        list: els.nodeList,
        add: els.nodeAdd,
        addReason: els.nodeAddReason,
        toolsTitle: els.nodeToolsTitle,
        instance: els.instance,
      },
      sessionId: state.sessionId,
      first: { name: instance.name, tabs: state.tabs },
      area: els.terminal.parentElement,
      makeView: views.makeView,
      onShown: (name, shown) => {
        api.term = shown;
      },
      onSessionGone: async () => {
        const result = await getSession(state.sessionId);
        const data = result.ok ? result.data : null;
        if (state.finished || (data && data.state === 'active')) return;
        if (data) endScreen.finishEnded(data.ended_reason, data.ended_message);
        else endScreen.finish({ title: t('end.title.deleted'), message: result.message || endedFallback(), home: true });
      },
      toast: views.toast,
      store,
      lab: Boolean(data.lab),
      onPolled: setup.refresh,
    });
    createOpenPort({
      sessionId: state.sessionId,
      node: state.nodes.current,
      form: els.portOpenForm,
      input: els.portOpen,
      error: els.portOpenError,
      store,
    });
    createFiles({
      doc,
      sessionId: state.sessionId,
      target: () => ({ node: state.nodes.current(), terminal: state.nodes.activeTerminal() }),
      els: {
        dropArea: els.terminal.parentElement,
        status: els.transferStatus,
        statusText: els.transferText,
        progress: els.transferProgress,
        statusClose: els.transferClose,
        uploadButton: els.uploadButton,
        fileInput: els.uploadInput,
        downloadForm: els.downloadForm,
        downloadPath: els.downloadPath,
      },
      store,
    });
    api.nodes = state.nodes;
    state.nodes.start(data.instances);
  }

  /** Terminal 0's websocket (the `instance`'s terminal path), then the tab bar with its other terminals. */
  function connect(instance) {
    // Node1 removed (from this page or elsewhere: its `exit` says node_removed, then the socket
    // closes): its terminal's end is not the session's.
    let nodeRemoved = false;
    const removed = () => nodeRemoved || Boolean(state.nodes && state.nodes.isRemoved(instance.name));
    const conn = new TerminalConnection(term, websocketUrl(instance.terminal), {
      onState: (connState, detail) => {
        status.setConnState(connState, detail);
        if (connState === 'open') takeover.reset(); // the server tells a new connection of a takeover going on
        if (connState === 'open' && detail.reconnected) toaster.show(t('session.reconnected'), { kind: 'info', timeoutMs: 2500 });
      },
      onEvent: (event) => {
        if (event.type === 'exit' && event.reason === NODE_REMOVED) {
          nodeRemoved = true;
          state.nodes?.refresh();
        }
        if (!(event.type === 'exit' && removed())) onEvent(event);
      },
      onOutput: () => {
        if (!state.noteOutput()) return;
        status.hideStarting();
        // The sandbox exists once its shell has printed: now ask for the tabs it has (a reload's).
        // Asked before, while the sandbox was being created, the API answered 409 unknown_sandbox.
        state.tabs?.restore();
      },
      onFinalClose: (closed) => {
        if (!removed()) endScreen.finishClosed(closed);
      },
      onInputDropped: () =>
        toaster.show(t('session.input_dropped'), { kind: 'warning' }),
    }, { socket: started ? started.socket : null });
    conn.start();
    state.setConnection(conn);
    state.tabs = createTabs({
      doc,
      sessionId: state.sessionId,
      instance: instance.name,
      area: els.terminal.parentElement,
      first: { view: views.firstView, conn: state.conn },
      makeView: views.makeView,
      onActive: (active) => {
        api.term = active; // window.playground.term: the terminal on screen
      },
      toast: views.toast,
      store,
    });
    api.tabs = state.tabs;
    term.focus();
  }

  /** The session's countdown, from its API data (`requestedAt`: when it was asked for, for the skew). */
  function startCountdown(result, requestedAt) {
    state.countdown = store.add(
      new Countdown(els.timeLeft, () => {
        if (!state.finished) toaster.show(t('session.time_up'), { kind: 'warning' });
      }),
    );
    if (!result.data.expires_at) return;
    state.skewMs = measureSkew(requestedAt, Date.now(), result.serverDate);
    state.countdown.setExpiresAt(result.data.expires_at, state.skewMs);
  }

  async function load() {
    status.setConnState('connecting');
    status.showStarting();
    if (!state.sessionId) {
      endScreen.finish({ title: t('session.not_found'), message: t('session.not_found_message'), home: true });
      return;
    }
    const requestedAt = started ? started.requestedAt : Date.now();
    const result = started || (await getSession(state.sessionId));
    if (store.disposed) return;
    if (!result.ok || !result.data) {
      status.setConnState('closed');
      const titles = { 403: t('session.access_denied'), 404: t('session.not_found') };
      const title = titles[result.status] || t('session.load_failed');
      endScreen.finish({ title, message: result.message || t('session.start_new'), home: true });
      return;
    }
    const data = result.data;
    api.session = data;
    // The first node still there (node1 unless it was removed; any, once the session has ended).
    const instances = Array.isArray(data.instances) ? data.instances : [];
    const instance = instances.find((i) => !['removing', 'destroyed'].includes(i.state)) || instances[0] || null;
    topbar.showSession(data, instance);
    startCountdown(result, requestedAt);
    if (data.state === 'ended') {
      status.setConnState('closed');
      endScreen.finishEnded(data.ended_reason, data.ended_message);
      return;
    }
    if (data.expires_at && data.max_expires_at) topbar.updateExtendable(data.expires_at, data.max_expires_at);
    showRegistry(doc, data.registry, toaster, store);
    if (data.workshop) broadcast.show(data.workshop.broadcast);
    linkHomeDownloads(doc, data.id);
    if (data.workshop) handRaise.show(data.workshop);
    if (data.workshop) showRecordingsLink(doc, data.workshop); // the learner's recordings page
    if (!instance || !instance.terminal) {
      status.setConnState('closed');
      endScreen.finish({ title: t('session.no_terminal'), message: t('session.no_terminal_message') });
      return;
    }
    connect(instance);
    startNodes(instance, data);
  }

  load();
  return api;
}
