// What the pages share to tell the visitor things: toasts and the modal overlay.
// Everything is built with textContent (dom.js), never innerHTML.

import { button, element } from './dom.js';
import { t } from './i18n.js';

const MAX_TOASTS = 4;

export function createToaster(container) {
  const timers = new Set();

  function remove(el) {
    if (el.isConnected) el.remove();
  }

  function show(message, { kind = 'info', timeoutMs = 7000 } = {}) {
    if (!container || !message) return null;
    const role = kind === 'error' ? 'alert' : 'status';
    const toast = element(document, 'div', { className: `toast toast-${kind}`, attrs: { role } });
    const dismiss = { className: 'toast-close', text: '×', attrs: { 'aria-label': t('common.dismiss') } };
    toast.append(
      element(document, 'p', { className: 'toast-text', text: message }),
      button(document, dismiss, () => remove(toast)),
    );
    container.append(toast);
    while (container.children.length > MAX_TOASTS) container.firstElementChild.remove();

    if (timeoutMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        remove(toast);
      }, timeoutMs);
      timers.add(timer);
    }
    return toast;
  }

  function dispose() {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    if (container) container.replaceChildren();
  }

  return { show, dispose };
}

/**
 * The modal overlay (#overlay) used for final states: session ended, expired,
 * forbidden, not found. `actions` is a list of
 *   { id, label, href }            -> a link
 *   { id, label, onClick, primary } -> a <button>
 */
export function createOverlay(root) {
  const titleEl = root.querySelector('#overlay-title');
  const messageEl = root.querySelector('#overlay-message');
  const actionsEl = root.querySelector('#overlay-actions');
  let current = null;

  function show({ title, message = '', actions = [], kind = 'info' }) {
    titleEl.textContent = title;
    messageEl.textContent = message;
    messageEl.hidden = !message;
    actionsEl.replaceChildren();
    let focusTarget = null;
    for (const action of actions) {
      const className = action.primary ? 'btn btn-primary' : 'btn btn-secondary';
      const props = { className, id: action.id, text: action.label };
      const el = action.href
        ? element(document, 'a', { ...props, attrs: { href: action.href } })
        : button(document, props, action.onClick);
      actionsEl.append(el);
      if (action.primary || !focusTarget) focusTarget = el;
    }
    root.dataset.kind = kind;
    root.hidden = false;
    current = { title, message, kind };
    if (focusTarget) requestAnimationFrame(() => focusTarget.focus());
  }

  function hide() {
    root.hidden = true;
    actionsEl.replaceChildren();
    current = null;
  }

  return {
    show,
    hide,
    get current() {
      return current;
    },
  };
}

/**
 * Asks the visitor to confirm something that cannot be undone, in a modal <dialog>
 * (#confirm-dialog, with #confirm-title, #confirm-message, #confirm-yes and #confirm-no).
 * Resolves true when they press `yes`, false for `no`, Escape or a click outside the card.
 * The dialog is removed once answered; "no" has the focus, so a stray Enter changes nothing.
 */
export function confirmAction(doc, { title, message, yes, no = t('common.cancel') }) {
  return new Promise((resolve) => {
    const dialog = element(doc, 'dialog', {
      id: 'confirm-dialog',
      className: 'confirm-dialog',
      attrs: { 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message' },
    });
    const answer = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    const keep = button(doc, { id: 'confirm-no', className: 'btn btn-secondary', text: no }, () => answer(false));
    const end = button(doc, { id: 'confirm-yes', className: 'btn btn-danger', text: yes }, () => answer(true));
    const card = element(
      doc,
      'div',
      { className: 'overlay-card' },
      element(doc, 'h2', { id: 'confirm-title', text: title }),
      element(doc, 'p', { id: 'confirm-message', text: message }),
      element(doc, 'div', { className: 'overlay-actions' }, keep, end),
    );
    dialog.append(card);
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault(); // Escape: answered here, so that the dialog is removed too
      answer(false);
    });
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) answer(false); // the backdrop: the dialog is the card and no more
    });
    doc.body.append(dialog);
    dialog.showModal();
    keep.focus();
  });
}

/** Asks before ending a session (the session page's End session and the landing page's list). */
export function confirmEndSession(doc) {
  return confirmAction(doc, {
    title: t('ui.end_confirm'),
    message: t('ui.end_confirm_message'),
    yes: t('topbar.end'),
    no: t('common.keep'),
  });
}
