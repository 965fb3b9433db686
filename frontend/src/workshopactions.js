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
