// Landing page: the "Start playground" button creates a session (one node of the chosen image, or
// the nodes of the chosen template) and opens its terminal in place (sessionpage.js, loaded in the
// background once the page has loaded); below it, the visitor's live sessions to resume or end
// (mysessions.js).

import { createSession } from './api.js';
import { formatCountdown } from './format.js';
import { t } from './i18n.js';
import { createSessionList } from './mysessions.js';
import { openStartedSession, preloadSessionPage } from './startplace.js';

const DEFAULT_RETRY_SECONDS = 5;
const MAX_AUTO_RETRY_SECONDS = 15 * 60;

/**
 * Starts the landing page in `root`. `loadSessionPage()` resolves to the session page's chunk
 * (sessionpage.js); without it, or when it cannot be loaded, Start goes to the session's page.
 */
export function initLanding(root = document, loadSessionPage = null) {
  const form = root.getElementById('start-form');
  const button = root.getElementById('start');
  const errorBox = root.getElementById('error');
  const statusBox = root.getElementById('start-status');
  const imageSelect = root.getElementById('image');
  const choice = createStartChoice(root);
  if (!form || !button) return null;

  const controller = new AbortController();
  const { signal } = controller;
  const mine = createSessionList(root, {
    section: root.getElementById('my-sessions'),
    list: root.getElementById('my-sessions-list'),
    onError: (message) => showError(message),
  });
  let inFlight = false;
  let retryTimer = null;
  let retryDeadline = 0;

  function selectedImage() {
    if (imageSelect && imageSelect.value) return imageSelect.value;
    return form.dataset.defaultImage || '';
  }

  function setBusy(busy, statusText = '') {
    button.disabled = busy;
    button.setAttribute('aria-busy', busy ? 'true' : 'false');
    if (imageSelect) imageSelect.disabled = busy;
    choice.setEnabled(!busy);
    form.classList.toggle('is-busy', busy);
    if (statusBox) statusBox.textContent = statusText;
  }

  function showError(message, retryText = '') {
    if (!errorBox) return;
    errorBox.replaceChildren();
    if (!message) {
      errorBox.hidden = true;
      return;
    }
    const p = document.createElement('p');
    p.className = 'error-message';
    p.textContent = message;
    errorBox.append(p);
    if (retryText) {
      const r = document.createElement('p');
      r.className = 'error-retry';
      r.id = 'retry-countdown';
      r.textContent = retryText;
      errorBox.append(r);
    }
    errorBox.hidden = false;
  }

  function clearRetry() {
    if (retryTimer !== null) {
      clearInterval(retryTimer);
      retryTimer = null;
    }
  }

  function scheduleRetry(message, seconds) {
    clearRetry();
    retryDeadline = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.max(0, Math.ceil((retryDeadline - Date.now()) / 1000));
      if (left <= 0) {
        clearRetry();
        start();
        return;
      }
      const when = left >= 60 ? formatCountdown(left) : `${left} s`;
      showError(message, t('landing.retry_in', { when }));
    };
    setBusy(true, t('landing.waiting'));
    tick();
    retryTimer = setInterval(tick, 250);
  }

  async function start() {
    if (inFlight) return;
    clearRetry();
    inFlight = true;
    const template = choice.template();
    setBusy(true, template ? t('landing.starting_nodes', { title: template.title }) : t('landing.starting'));
    const requestedAt = Date.now();
    let result;
    try {
      result = await createSession(template ? { template: template.name } : { image: selectedImage() });
    } catch (err) {
      inFlight = false;
      if (err && err.name === 'AbortError') return;
      throw err;
    }
    inFlight = false;

    if (result.ok && result.data && result.data.id) {
      if (statusBox) statusBox.textContent = t(template ? 'landing.nodes_ready' : 'landing.sandbox_ready');
      openStartedSession(root, loadSessionPage, { ...result, requestedAt }, () => api.dispose());
      return;
    }
    if (result.ok) {
      setBusy(false);
      showError(t('landing.no_id'));
      return;
    }
    if (result.error === 'too_many_sessions') mine.refresh(); // the list shows what to end
    if (result.status === 429 || result.status === 503) {
      const seconds = Math.min(result.retryAfter ?? DEFAULT_RETRY_SECONDS, MAX_AUTO_RETRY_SECONDS);
      scheduleRetry(result.message, Math.max(1, seconds));
      return;
    }
    setBusy(false);
    showError(result.message);
    button.focus();
  }

  form.addEventListener(
    'submit',
    (event) => {
      event.preventDefault();
      showError('');
      start();
    },
    { signal },
  );
  // Leaving the page (or bfcache restore) must not leave a stale countdown or disabled button.
  window.addEventListener(
    'pageshow',
    (event) => {
      if (event.persisted) {
        clearRetry();
        inFlight = false;
        setBusy(false);
        showError('');
        mine.refresh(); // sessions may have been ended or started since
      }
    },
    { signal },
  );

  mine.refresh();
  preloadSessionPage(loadSessionPage);

  const api = {
    start,
    sessions: mine,
    dispose() {
      clearRetry();
      controller.abort();
      mine.dispose();
      choice.dispose();
    },
  };
  window.playground = { page: 'landing', ...api };
  return api;
}

/**
 * The choice between one node of an image (`#choice-node`, `#image`) and a template
 * (`#choice-template`, `#template`; its `.template-about[data-template]` shown while chosen): a
 * select's use chooses its side. `template()`: `{name, title}` of the chosen template, or null.
 */
function createStartChoice(root) {
  const nodeRadio = root.getElementById('choice-node');
  const templateRadio = root.getElementById('choice-template');
  const templateSelect = root.getElementById('template');
  const imageSelect = root.getElementById('image');
  const abouts = [...root.querySelectorAll('.template-about[data-template]')];
  const controller = new AbortController();
  const { signal } = controller;

  function show() {
    const chosen = templateRadio && templateRadio.checked && templateSelect ? templateSelect.value : '';
    for (const about of abouts) about.hidden = about.dataset.template !== chosen;
    root.body?.classList.toggle('has-template', Boolean(chosen)); // a more compact page (style.css)
  }
  function choose(radio) {
    if (radio) radio.checked = true;
    show();
  }
  for (const [select, radio] of [[imageSelect, nodeRadio], [templateSelect, templateRadio]]) {
    if (!select) continue;
    for (const type of ['focus', 'input', 'change']) select.addEventListener(type, () => choose(radio), { signal });
  }
  for (const radio of [nodeRadio, templateRadio]) radio?.addEventListener('change', show, { signal });
  show(); // a reload may keep the template chosen

  return {
    template() {
      if (!templateRadio || !templateRadio.checked || !templateSelect || !templateSelect.value) return null;
      const option = templateSelect.selectedOptions[0];
      return { name: templateSelect.value, title: (option && option.dataset.title) || templateSelect.value };
    },
    setEnabled(enabled) {
      for (const el of [nodeRadio, templateRadio, templateSelect]) if (el) el.disabled = !enabled;
    },
    dispose: () => controller.abort(),
  };
}
