// The pure parts of a template's setup line on the session page (setup.js; no DOM, tested with
// node --test): what the session JSON's `template` part says, in sentences.

import { t } from './i18n.js';

/** The states after which the setup no longer changes (no more asking for it). */
export const SETUP_FINISHED = ['done', 'failed'];

const count = (n) => (n === 1 ? t('setup.one_node') : t('setup.nodes', { count: n }));

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
  const title = String(template.title || template.name || t('setup.the_template'));
  const message = typeof template.message === 'string' ? template.message.trim() : '';
  const state = ['waiting', 'running', 'done', 'failed'].includes(template.state) ? template.state : 'waiting';
  const hasLog = typeof template.log === 'string' && template.log.length > 0;
  const view = { state, title, total, step: ran, detail: '', finished: SETUP_FINISHED.includes(state), hasLog };
  if (state === 'waiting') {
    return { ...view, text: t('setup.waiting', { title, nodes: count(total) }) };
  }
  if (state === 'running') {
    const step = Math.min(ran + 1, total);
    return { ...view, step, text: t('setup.running', { title, step, total }), detail: message };
  }
  if (state === 'done') return { ...view, text: t('setup.done', { title, nodes: count(total) }) };
  const said = message || t('setup.it_failed');
  const text = ran > 0 ? t('setup.failed_at', { title, step: ran, total, message: said }) : t('setup.failed', { title, message: said });
  return { ...view, text };
}

/** The progress bar's value, 0 to 1: the nodes whose setup has run, of all. */
export function setupFraction(view) {
  if (!view || !view.total) return 0;
  if (view.state === 'done') return 1;
  const ran = view.state === 'running' ? view.step - 1 : view.step;
  return Math.min(1, Math.max(0, ran / view.total));
}
