// The session's events from the server (JSON text frames on terminal 0's websocket, see
// protocol.js) turned into what the page shows.

import { t } from './i18n.js';
import { messageOf } from './protocol.js';

/**
 * `onEvent(event)` for terminal 0's TerminalConnection. `state`: the SessionState; `status`,
 * `topbar`, `endScreen`: the page's parts; `toaster`: ui.js's. A workshop's events: `broadcast`
 * (broadcast.js's banner), `onLabStep(step)` (the lab panel) and `onReset(event)` (the learner's
 * nodes were replaced); `takeover`: takeover.js's banner (an instructor typing); `handRaise`:
 * handraise.js's button (the hand raised or down). Unknown event types are ignored.
 */
export function createEventHandler({
  state,
  status,
  topbar,
  endScreen,
  toaster,
  broadcast,
  takeover,
  handRaise,
  onLabStep,
  onReset,
}) {
  function onStatus(event) {
    if (event.state === 'running') status.hideStarting();
    else if (event.state === 'provisioning') status.showStarting(messageOf(event, ''));
    else if (event.state === 'failed') endScreen.finishFailed(event);
  }

  /** A new deadline (on connect and after every extension). */
  function onExpiry(event) {
    if (state.countdown) {
      if (typeof event.seconds_left === 'number') state.countdown.setSecondsLeft(event.seconds_left);
      else if (event.expires_at) state.countdown.setExpiresAt(event.expires_at, state.skewMs);
    }
    if (event.max_expires_at) topbar.updateExtendable(event.expires_at, event.max_expires_at);
    topbar.hideBanner(); // the server sends a warning again if one is due
  }

  const handlers = {
    status: onStatus,
    expiry: onExpiry,
    warning: (event) => {
      const message = messageOf(event, '');
      if (message) topbar.showBanner(message, Boolean(event.extendable));
    },
    error: (event) => {
      toaster.show(messageOf(event, t('session.error_fallback')), { kind: 'error', timeoutMs: 10000 });
    },
    exit: (event) => endScreen.finishExit(event),
    broadcast: (event) => broadcast?.show(event),
    takeover: (event) => takeover?.update(event),
    hand: (event) => handRaise?.setHand(event.hand),
    lab_step: (event) => onLabStep?.(event.step),
    reset: (event) => onReset?.(event),
  };

  return function onEvent(event) {
    const handler = Object.prototype.hasOwnProperty.call(handlers, event.type) ? handlers[event.type] : null;
    if (handler) handler(event);
  };
}
