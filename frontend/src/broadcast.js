// A message from the workshop's instructor to the class, shown as a banner above the terminal
// until the learner dismisses it: from the terminal's `broadcast` event ({message, from,
// sent_at}) and, for a page opened after it was sent, from the session JSON's
// `workshop.broadcast`. The message is the instructor's own words, shown as text as written.
// A dismissed message stays dismissed when the page reloads (sessionStorage, by its sent_at).

import { t } from './i18n.js';

export const DISMISSED_KEY = 'playground.broadcast-dismissed';

/** True when `broadcast` is a message to show: it has words and is not the one dismissed. */
export function shouldShow(broadcast, dismissedAt) {
  if (!broadcast || typeof broadcast.message !== 'string' || !broadcast.message) return false;
  return !broadcast.sent_at || broadcast.sent_at !== dismissedAt;
}

/** The banner's title: who sent it. */
export function broadcastTitle(broadcast) {
  return t('broadcast.title', { from: broadcast.from || '' });
}

function sessionStore(win) {
  try {
    return win.sessionStorage;
  } catch {
    return null; // storage refused (private mode): a reload shows the message again
  }
}

/**
 * The banner, made in `doc` before the page's workspace the first time a message comes. Returns
 * `{ show(broadcast) }`: shows the latest message (one at a time; a newer one replaces it).
 */
export function createBroadcastBanner(doc, storage = sessionStore(doc.defaultView || window)) {
  let banner = null;
  let title = null;
  let text = null;
  let shownAt = '';

  function make() {
    banner = doc.createElement('div');
    banner.id = 'broadcast';
    banner.className = 'banner broadcast';
    banner.setAttribute('role', 'alert');
    const words = doc.createElement('p');
    words.className = 'banner-text';
    title = doc.createElement('strong');
    text = doc.createElement('span');
    text.id = 'broadcast-text';
    words.append(title, ' ', text);
    const close = doc.createElement('button');
    close.type = 'button';
    close.className = 'banner-close';
    close.setAttribute('aria-label', t('broadcast.close'));
    close.textContent = '×';
    close.addEventListener('click', dismiss);
    banner.append(words, close);
    const anchor = doc.getElementById('banner') || doc.querySelector('.workspace');
    if (anchor) anchor.before(banner);
    else doc.body.prepend(banner);
  }

  function dismiss() {
    if (banner) banner.hidden = true;
    try {
      storage?.setItem(DISMISSED_KEY, shownAt);
    } catch {
      /* storage full or refused: dismissed until the page reloads */
    }
  }

  function show(broadcast) {
    const dismissed = storage ? storage.getItem(DISMISSED_KEY) : null;
    if (!shouldShow(broadcast, dismissed)) return;
    if (!banner) make();
    shownAt = broadcast.sent_at || '';
    title.textContent = `${broadcastTitle(broadcast)}:`;
    text.textContent = broadcast.message;
    banner.hidden = false;
  }

  return { show };
}
