// Entry point of the Playground front end, on every page; the page is chosen by
// <body data-page="...">. The session page's code (xterm.js and the terminal page's parts) is a
// chunk of its own, sessionpage.js: the session page imports it at once, the landing page and a
// lab's introduction once they have loaded, so that their Start finds it ready and opens the
// terminal in place.

import '@xterm/xterm/css/xterm.css';
import './style.css';
import './lab.css';
import './nodes.css';
import './dashboard.css';
import './handraise.css';

import { initLanguage } from './i18n.js';
import { initLanding } from './landing.js';
import { initCatalogue, initLabIntro } from './labs.js';
import { applyPageTheme } from './theme.js';

/** The session page's chunk (sessionpage.js), loaded once. */
let sessionPage = null;
function loadSessionPage() {
  sessionPage ??= import('./sessionpage.js').catch((err) => {
    sessionPage = null; // a later call tries again
    throw err;
  });
  return sessionPage;
}

function boot() {
  applyPageTheme(document); // the visitor's light or dark theme, on every page
  initLanguage(window); // the page's language for t(), and the switch
  const page = document.body ? document.body.dataset.page : '';
  if (page === 'landing') initLanding(document, loadSessionPage);
  else if (page === 'session') loadSessionPage().then((chunk) => chunk.openSessionPage(document));
  else if (page === 'labs') initCatalogue(document);
  else if (page === 'lab') initLabIntro(document, loadSessionPage);
  else if (page === 'dashboard') import('./dashboard.js').then((chunk) => chunk.initDashboard(document));
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot, { once: true });
} else {
  boot();
}
