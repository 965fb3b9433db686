// The session page's setup line (a session started from a template, docs/templates.md): above the
// terminals, the setup's state, step k of n and the API's message, then its end in a sentence,
// with the scripts' log in a dialog. It asks for the session (GET /api/sessions/<id>/) when the
// node panel's poll has asked for the node list (nodes.js's `onPolled`), until the setup is over.

import { getSession } from './api.js';
import { button, element, setShown, setText } from './dom.js';
import { setupFraction, setupView } from './setupmodel.js';
import { t } from './i18n.js';

/**
 * `els`: status (#setup-status), text, detail, progress, logButton, close; `store`: the page's
 * DisposableStore. `update(template)` shows the session JSON's `template` part (null: none, the
 * line stays hidden); `refresh()` asks for it again unless the setup is over or a request is out.
 */
export function createSetupStatus({ doc, els, sessionId, store }) {
  let view = null;
  let log = '';
  let inFlight = false;
  let dialog = null;

  function update(template) {
    const next = setupView(template);
    if (!next || !els.status) return;
    view = next;
    log = typeof template.log === 'string' ? template.log : '';
    els.status.dataset.state = view.state;
    setText(els.text, view.text);
    setText(els.detail, view.detail);
    setShown(els.detail, Boolean(view.detail));
    if (view.state === 'waiting') els.progress.removeAttribute('value'); // indeterminate: no node has begun
    else els.progress.value = setupFraction(view);
    setShown(els.progress, !view.finished);
    setShown(els.logButton, view.hasLog);
    setShown(els.close, view.finished);
    if (view.state === 'failed') els.status.setAttribute('role', 'alert');
    if (dialog) setText(dialog.querySelector('pre'), log || '(no output)');
    if (!els.status.dataset.dismissed) setShown(els.status, true);
  }

  async function refresh() {
    if (!view || view.finished || inFlight || store.disposed) return;
    inFlight = true;
    const result = await getSession(sessionId);
    inFlight = false;
    if (!store.disposed && result.ok && result.data) update(result.data.template);
  }

  /** The scripts' output in a modal dialog (Escape, Close or a click outside closes it). */
  function showLog() {
    const close = () => {
      dialog?.close();
      dialog?.remove();
      dialog = null;
      els.logButton.focus();
    };
    const closeButton = button(doc, { id: 'setup-log-close', className: 'btn btn-secondary', text: t('common.close') }, close);
    const title = view ? t('setup.log_of', { title: view.title }) : t('setup.log');
    dialog = element(
      doc,
      'dialog',
      { id: 'setup-log-dialog', className: 'confirm-dialog setup-log-dialog', attrs: { 'aria-labelledby': 'setup-log-title' } },
      element(
        doc,
        'div',
        { className: 'overlay-card' },
        element(doc, 'h2', { id: 'setup-log-title', text: title }),
        element(doc, 'pre', { id: 'setup-log', className: 'setup-log', text: log || '(no output)' }),
        element(doc, 'div', { className: 'overlay-actions' }, closeButton),
      ),
    );
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close();
    });
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) close();
    });
    doc.body.append(dialog);
    dialog.showModal();
    closeButton.focus();
  }

  if (els.logButton) store.listen(els.logButton, 'click', showLog);
  if (els.close) {
    store.listen(els.close, 'click', () => {
      els.status.dataset.dismissed = 'true';
      setShown(els.status, false);
    });
  }
  store.add(() => dialog?.remove());

  return { update, refresh };
}
