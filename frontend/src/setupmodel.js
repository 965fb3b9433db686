// The pure parts of a template's setup line on the session page (setup.js; no DOM, tested with
// node --test): what the session JSON's `template` part says, in sentences.

/** The states after which the setup no longer changes (no more asking for it). */
export const SETUP_FINISHED = ['done', 'failed'];

const count = (n) => `${n} node${n === 1 ? '' : 's'}`;

/**
 * The setup line's model from the session JSON's `template` part (docs/templates.md): `{state,
 * text, detail, step, total, finished, hasLog}`, or null without one. `step` is the node being set
 * up (1-based) while it runs, how many have run otherwise; `text` the sentence to show, `detail`
 * the API's own message beside it (empty when `text` already says it).
 */
export function setupView(template) {
  if (!template || typeof template !== 'object') return null;
  const total = Number.isInteger(template.total) && template.total > 0 ? template.total : 0;
  const ran = Number.isInteger(template.step) ? Math.min(Math.max(template.step, 0), total) : 0;
  const title = String(template.title || template.name || 'the template');
  const message = typeof template.message === 'string' ? template.message.trim() : '';
  const state = ['waiting', 'running', 'done', 'failed'].includes(template.state) ? template.state : 'waiting';
  const hasLog = typeof template.log === 'string' && template.log.length > 0;
  const view = { state, title, total, step: ran, detail: '', finished: SETUP_FINISHED.includes(state), hasLog };
  if (state === 'waiting') {
    return { ...view, text: `Setting up ${title}: waiting for its ${count(total)} to start…` };
  }
  if (state === 'running') {
    const step = Math.min(ran + 1, total);
    return { ...view, step, text: `Setting up ${title}: step ${step} of ${total}.`, detail: message };
  }
  if (state === 'done') return { ...view, text: `${title} is set up: ${count(total)} ready.` };
  const where = ran > 0 ? ` at step ${ran} of ${total}` : '';
  return {
    ...view,
    text: `The setup of ${title} stopped${where}. ${message || 'It failed.'} The nodes keep running: look at them, or finish the setup by hand.`,
  };
}

/** The progress bar's value, 0 to 1: the nodes whose setup has run, of all. */
export function setupFraction(view) {
  if (!view || !view.total) return 0;
  if (view.state === 'done') return 1;
  const ran = view.state === 'running' ? view.step - 1 : view.step;
  return Math.min(1, Math.max(0, ran / view.total));
}
