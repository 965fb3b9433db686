// Session page: header (limits, countdown, End session), the xterm.js terminal
// and its websocket connection, and the tab bar of further shells (tabs.js).

import { deleteSession, extendSession, getSession } from './api.js';
import { TerminalConnection, websocketUrl } from './connection.js';
import { formatCountdown, formatLimits } from './format.js';
import { createOverlay, createToaster } from './ui.js';
import { createTabs, createTerminalView } from './tabs.js';
import { installComfort } from './comfort.js';
import { TERMINAL_THEMES } from './settings.js';

export const FONT_FAMILY = [
  '"JetBrains Mono"',
  '"Cascadia Mono"',
  '"SF Mono"',
  'Menlo',
  'Consolas',
  '"DejaVu Sans Mono"',
  '"Liberation Mono"',
  '"Noto Sans Mono"',
  '"Noto Sans Mono CJK KR"',
  '"Noto Sans CJK KR"',
  '"D2Coding"',
  '"NanumGothicCoding"',
  '"Apple SD Gothic Neo"',
  '"Malgun Gothic"',
  'monospace',
].join(', ');

/** The dark terminal theme (the visitor's theme and font size are applied by comfort.js). */
export const THEME = TERMINAL_THEMES.dark;

const CONN_LABELS = {
  idle: 'Connecting…',
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

// Why a session ended (the server's `ended_reason` / exit `reason` codes).
const ENDED_REASONS = {
  deleted: 'You ended this session.',
  expired: "This session's time ran out.",
  idle: 'This session ended because it was idle too long.',
  failed: 'The sandbox could not be started.',
  out_of_resources: 'The sandbox host ran out of resources; try again in a few minutes.',
  host_lost: 'The sandbox host was lost.',
  shutdown: 'The server was stopped.',
  shell_exited: 'The shell exited. Start a new session to continue.',
};

// The overlay's title for each end reason.
const ENDED_TITLES = {
  deleted: 'Session ended',
  expired: 'Session expired',
  idle: 'Session ended: idle',
  failed: 'The sandbox could not be started',
  out_of_resources: 'Out of resources',
  host_lost: 'Sandbox host lost',
  shutdown: 'Server stopped',
  shell_exited: 'The shell exited',
};

/** A small registry of things to undo when the page goes away. */
class DisposableStore {
  constructor() {
    this._items = [];
    this.disposed = false;
  }

  add(item) {
    if (this.disposed) {
      (typeof item === 'function' ? item : () => item.dispose())();
      return item;
    }
    this._items.push(item);
    return item;
  }

  listen(target, type, handler, options = {}) {
    target.addEventListener(type, handler, options);
    this.add(() => target.removeEventListener(type, handler, options));
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    while (this._items.length) {
      const item = this._items.pop();
      try {
        if (typeof item === 'function') item();
        else item.dispose();
      } catch {
        /* keep disposing the rest */
      }
    }
  }
}

/** Live "time left" display; the deadline is kept in the client's clock. */
class Countdown {
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

  stop(text) {
    this.stopped = true;
    if (text !== undefined) this._set(text, 'is-ended');
    clearInterval(this._timer);
  }

  _set(text, cls) {
    if (this.el.textContent !== text) this.el.textContent = text;
    this.el.dataset.level = cls;
  }

  render() {
    if (this.stopped || this.deadline === null) return;
    const left = Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
    if (left <= 0) {
      this._set('Session expired', 'is-expired');
      if (!this.expired) {
        this.expired = true;
        this.onExpired?.();
      }
      return;
    }
    const level = left <= 60 ? 'is-critical' : left <= 300 ? 'is-warning' : 'is-ok';
    this._set(formatCountdown(left), level);
  }

  dispose() {
    clearInterval(this._timer);
  }
}

function safeOpenLink(event, uri) {
  let url;
  try {
    url = new URL(uri);
  } catch {
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return;
  event.preventDefault?.();
  const win = window.open(url.href, '_blank', 'noopener,noreferrer');
  if (win) win.opener = null;
}

export function initSession(doc = document) {
  const body = doc.body;
  const sessionId = body.dataset.sessionId || '';
  const els = {
    terminal: doc.getElementById('terminal'),
    instance: doc.getElementById('instance-name'),
    limits: doc.getElementById('limits'),
    timeLeft: doc.getElementById('time-left'),
    endButton: doc.getElementById('end-session'),
    extendButton: doc.getElementById('extend-session'),
    banner: doc.getElementById('banner'),
    bannerText: doc.getElementById('banner-text'),
    bannerExtend: doc.getElementById('banner-extend'),
    bannerClose: doc.getElementById('banner-close'),
    connState: doc.getElementById('conn-state'),
    starting: doc.getElementById('starting'),
    startingText: doc.getElementById('starting-text'),
    overlay: doc.getElementById('overlay'),
    toasts: doc.getElementById('toasts'),
  };

  const store = new DisposableStore();
  const toaster = store.add(createToaster(els.toasts));
  const overlay = createOverlay(els.overlay);
  let conn = null;
  let countdown = null;
  let finished = false;
  let sawOutput = false;
  let skew = 0; // server clock minus client clock, in ms, when it is off by more than 2 s
  let extendable = false;

  // ---- terminal ----------------------------------------------------------
  let tabs = null; // the tab bar (tabs.js), once the session is loaded
  /** A terminal view in `host` with the page's options; the visitor's settings (comfort) apply to it. */
  function makeView(host) {
    const options = {
      fontFamily: FONT_FAMILY,
      fontSize: 14,
      lineHeight: 1.1,
      cursorBlink: true,
      scrollback: 5000,
      macOptionIsMeta: true,
      theme: { ...THEME },
    };
    const view = createTerminalView(host, { options, onLink: safeOpenLink });
    comfort.attach(view.term, view.scheduleFit);
    const dispose = view.dispose;
    view.dispose = () => {
      comfort.detach(view.term); // a closed tab's terminal leaves the settings' reach
      dispose();
    };
    return view;
  }
  // Theme, font size, copy/paste, search: settings apply to every attached terminal;
  // copy, paste and search act on the active one, window.playground.term.
  const comfort = installComfort({
    doc,
    store,
    active: () => (window.playground && window.playground.term) || firstView.term,
    toast: (message, kind) => toaster.show(message, { kind, timeoutMs: 6000 }),
  });

  const firstView = store.add(makeView(els.terminal)); // terminal 0, the instance's first shell
  const term = firstView.term;
  const fit = firstView.fit;
  /** Refit the terminal on screen (a tab is refitted when it is shown). */
  function scheduleFit() {
    if (tabs) tabs.fitActive();
    else firstView.scheduleFit();
  }
  fit();
  store.listen(window, 'resize', scheduleFit);
  if (typeof ResizeObserver === 'function') {
    const ro = new ResizeObserver(scheduleFit);
    ro.observe(els.terminal.parentElement);
    store.add(() => ro.disconnect());
  }
  // Web fonts may load late and change the cell size.
  if (doc.fonts && doc.fonts.ready) doc.fonts.ready.then(() => !store.disposed && scheduleFit());

  store.add(term.onData((data) => conn?.sendInput(data)));
  store.add(term.onBinary((data) => conn?.sendBinary(data)));
  store.add(term.onResize(({ cols, rows }) => conn?.sendResize(cols, rows)));

  // ---- page state helpers ------------------------------------------------
  function setConnState(state, detail = {}) {
    const el = els.connState;
    if (!el) return;
    let label = CONN_LABELS[state] || state;
    if (state === 'reconnecting' && detail.delay && !detail.connecting) {
      label = `Reconnecting… (retry in ${Math.max(1, Math.round(detail.delay / 1000))} s)`;
    }
    el.dataset.state = state;
    el.textContent = label;
    el.title = label;
  }

  function hideStarting() {
    if (els.starting) els.starting.hidden = true;
  }

  function showStarting(text) {
    if (!els.starting || finished) return;
    if (els.startingText) els.startingText.textContent = text || 'Starting sandbox…';
    els.starting.hidden = false;
  }

  let sessionLive = false; // the server may still hold a sandbox for this session

  /** "Start a new session": first end this one if it may still hold a sandbox. */
  async function startNew(event) {
    const button = event && event.currentTarget;
    if (button) button.disabled = true;
    if (sessionLive) {
      sessionLive = false;
      try {
        await deleteSession(sessionId);
      } catch {
        /* best effort */
      }
    }
    window.location.assign('/');
  }

  /**
   * Final state: no more input, no reconnect, an overlay that explains why.
   * `live` = the session itself may still be running (e.g. only the shell exited),
   * so "Start a new session" ends it first.
   */
  function finish({ title, message, home = false, live = false }) {
    if (finished) return;
    finished = true;
    sessionLive = live;
    hideStarting();
    term.options.disableStdin = true;
    term.options.cursorBlink = false;
    term.blur();
    if (els.endButton) els.endButton.disabled = !live;
    setExtendable(false);
    hideBanner();
    if (conn && !conn.isFinal) conn.close('session finished');
    tabs?.finish();
    body.classList.add('is-finished');
    overlay.show({
      title,
      message,
      kind: 'final',
      actions: home
        ? [{ id: 'back-home', label: 'Back to Playground', href: '/', primary: true }]
        : [{ id: 'new-session', label: 'Start a new session', onClick: startNew, primary: true }],
    });
  }

  function describeEnded(reason) {
    return ENDED_REASONS[reason] || 'This session has ended and its sandbox was removed.';
  }

  /** The final overlay for a session that ended for `reason` (the server's sentence if it sent one). */
  function finishEnded(reason, message) {
    body.dataset.endedReason = reason || '';
    if (countdown) countdown.stop(reason === 'expired' ? 'Session expired' : 'Ended');
    finish({
      title: ENDED_TITLES[reason] || 'Session ended',
      message: (typeof message === 'string' && message) || describeEnded(reason),
    });
  }

  // ---- extension and warnings ---------------------------------------------
  function setExtendable(can) {
    extendable = can && !finished;
    if (els.extendButton) {
      els.extendButton.hidden = !extendable;
      els.extendButton.disabled = !extendable;
    }
    if (els.bannerExtend) els.bannerExtend.hidden = !extendable;
  }

  /** Extend is offered while the expiry is before the latest the server allows. */
  function updateExtendable(expiresAt, maxExpiresAt) {
    const expires = Date.parse(expiresAt);
    const latest = Date.parse(maxExpiresAt);
    if (Number.isNaN(expires) || Number.isNaN(latest)) return;
    setExtendable(expires < latest);
  }

  function showBanner(message, canExtend) {
    if (!els.banner || finished) return;
    els.bannerText.textContent = message;
    if (els.bannerExtend) els.bannerExtend.hidden = !(canExtend && extendable);
    els.banner.hidden = false;
    scheduleFit();
  }

  function hideBanner() {
    if (!els.banner || els.banner.hidden) return;
    els.banner.hidden = true;
    scheduleFit();
  }

  function localTime(iso) {
    const when = Date.parse(iso);
    if (Number.isNaN(when)) return '';
    return new Date(when - skew).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  async function extend() {
    if (!extendable || finished) return;
    const buttons = [els.extendButton, els.bannerExtend].filter(Boolean);
    for (const button of buttons) button.disabled = true;
    const result = await extendSession(sessionId);
    for (const button of buttons) button.disabled = false;
    if (result.ok && result.data) {
      if (countdown) countdown.setExpiresAt(result.data.expires_at, skew);
      updateExtendable(result.data.expires_at, result.data.max_expires_at);
      hideBanner();
      toaster.show(`Time added: this session now ends at ${localTime(result.data.expires_at)}.`, {
        kind: 'info',
        timeoutMs: 5000,
      });
      return;
    }
    if (result.error === 'longest_lifetime') setExtendable(false);
    toaster.show(result.message || 'Could not extend the session. Please try again.', {
      kind: 'error',
      timeoutMs: 10000,
    });
  }
  for (const button of [els.extendButton, els.bannerExtend]) if (button) store.listen(button, 'click', extend);
  if (els.bannerClose) store.listen(els.bannerClose, 'click', hideBanner);

  // ---- server events -----------------------------------------------------
  function onEvent(event) {
    switch (event.type) {
      case 'status':
        if (event.state === 'running') hideStarting();
        else if (event.state === 'provisioning' && !sawOutput)
          showStarting(typeof event.message === 'string' && event.message ? event.message : '');
        else if (event.state === 'failed')
          finish({
            title: 'The sandbox could not be started',
            message:
              (typeof event.message === 'string' && event.message) || describeEnded('failed'),
            live: true,
          });
        break;
      case 'expiry':
        if (countdown) {
          if (typeof event.seconds_left === 'number') countdown.setSecondsLeft(event.seconds_left);
          else if (event.expires_at) countdown.setExpiresAt(event.expires_at, skew);
        }
        if (event.max_expires_at) updateExtendable(event.expires_at, event.max_expires_at);
        hideBanner(); // a new deadline: the server sends a warning again if one is due
        break;
      case 'warning':
        if (typeof event.message === 'string' && event.message) showBanner(event.message, !!event.extendable);
        break;
      case 'error':
        toaster.show(
          typeof event.message === 'string' && event.message ? event.message : 'Something went wrong.',
          { kind: 'error', timeoutMs: 10000 },
        );
        break;
      case 'exit':
        if (event.reason === 'shell_exited') {
          // Only the shell ended: the session (and its countdown) goes on until ended.
          finish({
            title: ENDED_TITLES.shell_exited,
            message: (typeof event.message === 'string' && event.message) || describeEnded(event.reason),
            live: true,
          });
        } else {
          finishEnded(event.reason, event.message);
        }
        break;
      default:
        break;
    }
  }

  // ---- End session ---------------------------------------------------------
  async function endSession() {
    if (!els.endButton || els.endButton.disabled) return;
    els.endButton.disabled = true;
    els.endButton.setAttribute('aria-busy', 'true');
    const result = await deleteSession(sessionId);
    els.endButton.removeAttribute('aria-busy');
    if (result.status === 204 || result.status === 404 || result.status === 410) {
      sessionLive = false;
      if (countdown) countdown.stop('Ended');
      if (finished) {
        els.endButton.disabled = true;
        overlay.show({
          title: 'Session ended',
          message: 'Your sandbox has been removed.',
          kind: 'final',
          actions: [{ id: 'new-session', label: 'Start a new session', onClick: startNew, primary: true }],
        });
      } else {
        finish({ title: 'Session ended', message: 'Your sandbox has been removed.' });
      }
      return;
    }
    els.endButton.disabled = finished && !sessionLive;
    toaster.show(result.message || 'Could not end the session. Please try again.', {
      kind: 'error',
      timeoutMs: 10000,
    });
  }
  if (els.endButton) store.listen(els.endButton, 'click', endSession);

  // ---- page lifecycle ----------------------------------------------------
  store.listen(window, 'online', () => conn?.reconnectNow());
  store.listen(window, 'pagehide', (event) => {
    if (event.persisted) conn?.suspend();
    else dispose();
  });
  store.listen(window, 'pageshow', (event) => {
    if (event.persisted && conn && !finished) conn.resume();
  });

  function dispose() {
    if (conn) conn.dispose();
    if (countdown) countdown.dispose();
    store.dispose();
  }

  const api = {
    page: 'session',
    term,
    sessionId,
    socket: () => (conn ? conn.socket : null),
    connection: () => conn,
    comfort,
    fit,
    dispose,
    session: null,
  };
  window.playground = api;

  // ---- load the session and connect ---------------------------------------
  async function load() {
    setConnState('connecting');
    showStarting('Starting sandbox…');
    if (!sessionId) {
      finish({ title: 'Session not found', message: 'This address does not name a session.', home: true });
      return;
    }
    const requestedAt = Date.now();
    const result = await getSession(sessionId);
    if (store.disposed) return;
    if (!result.ok || !result.data) {
      setConnState('closed');
      const title =
        result.status === 403
          ? 'Access denied'
          : result.status === 404
            ? 'Session not found'
            : 'Could not load the session';
      finish({ title, message: result.message || 'Please start a new session.', home: true });
      return;
    }

    const data = result.data;
    api.session = data;
    const instance = Array.isArray(data.instances) ? data.instances[0] : null;
    if (els.instance) els.instance.textContent = instance && instance.name ? instance.name : '';
    if (els.limits) {
      const text = formatLimits(data.limits);
      els.limits.textContent = text;
      els.limits.hidden = !text;
    }

    countdown = new Countdown(els.timeLeft, () => {
      if (!finished) toaster.show('The session time is up.', { kind: 'warning' });
    });
    store.add(countdown);
    if (data.expires_at) {
      if (result.serverDate !== null) {
        const receivedAt = Date.now();
        const clientMid = (requestedAt + receivedAt) / 2;
        // The Date header has one-second resolution; only correct for real skew.
        const measured = result.serverDate + 500 - clientMid;
        if (Math.abs(measured) > 2000) skew = measured;
      }
      countdown.setExpiresAt(data.expires_at, skew);
    }

    if (data.state === 'ended') {
      setConnState('closed');
      finishEnded(data.ended_reason);
      return;
    }
    if (data.expires_at && data.max_expires_at) updateExtendable(data.expires_at, data.max_expires_at);
    if (!instance || !instance.terminal) {
      setConnState('closed');
      finish({ title: 'No terminal', message: 'This session has no terminal to connect to.' });
      return;
    }
    showStarting('Starting sandbox…');

    conn = new TerminalConnection(term, websocketUrl(instance.terminal), {
      onState: (state, detail) => {
        setConnState(state, detail);
        if (state === 'open' && detail.reconnected) {
          toaster.show('Reconnected.', { kind: 'info', timeoutMs: 2500 });
        }
      },
      onEvent,
      onOutput: () => {
        if (!sawOutput) {
          sawOutput = true;
          hideStarting();
        }
      },
      onFinalClose: ({ code, message }) => {
        if (finished) return;
        if (code === 4410 && countdown) countdown.stop(countdown.expired ? 'Session expired' : 'Ended');
        const titles = {
          4403: 'Access denied',
          4404: 'Session not found',
          4410: 'This session has ended.',
          1000: 'Disconnected',
        };
        const messages = {
          4403: 'You do not have access to this session. Sessions are tied to the browser that started them.',
          4404: 'This session or its sandbox no longer exists.',
          4410: 'The sandbox for this session has been removed.',
          1000: 'The server closed the terminal connection.',
        };
        finish({
          title: titles[code] || 'Disconnected',
          message: messages[code] || message,
          live: code === 1000,
        });
      },
      onInputDropped: () =>
        toaster.show('You typed more than can be kept while offline; some input was dropped.', {
          kind: 'warning',
        }),
    });
    conn.start();
    tabs = createTabs({
      doc,
      sessionId,
      instance: instance.name,
      area: els.terminal.parentElement,
      first: { view: firstView, conn },
      makeView,
      onActive: (active) => {
        api.term = active; // window.playground.term: the terminal on screen
      },
      toast: (message, kind) => toaster.show(message, { kind, timeoutMs: 6000 }),
      store,
    });
    api.tabs = tabs;
    tabs.restore();
    term.focus();
  }

  load();
  return api;
}
