// "Raise hand" on a workshop learner's session page: a button in the top bar, shown only when the
// session's JSON has a `workshop` part. Pressing it opens a small form for an optional sentence
// (up to 200 characters); sending it POSTs /api/sessions/<id>/hand/ {"sentence"}, and the
// instructor sees the hand in the dashboard's help queue. While raised, the button lowers it
// (DELETE). The state comes from the session JSON's `workshop.hand` ({raised_at, sentence} or
// null), so a reloaded page shows a raised hand as raised, and then from the terminal's `hand`
// event: another tab raised or lowered it, or the instructor resolved it.

import { apiRequest } from './api.js';
import { element } from './dom.js';
import { t } from './i18n.js';

export const SENTENCE_LENGTH = 200;

/** The hand API's address for session `sessionId`. */
export function handPath(sessionId) {
  return `/api/sessions/${encodeURIComponent(sessionId)}/hand/`;
}

/** What the button says, and its pressed state, for `hand` (the session JSON's `workshop.hand`). */
export function buttonState(hand) {
  return hand ? { label: t('hand.lower'), pressed: true } : { label: t('hand.raise'), pressed: false };
}

/** The sentence to confirm a raised hand with. */
export function raisedMessage(hand) {
  return hand && hand.sentence ? t('hand.raised_with', { sentence: hand.sentence }) : t('hand.raised');
}

/** Raise (with `sentence`) or lower the hand; resolves to { ok, hand, message }. */
export async function sendHand(sessionId, sentence, request = apiRequest) {
  if (sentence === null) {
    const reply = await request(handPath(sessionId), { method: 'DELETE' });
    return { ok: reply.ok, hand: null, message: reply.message || '' };
  }
  const reply = await request(handPath(sessionId), { method: 'POST', body: { sentence } });
  return { ok: reply.ok, hand: reply.ok && reply.data ? reply.data.hand : null, message: reply.message || '' };
}

/**
 * The button and its form, made in `doc`'s top bar (before End session) the first time `show`
 * is given a workshop. `toaster` (ui.js) says what happened. Returns { show(workshop), setHand(hand) }.
 */
export function createHandRaise(doc, sessionId, { toaster, request = apiRequest } = {}) {
  let hand = null;
  let button = null;
  let form = null;
  let input = null;

  function update() {
    const { label, pressed } = buttonState(hand);
    button.textContent = label;
    button.setAttribute('aria-pressed', String(pressed));
    button.title = hand ? raisedMessage(hand) : '';
  }

  async function send(sentence) {
    button.disabled = true;
    const result = await sendHand(sessionId, sentence, request);
    button.disabled = false;
    if (!result.ok) {
      toaster?.show(result.message, { kind: 'error' });
      return;
    }
    hand = result.hand;
    update();
    if (hand) toaster?.show(raisedMessage(hand), { kind: 'info', timeoutMs: 4000 });
  }

  function make() {
    button = element(doc, 'button', { type: 'button', id: 'hand-raise', className: 'btn btn-secondary hand-raise' });
    input = element(doc, 'input', { type: 'text', attrs: { maxlength: String(SENTENCE_LENGTH), 'aria-label': t('hand.sentence') } });
    input.placeholder = t('hand.sentence');
    const cancel = element(doc, 'button', { type: 'button', className: 'btn btn-secondary', text: t('hand.cancel') });
    form = element(
      doc,
      'form',
      { className: 'hand-form', id: 'hand-form' },
      input,
      element(doc, 'button', { type: 'submit', className: 'btn btn-primary', text: t('hand.send') }),
      cancel,
    );
    form.hidden = true;
    button.addEventListener('click', () => {
      if (hand) {
        send(null);
        return;
      }
      form.hidden = !form.hidden;
      if (!form.hidden) input.focus();
    });
    cancel.addEventListener('click', () => {
      form.hidden = true;
      button.focus();
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      form.hidden = true;
      send(input.value.trim());
      input.value = '';
    });
    const anchor = doc.getElementById('end-session');
    if (anchor) anchor.before(button, form);
    else doc.body.append(button, form);
  }

  function show(workshop) {
    if (!workshop) return;
    if (!button) make();
    hand = workshop.hand || null;
    update();
  }

  /** The hand as the server says it now (the `hand` event); nothing before show() made the button. */
  function setHand(next) {
    if (!button) return;
    hand = next || null;
    update();
  }

  return { show, setHand };
}
