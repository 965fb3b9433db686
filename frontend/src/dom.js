// Small DOM helpers: building elements and showing, hiding, enabling them.
// Text goes in with textContent, never innerHTML. Helpers that change an element accept
// null (an element the page does not have) and do nothing then.

/**
 * A new `tag` element of `doc`. `props`: className, id, type, title, text (textContent),
 * attrs (each set with setAttribute), dataset (each copied); `children` are appended.
 */
export function element(doc, tag, props = {}, ...children) {
  const el = doc.createElement(tag);
  const { className, id, type, title, text, attrs = {}, dataset = {} } = props;
  if (className) el.className = className;
  if (id) el.id = id;
  if (type) el.type = type;
  if (title) el.title = title;
  if (text !== undefined) el.textContent = text;
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  Object.assign(el.dataset, dataset);
  el.append(...children);
  return el;
}

/** A `<button type="button">` that calls `onClick` (see element() for `props`). */
export function button(doc, props, onClick) {
  const el = element(doc, 'button', { type: 'button', ...props });
  if (onClick) el.addEventListener('click', onClick);
  return el;
}

/** Shows or hides `el`; true when that changed it. */
export function setShown(el, shown) {
  if (!el || el.hidden === !shown) return false;
  el.hidden = !shown;
  return true;
}

/** Sets `el`'s text (untouched when it already reads so: no needless layout). */
export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

/** Enables or disables every element of `els` (null entries are skipped). */
export function setEnabled(els, enabled) {
  for (const el of els) if (el) el.disabled = !enabled;
}
