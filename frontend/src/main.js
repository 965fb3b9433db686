// Entry point of the Playground front end. One bundle serves every page; the
// page is chosen by <body data-page="...">.

import '@xterm/xterm/css/xterm.css';
import './style.css';
import './lab.css';

import { applyPageTheme } from './comfort.js';
import { initLanding } from './landing.js';
import { initLabPanel } from './lab.js';
import { initCatalogue, initLabIntro } from './labs.js';
import { initSession } from './session.js';

function boot() {
  applyPageTheme(document); // the visitor's light or dark theme, on every page
  const page = document.body ? document.body.dataset.page : '';
  if (page === 'landing') initLanding(document);
  else if (page === 'session') initLabPanel(document, initSession(document));
  else if (page === 'labs') initCatalogue(document);
  else if (page === 'lab') initLabIntro(document);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot, { once: true });
} else {
  boot();
}
