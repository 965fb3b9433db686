// The session page's top bar and the warning banner under it: the instance's name and
// limits, Extend (in the bar and in the banner) and End session (once confirmed).

import { endSession as endOnServer, extendSession } from './api.js';
import { localTime } from './countdown.js';
import { setEnabled, setShown, setText } from './dom.js';
import { formatLimits } from './format.js';
import { confirmEndSession } from './ui.js';
import { t } from './i18n.js';

/**
 * `els`: the page's elements; `state`: the SessionState; `store`: the page's DisposableStore;
 * `toaster`: ui.js's; `scheduleFit()` refits the terminal (the banner takes room from it);
 * `onEnded()`: End session succeeded.
 */
export function createTopBar({ els, state, store, toaster, scheduleFit, onEnded }) {
  const extendButtons = [els.extendButton, els.bannerExtend];

  /** The instance's name and the sandbox's limits, from the session's API data. */
  function showSession(data, instance) {
    setText(els.instance, instance && instance.name ? instance.name : '');
    const limits = formatLimits(data.limits);
    setText(els.limits, limits);
    setShown(els.limits, Boolean(limits));
  }

  function setExtendable(can) {
    const offered = state.setExtendable(can);
    setShown(els.extendButton, offered);
    setEnabled([els.extendButton], offered);
    setShown(els.bannerExtend, offered);
  }

  /** Extend is offered while the expiry is before the latest the server allows. */
  function updateExtendable(expiresAt, maxExpiresAt) {
    const expires = Date.parse(expiresAt);
    const latest = Date.parse(maxExpiresAt);
    if (Number.isNaN(expires) || Number.isNaN(latest)) return;
    setExtendable(expires < latest);
  }

  /** The server's warning `message`, with Extend in it when `canExtend` and Extend is offered. */
  function showBanner(message, canExtend) {
    if (!els.banner || state.finished) return;
    setText(els.bannerText, message);
    setShown(els.bannerExtend, canExtend && state.extendable);
    setShown(els.banner, true);
    scheduleFit(); // the text may take another number of lines
  }

  function hideBanner() {
    if (setShown(els.banner, false)) scheduleFit();
  }

  async function extend() {
    if (!state.extendable || state.finished) return;
    setEnabled(extendButtons, false);
    const result = await extendSession(state.sessionId);
    setEnabled(extendButtons, true);
    if (result.ok && result.data) {
      state.countdown?.setExpiresAt(result.data.expires_at, state.skewMs);
      updateExtendable(result.data.expires_at, result.data.max_expires_at);
      hideBanner();
      const until = localTime(result.data.expires_at, state.skewMs);
      toaster.show(t('topbar.extended', { until }), { kind: 'info', timeoutMs: 5000 });
      return;
    }
    if (result.error === 'longest_lifetime') setExtendable(false);
    toaster.show(result.message || t('topbar.extend_failed'), {
      kind: 'error',
      timeoutMs: 10000,
    });
  }

  /** End session, once the visitor confirms it. */
  async function endSession() {
    const button = els.endButton;
    if (!button || button.disabled) return;
    if (!(await confirmEndSession(button.ownerDocument)) || button.disabled) return;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    const { ended, message } = await endOnServer(state.sessionId);
    button.removeAttribute('aria-busy');
    if (ended) {
      state.endConfirmed();
      button.disabled = true;
      onEnded();
      return;
    }
    button.disabled = !state.canEnd();
    toaster.show(message, { kind: 'error', timeoutMs: 10000 });
  }

  /** The final state: no Extend, no banner; End session stays only while the session may be `live`. */
  function finish(live) {
    setEnabled([els.endButton], live);
    setExtendable(false);
    hideBanner();
  }

  for (const el of extendButtons) if (el) store.listen(el, 'click', extend);
  if (els.bannerClose) store.listen(els.bannerClose, 'click', hideBanner);
  if (els.endButton) store.listen(els.endButton, 'click', endSession);

  return { showSession, updateExtendable, showBanner, hideBanner, finish };
}
