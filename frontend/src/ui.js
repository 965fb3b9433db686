// Small DOM helpers shared by the pages: toasts and the modal overlay.
// Everything is built with textContent, never innerHTML.

const MAX_TOASTS = 4;

export function createToaster(container) {
  const timers = new Set();

  function remove(el) {
    if (el.isConnected) el.remove();
  }

  function show(message, { kind = 'info', timeoutMs = 7000 } = {}) {
    if (!container || !message) return null;
    const toast = document.createElement('div');
    toast.className = `toast toast-${kind}`;
    toast.setAttribute('role', kind === 'error' ? 'alert' : 'status');

    const text = document.createElement('p');
    text.className = 'toast-text';
    text.textContent = message;

    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'toast-close';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '×';
    close.addEventListener('click', () => remove(toast), { once: true });

    toast.append(text, close);
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
      let el;
      if (action.href) {
        el = document.createElement('a');
        el.href = action.href;
      } else {
        el = document.createElement('button');
        el.type = 'button';
        if (action.onClick) el.addEventListener('click', action.onClick);
      }
      el.className = action.primary ? 'btn btn-primary' : 'btn btn-secondary';
      if (action.id) el.id = action.id;
      el.textContent = action.label;
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
