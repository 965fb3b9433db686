// Opening the session a page's Start has just created: in place of that page when it can (the
// session page's chunk, sessionpage.js, and the page's <template id="session-page">), else by
// moving to the session's page. Used by the landing page and a lab's introduction.

import { sessionPath } from './api.js';

/**
 * Opens session `started.data.id` (`started`: api.js's result of the POST that created it, with
 * `requestedAt`, the Date.now() of the request). `loadSessionPage()` resolves to the session
 * page's chunk; `leave()` runs just before this page becomes the session's (its listeners and
 * timers end). Resolves to window.playground of the session page in place, or null when moving.
 */
export async function openStartedSession(doc, loadSessionPage, started, leave = () => {}) {
  const template = doc.getElementById('session-page');
  let chunk = null;
  if (template && loadSessionPage) {
    try {
      chunk = await loadSessionPage();
    } catch {
      chunk = null; // e.g. a new version of the site replaced the chunk: its own page loads the new one
    }
  }
  if (!chunk) {
    window.location.assign(sessionPath(started.data.id));
    return null;
  }
  leave();
  return chunk.startInPlace(doc, template, started);
}

/** Loads the session page's chunk while the visitor reads this page, so that Start finds it ready. */
export function preloadSessionPage(loadSessionPage) {
  if (!loadSessionPage) return;
  const load = () => loadSessionPage().catch(() => {}); // Start tries again, or moves to the page
  if (typeof requestIdleCallback === 'function') requestIdleCallback(load, { timeout: 1000 });
  else setTimeout(load, 0);
}
