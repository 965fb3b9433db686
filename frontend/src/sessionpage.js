// The session page's chunk: the terminal page (session.js) with the lab panel (lab.js), opened
// either by loading /s/<id>/ or in place, on the page whose Start created the session.

import { sessionPath } from './api.js';
import { websocketUrl } from './connection.js';
import { initLabPanel } from './lab.js';
import { initSession } from './session.js';

/**
 * Starts the session page in `doc`. `started`: the API's answer to the start that created the
 * session (api.js's result of `POST /api/sessions/`, with `requestedAt`, the Date.now() of the
 * request), used instead of asking for the session again. Returns window.playground.
 */
export function openSessionPage(doc = document, started = null) {
  const api = initSession(doc, started);
  initLabPanel(doc, api, started ? started.data : null);
  return api;
}

/**
 * Turns the current page into session `started.data.id`'s page without loading another: the
 * body becomes the content of `template` (the <template id="session-page"> of the landing page
 * or a lab's introduction: the session page's own markup), the address /s/<id>/ (a reload or a shared link loads that page),
 * and the terminal connects at once. Going back reloads the page at the address gone back to.
 */
export function startInPlace(doc, template, started) {
  const { body } = doc;
  const id = started.data.id;
  const instance = Array.isArray(started.data.instances) ? started.data.instances[0] : null;
  // The first terminal's websocket first: its handshake and the agent's attach go on while the
  // page builds the terminal (tens of milliseconds); its events wait for this task's end.
  const socket = instance && instance.terminal ? new WebSocket(websocketUrl(instance.terminal)) : null;
  if (socket) socket.binaryType = 'arraybuffer';
  body.replaceChildren(template.content.cloneNode(true));
  body.className = template.dataset.bodyClass || '';
  for (const key of Object.keys(body.dataset)) delete body.dataset[key]; // the old page's (a lab's slug...)
  body.dataset.page = 'session';
  body.dataset.sessionId = id;
  if (template.dataset.title) doc.title = template.dataset.title;
  const win = doc.defaultView || window;
  win.history.pushState({ session: id }, '', sessionPath(id));
  win.addEventListener('popstate', () => win.location.reload(), { once: true });
  return openSessionPage(doc, { ...started, socket });
}
