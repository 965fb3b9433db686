// What the pages share to tell the visitor things: toasts and the modal overlay.
// Everything is built with textContent (dom.js), never innerHTML.

import { button, element } from './dom.js';

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
    const dismiss = { className: 'toast-close', text: '×', attrs: { 'aria-label': 'Dismiss' } };
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
