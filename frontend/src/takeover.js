// The learner's banner while their instructor types in their terminal: from the terminal's
// `takeover` event ({on, by}; docs/workshops.md, "Watching and taking over"). Shown while at
// least one instructor has taken over, with their names; it cannot be dismissed, since it says
// that someone else's keystrokes reach the learner's shell right now.

import { t } from './i18n.js';

/** The names of those typing after `event` (a `takeover` event) is applied to `typing` (a Set). */
export function applyTakeover(typing, event) {
  const by = event && typeof event.by === 'string' ? event.by : '';
  if (event && event.on === true) typing.add(by);
  else if (event && event.on === false) typing.delete(by);
  return typing;
}

/**
 * The banner, made in `doc` above the page's workspace the first time someone takes over.
 * Returns `{ update(event), reset() }`: `update` applies a `takeover` event; `reset` forgets
 * who typed (a reconnected terminal is told again by the server if a takeover goes on).
 */
export function createTakeoverBanner(doc) {
  const typing = new Set();
  let banner = null;
  let text = null;

  function make() {
    banner = doc.createElement('div');
    banner.id = 'takeover-banner';
    banner.className = 'banner takeover';
    banner.setAttribute('role', 'status');
    banner.setAttribute('aria-live', 'polite');
    text = doc.createElement('p');
    text.className = 'banner-text';
    banner.append(text);
    const anchor = doc.getElementById('banner') || doc.querySelector('.workspace');
    if (anchor) anchor.before(banner);
    else doc.body.prepend(banner);
  }

  function render() {
    if (typing.size === 0) {
      if (banner) banner.hidden = true;
      return;
    }
    if (!banner) make();
    text.textContent = t('takeover.banner', { name: [...typing].filter(Boolean).join(', ') || t('takeover.someone') });
    banner.hidden = false;
  }

  return {
    update(event) {
      applyTakeover(typing, event);
      render();
    },
    reset() {
      typing.clear();
      render();
    },
  };
}
