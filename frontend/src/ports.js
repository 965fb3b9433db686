// A node's port badges (docs/ports.md): one per port the API lists, a click opens the port's
// `open_url` in a new tab; "▾" shows its options: share (the public link, shown and copyable
// once shared), HTTPS to the node, copy link, and the path-form link. And the "Open port" field.

import { apiRequest } from './api.js';
import { button, element, setShown, setText } from './dom.js';
import { portBadges, portUrl } from './nodemodel.js';
import { t } from './i18n.js';

/** Copies `text`; false when the browser would not (the caller says so). */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** Puts `items` in `parent` in this order, moving only those out of place (a moved element loses the focus). */
export function placeInOrder(parent, items) {
  items.forEach((item, index) => {
    if (parent.children[index] !== item) parent.insertBefore(item, parent.children[index] || null);
  });
}

/**
 * The badges of node `node` in `list` (a <ul>): `update(ports)` with the API's port JSON list
 * adds, changes and removes badges in place (an open menu stays open). `toast(message, kind)`.
 */
export function createPortBadges({ doc, sessionId, node, list, toast }) {
  const badges = new Map(); // port -> {li, model, els, pending}

  function makeBadge(model) {
    const { port } = model;
    const menuId = `port-menu-${node}-${port}`;
    const open = element(doc, 'a', {
      className: 'port-open',
      text: model.label,
      attrs: { target: '_blank', rel: 'noopener' },
    });
    const more = button(doc, {
      className: 'port-more',
      text: '▾',
      attrs: { 'aria-label': t('ports.options', { port }), 'aria-expanded': 'false', 'aria-controls': menuId },
    });
    const share = element(doc, 'input', { type: 'checkbox', className: 'port-share' });
    const https = element(doc, 'input', { type: 'checkbox', className: 'port-https' });
    const publicUrl = element(doc, 'input', {
      className: 'port-url',
      attrs: { readonly: '', 'aria-label': t('ports.public_link', { port }) },
    });
    const publicBox = element(doc, 'div', { className: 'port-public' }, publicUrl);
    const copy = button(doc, { className: 'btn btn-tool port-copy', text: t('ports.copy') });
    const pathLink = element(doc, 'a', {
      className: 'port-path',
      text: t('ports.by_path'),
      title: t('ports.by_path_title'),
      attrs: { target: '_blank', rel: 'noopener' },
    });
    const menu = element(
      doc,
      'div',
      { className: 'port-menu', id: menuId, attrs: { role: 'group', 'aria-label': t('ports.menu', { port, node }) } },
      element(doc, 'label', { className: 'port-option' }, share, ` ${t('ports.shared_option')}`),
      publicBox,
      element(doc, 'label', { className: 'port-option' }, https, ` ${t('ports.https_option')}`),
      element(doc, 'div', { className: 'port-menu-actions' }, copy, pathLink),
    );
    menu.hidden = true;
    const li = element(doc, 'li', { className: 'port-badge', dataset: { port: String(port) } }, open, more, menu);
    const badge = { li, model, pending: false, els: { open, more, menu, share, https, publicUrl, publicBox, pathLink } };

    more.addEventListener('click', () => setMenuOpen(badge, menu.hidden));
    menu.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      setMenuOpen(badge, false);
      more.focus();
    });
    share.addEventListener('change', () => patch(badge, { shared: share.checked }));
    https.addEventListener('change', () => patch(badge, { https: https.checked }));
    copy.addEventListener('click', async () => {
      const copied = await copyText(badge.model.url);
      toast(copied ? t('ports.copied', { port }) : t('ports.copy_failed'), copied ? 'info' : 'error');
    });
    return badge;
  }

  function setMenuOpen(badge, opened) {
    badge.els.menu.hidden = !opened;
    badge.els.more.setAttribute('aria-expanded', String(opened));
    badge.li.classList.toggle('is-open', opened);
  }

  function show(badge, model) {
    badge.model = model;
    const { open, share, https, publicUrl, publicBox, pathLink } = badge.els;
    if (open.getAttribute('href') !== model.openUrl) open.setAttribute('href', model.openUrl);
    open.title = model.title;
    pathLink.setAttribute('href', model.pathOpenUrl);
    badge.li.dataset.listening = String(model.listening);
    badge.li.dataset.shared = String(model.shared);
    badge.li.dataset.https = String(model.https);
    if (!badge.pending) {
      share.checked = model.shared;
      https.checked = model.https;
    }
    if (publicUrl.value !== model.url) publicUrl.value = model.url;
    setShown(publicBox, model.shared);
  }

  async function patch(badge, change) {
    badge.pending = true;
    const result = await apiRequest(portUrl(sessionId, node, badge.model.port), { method: 'PATCH', body: change });
    badge.pending = false;
    if (result.ok && result.data) {
      const [model] = portBadges([result.data]);
      if (model) show(badge, model);
      return;
    }
    show(badge, badge.model); // the options as they were
    toast(result.message || t('ports.change_failed'), 'error');
  }

  /** The badges for the API's `ports` of this node. */
  function update(ports) {
    const models = portBadges(ports);
    const seen = new Set();
    for (const model of models) {
      seen.add(model.port);
      let badge = badges.get(model.port);
      if (!badge) {
        badge = makeBadge(model);
        badges.set(model.port, badge);
      }
      show(badge, model);
    }
    for (const [port, badge] of badges) {
      if (!seen.has(port)) {
        badges.delete(port);
        badge.li.remove();
      }
    }
    placeInOrder(list, models.map((model) => badges.get(model.port).li));
    setShown(list, models.length > 0);
  }

  return { update, ports: () => [...badges.keys()] };
}

/**
 * The "Open port" form: the port typed (the API checks it: 1..65535) of `node()` opens in a new
 * tab; the API's sentence shows in `error` when it is not a port.
 */
export function createOpenPort({ sessionId, node, form, input, error, store }) {
  async function openPort(event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    setShown(error, false);
    const result = await apiRequest(portUrl(sessionId, node(), text));
    if (result.ok && result.data && result.data.open_url) {
      window.open(result.data.open_url, '_blank', 'noopener');
      return;
    }
    setText(error, result.message || t('ports.open_failed', { port: text }));
    setShown(error, true);
  }
  store.listen(form, 'submit', openPort);
  store.listen(input, 'input', () => setShown(error, false));
}
