// The instructor's actions on a workshop's learners and on the whole class, for the dashboard's
// buttons (docs/workshops.md, Actions): each POSTs JSON to /workshops/<id>/... with the page's
// CSRF token (api.js) and resolves (never rejects) to { ok, message }: the server's sentence in
// the instructor's language, or api.js's for a network failure.

import { apiRequest } from './api.js';
import { button as plainButton, element } from './dom.js';
import { t } from './i18n.js';

/** The address of an action: `/workshops/<workshop>/<action>/`, or a learner's `/workshops/<workshop>/learners/<learner>/<action>/`. */
export function actionPath(workshopId, action, learnerId = null) {
  const workshop = `/workshops/${encodeURIComponent(workshopId)}/`;
  const learner = learnerId === null ? '' : `learners/${encodeURIComponent(learnerId)}/`;
  return `${workshop}${learner}${action}/`;
}

/** The download address of the workshop's progress CSV. */
export function progressCsvPath(workshopId) {
  return `/workshops/${encodeURIComponent(workshopId)}/progress.csv`;
}

/** The outcome of a reply: its sentence, or a generic one when the reply had none. */
export function outcome(reply) {
  const data = reply && reply.data;
  const message = (data && typeof data.message === 'string' && data.message) || (reply && reply.message) || '';
  return { ok: Boolean(reply && reply.ok), message: message || t('workshop.action_failed') };
}

async function act(path, body = {}, request = apiRequest) {
  return outcome(await request(path, { method: 'POST', body }));
}

/** `minutes` (1 to 240) more for one learner's session. */
export function extendLearner(workshopId, learnerId, minutes, request = apiRequest) {
  return act(actionPath(workshopId, 'extend', learnerId), { minutes }, request);
}

/** End one learner's session now. */
export function endLearner(workshopId, learnerId, request = apiRequest) {
  return act(actionPath(workshopId, 'end', learnerId), {}, request);
}

/**
 * Give one learner new sandboxes (their lab back at step 1), after `confirm(sentence)` says yes
 * (window.confirm by default); a refusal resolves to { ok: false, cancelled: true } without asking the server.
 */
export async function resetLearner(workshopId, learnerId, name, { confirm = (s) => window.confirm(s), request = apiRequest } = {}) {
  if (!confirm(t('workshop.confirm_reset', { name }))) return { ok: false, cancelled: true, message: '' };
  return act(actionPath(workshopId, 'reset', learnerId), { confirm: true }, request);
}

/** `minutes` (1 to 240) more for the workshop and every running learner's session. */
export function extendAll(workshopId, minutes, request = apiRequest) {
  return act(actionPath(workshopId, 'extend'), { minutes }, request);
}

/** A banner with `message` (1 to 300 characters) on every learner's page. */
export function broadcast(workshopId, message, request = apiRequest) {
  return act(actionPath(workshopId, 'broadcast'), { message }, request);
}

/** Move every learner's lab to step `step` (the steps before it are not solved for them). */
export function pushStep(workshopId, step, request = apiRequest) {
  return act(actionPath(workshopId, 'step'), { step }, request);
}

// ---- the dashboard's actions panel --------------------------------------------------------------

export const EXTEND_MINUTES = 15; // what one press of a "+15 min" button adds

/** The learners a picker lists, in name order: [id, name] pairs from the dashboard's rows. */
export function pickerEntries(rows) {
  return rows
    .map((row) => [String(row.learner), String(row.name)])
    .sort((a, b) => a[1].localeCompare(b[1]));
}

/**
 * The actions panel, put into `container` (not remade when the rows change, so a press is never
 * lost to a re-render): for the class, a message to broadcast, +15 min for everyone, move everyone
 * to a step (once the lab's steps are known) and the progress CSV; for one learner chosen in a
 * list, +15 min, Reset and End (the last two ask first). Each outcome's sentence is shown in the
 * panel's status line. Returns `{ update(rows, steps) }`: call it with the dashboard's rows and the
 * lab's number of steps (null without a lab) whenever they change.
 */
export function mountActions(doc, container, workshopId, { confirm = (s) => window.confirm(s), request = apiRequest } = {}) {
  const said = element(doc, 'p', { className: 'actions-status', id: 'actions-status', attrs: { role: 'status' } });
  const report = (result) => {
    if (!result.cancelled) said.textContent = result.message;
  };
  function button(label, run) {
    const node = plainButton(doc, { className: 'btn btn-secondary', text: label }, async () => {
      node.disabled = true;
      try {
        report(await run());
      } finally {
        node.disabled = false;
      }
    });
    return node;
  }
  const cancelled = { ok: false, cancelled: true, message: '' };

  const message = element(doc, 'input', { id: 'broadcast-message', attrs: { maxlength: '300' } });
  const send = button(t('actions.broadcast_send'), async () => {
    const result = await broadcast(workshopId, message.value, request);
    if (result.ok) message.value = '';
    return result;
  });
  const everyone = button(t('actions.extend_all', { minutes: EXTEND_MINUTES }), () => extendAll(workshopId, EXTEND_MINUTES, request));
  const step = element(doc, 'select', { id: 'push-step' });
  const move = button(t('actions.step_send'), () => pushStep(workshopId, Number(step.value), request));
  const stepBox = element(doc, 'span', {}, element(doc, 'label', {}, t('actions.step_label'), step), move);
  stepBox.hidden = true;
  const csv = element(doc, 'a', { text: t('workshop.progress_csv'), attrs: { href: progressCsvPath(workshopId) } });

  const learner = element(doc, 'select', { id: 'action-learner' });
  const chosen = () => {
    const option = [...learner.children].find((o) => o.value === learner.value);
    return option ? { id: option.value, name: option.textContent } : null;
  };
  const none = { ok: false, message: t('actions.choose_learner') };
  const forLearner = (label, run) => button(label, () => {
    const who = chosen();
    return who ? run(who) : none;
  });
  const learnerBox = element(doc, 'div', { className: 'learner-actions' },
    element(doc, 'label', {}, t('actions.learner_label'), learner),
    forLearner(t('actions.extend', { minutes: EXTEND_MINUTES }), (who) => extendLearner(workshopId, who.id, EXTEND_MINUTES, request)),
    forLearner(t('actions.reset'), (who) => resetLearner(workshopId, who.id, who.name, { confirm, request })),
    forLearner(t('actions.end'), (who) => (confirm(t('actions.confirm_end', { name: who.name }))
      ? endLearner(workshopId, who.id, request)
      : cancelled)),
  );
  const classBox = element(doc, 'div', { className: 'class-actions' },
    element(doc, 'label', {}, t('actions.broadcast_label'), message), send, everyone, stepBox, csv);
  container.append(classBox, learnerBox, said);

  let listed = '';
  let stepsShown = 0;
  return {
    update(rows, steps) {
      const entries = pickerEntries(rows);
      const key = JSON.stringify(entries);
      if (key !== listed) {
        listed = key;
        const keep = learner.value;
        learner.replaceChildren(...entries.map(([id, name]) => element(doc, 'option', { text: name, attrs: { value: id } })));
        if (entries.some(([id]) => id === keep)) learner.value = keep;
        else learner.value = entries.length ? entries[0][0] : '';
      }
      const count = Number(steps) || 0;
      if (count !== stepsShown) {
        stepsShown = count;
        step.replaceChildren(...Array.from({ length: count }, (_, i) => element(doc, 'option', { text: String(i + 1), attrs: { value: String(i + 1) } })));
        stepBox.hidden = count === 0;
      }
    },
  };
}
