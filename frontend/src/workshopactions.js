// The instructor's actions on a workshop's learners and on the whole class, for the dashboard's
// buttons (docs/workshops.md, Actions): each POSTs JSON to /workshops/<id>/... with the page's
// CSRF token (api.js) and resolves (never rejects) to { ok, message }: the server's sentence in
// the instructor's language, or api.js's for a network failure.

import { apiRequest } from './api.js';
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

// ---- ready-made controls for the dashboard ------------------------------------------------------

export const EXTEND_MINUTES = 15; // what one press of a "+15 min" button adds

function button(doc, label, title, run, report) {
  const node = doc.createElement('button');
  node.type = 'button';
  node.className = 'btn btn-secondary';
  node.textContent = label;
  if (title) node.title = title;
  node.addEventListener('click', async () => {
    node.disabled = true;
    try {
      const result = await run();
      if (!result.cancelled) report(result);
    } finally {
      node.disabled = false;
    }
  });
  return node;
}

/**
 * One learner's buttons (a <span>): +15 min, Reset (asks first), End (asks first). `learner`:
 * `{ learner: id, name }` (a dashboard row); `report({ ok, message })` hears each outcome.
 */
export function learnerButtons(doc, workshopId, learner, report, { confirm = (s) => window.confirm(s), request = apiRequest } = {}) {
  const { learner: id, name } = learner;
  const box = doc.createElement('span');
  box.className = 'learner-actions';
  box.append(
    button(doc, t('actions.extend', { minutes: EXTEND_MINUTES }), t('actions.extend_title', { name, minutes: EXTEND_MINUTES }),
      () => extendLearner(workshopId, id, EXTEND_MINUTES, request), report),
    button(doc, t('actions.reset'), '', () => resetLearner(workshopId, id, name, { confirm, request }), report),
    button(doc, t('actions.end'), '', () => (confirm(t('actions.confirm_end', { name }))
      ? endLearner(workshopId, id, request)
      : { ok: false, cancelled: true, message: '' }), report),
  );
  return box;
}

function labelled(doc, text, control) {
  const label = doc.createElement('label');
  label.append(text, control);
  return label;
}

/**
 * The class's controls, put into `container`: a message to broadcast, +15 min for everyone, and,
 * for a lab of `steps` steps, move everyone to a step. `report({ ok, message })` hears each outcome.
 */
export function mountClassActions(doc, container, workshopId, { steps = 0, report, request = apiRequest }) {
  const message = doc.createElement('input');
  message.id = 'broadcast-message';
  message.maxLength = 300;
  const send = button(doc, t('actions.broadcast_send'), '', async () => {
    const result = await broadcast(workshopId, message.value, request);
    if (result.ok) message.value = '';
    return result;
  }, report);
  const parts = [labelled(doc, t('actions.broadcast_label'), message), send];
  parts.push(button(doc, t('actions.extend_all', { minutes: EXTEND_MINUTES }), '',
    () => extendAll(workshopId, EXTEND_MINUTES, request), report));
  if (steps > 0) {
    const step = doc.createElement('select');
    step.id = 'push-step';
    for (let n = 1; n <= steps; n++) {
      const option = doc.createElement('option');
      option.value = String(n);
      option.textContent = String(n);
      step.append(option);
    }
    parts.push(labelled(doc, t('actions.step_label'), step),
      button(doc, t('actions.step_send'), '', () => pushStep(workshopId, Number(step.value), request), report));
  }
  const csv = doc.createElement('a');
  csv.href = progressCsvPath(workshopId);
  csv.textContent = t('workshop.progress_csv');
  parts.push(csv);
  container.append(...parts);
}
