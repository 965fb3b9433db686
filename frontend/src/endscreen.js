// The end-of-session screen: the final overlay, which says why in the server's words
// (the `message` of its `exit` and `status` events, the API's `ended_message`), with a
// generic sentence only when the server sent none.

import { deleteSession } from './api.js';
import { t } from './i18n.js';
import { CLOSE_ENDED, CLOSE_NORMAL, SHELL_EXITED, messageOf } from './protocol.js';

/** What the page says when the server did not say why the session ended (in the page's language). */
export const endedFallback = () => t('end.ended_fallback');

/** The end reasons (the server's `reason` codes) with a heading of their own; the sentence under it is the server's. */
const TITLED_REASONS = ['deleted', 'expired', 'idle', 'failed', 'out_of_resources', 'host_lost', 'shutdown', SHELL_EXITED];

/** The heading for a session that ended for `reason`. */
function endedTitle(reason) {
  return t(`end.title.${TITLED_REASONS.includes(reason) ? reason : 'deleted'}`);
}

/**
 * `doc`, `state` (the SessionState), `overlay` (ui.js's) and `term` (terminal 0);
 * `onFinish(live)` does the rest of the page's final state (top bar, connections, tabs).
 */
export function createEndScreen({ doc, state, overlay, term, onFinish }) {
  const newSession = { id: 'new-session', label: t('end.new_session'), onClick: startNew, primary: true };
  const backHome = { id: 'back-home', label: t('end.back_home'), href: '/', primary: true };

  /** "Start a new session": first end this one if it may still hold a sandbox. */
  async function startNew(event) {
    const button = event && event.currentTarget;
    if (button) button.disabled = true;
    if (state.takeLive()) {
      try {
        await deleteSession(state.sessionId);
      } catch {
        /* best effort */
      }
    }
    window.location.assign('/');
  }

  /**
   * The final state, once: no more input, no reconnect, an overlay that says why.
   * `live` = the session itself may still be running, so "Start a new session" ends it first;
   * `home` = there is no session to speak of: the overlay leads back home.
   */
  function finish({ title, message, home = false, live = false }) {
    if (!state.finish(live)) return;
    term.options.disableStdin = true;
    term.options.cursorBlink = false;
    term.blur();
    onFinish(live);
    doc.body.classList.add('is-finished');
    overlay.show({ title, message, kind: 'final', actions: [home ? backHome : newSession] });
  }

  /** The session ended for `reason`; `message` is the server's sentence. */
  function finishEnded(reason, message) {
    doc.body.dataset.endedReason = reason || '';
    state.countdown?.stopEnded(reason === 'expired');
    finish({ title: endedTitle(reason), message: message || endedFallback() });
  }

  /** An `exit` event: the shell alone exited (the session goes on until ended), or the session ended. */
  function finishExit(event) {
    if (event.reason === SHELL_EXITED) {
      finish({ title: endedTitle(SHELL_EXITED), message: messageOf(event, t('end.shell_fallback')), live: true });
    } else {
      finishEnded(event.reason, messageOf(event, endedFallback()));
    }
  }

  /** A `status` event saying the sandbox failed to start. */
  function finishFailed(event) {
    finish({ title: endedTitle('failed'), message: messageOf(event, t('end.failed_fallback')), live: true });
  }

  /**
   * The server closed terminal 0 for good, with no `exit` event first ({code, title, message}:
   * protocol.js's meaning of the code). After a normal close the session may still be running.
   */
  function finishClosed({ code, title, message }) {
    if (state.finished) return;
    if (code === CLOSE_ENDED) state.countdown?.stopEnded();
    finish({ title, message, live: code === CLOSE_NORMAL });
  }

  /** End session succeeded: the sandbox is gone (also when an earlier end left the session live). */
  function showRemoved() {
    state.countdown?.stop(t('end.countdown_ended'));
    if (!state.finished) {
      finish({ title: endedTitle('deleted'), message: t('end.removed') });
      return;
    }
    overlay.show({ title: endedTitle('deleted'), message: t('end.removed'), kind: 'final', actions: [newSession] });
  }

  return { finish, finishEnded, finishExit, finishFailed, finishClosed, showRemoved };
}
