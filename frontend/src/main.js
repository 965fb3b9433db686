// Entry point of the Playground front end. One bundle serves every page; the
// page is chosen by <body data-page="...">.

import '@xterm/xterm/css/xterm.css';
import './style.css';

import { initLanding } from './landing.js';
import { initSession } from './session.js';

function boot() {
  const page = document.body ? document.body.dataset.page : '';
  if (page === 'landing') initLanding(document);
  else if (page === 'session') initSession(document);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot, { once: true });
} else {
  boot();
}
