// The lab pages: the catalogue (/labs/: live search, tag and language filters over the server's
// list, which also works as a plain form) and a lab's introduction (/labs/<slug>/) whose Start
// button starts a session with the lab and opens it in place (startplace.js).

import { apiRequest } from './api.js';
import { t } from './i18n.js';
import { setSafeHtml } from './labhtml.js';
import { openStartedSession, preloadSessionPage } from './startplace.js';

const SEARCH_DELAY_MS = 200;

function card(doc, lab) {
  const item = doc.createElement('li');
  item.className = 'lab-card';
  item.dataset.slug = lab.slug;
  item.dataset.language = lab.language;
  const heading = doc.createElement('h2');
  const link = doc.createElement('a');
  link.href = `/labs/${encodeURIComponent(lab.slug)}/?language=${encodeURIComponent(lab.language)}`;
  link.textContent = lab.title;
  heading.append(link);
  const summary = doc.createElement('p');
  summary.className = 'lab-summary';
  summary.textContent = lab.summary;
  const meta = doc.createElement('p');
  meta.className = 'lab-meta';
  meta.textContent = [lab.language, t('labs.minutes', { n: lab.duration_minutes }), lab.difficulty, t('labs.steps', { n: lab.steps })].join(' · ');
  const tags = doc.createElement('p');
  tags.className = 'lab-tags';
  for (const tag of lab.tags) {
    const span = doc.createElement('span');
    span.className = 'lab-tag';
    span.textContent = tag;
    tags.append(span);
  }
  item.append(heading, summary, meta, tags);
  return item;
}

export function initCatalogue(doc = document) {
  const form = doc.getElementById('lab-filters');
  const cards = doc.getElementById('lab-cards');
  const count = doc.getElementById('lab-count');
  if (!form || !cards) return;
  let timer = 0;
  let latest = 0;
  async function refresh() {
    const params = new URLSearchParams(new FormData(form));
    const ticket = ++latest;
    const reply = await apiRequest(`/api/labs/?${params}`);
    if (ticket !== latest || !reply.ok || !reply.data) return;
    const labs = reply.data.labs;
    if (labs.length) cards.replaceChildren(...labs.map((lab) => card(doc, lab)));
    else {
      const empty = doc.createElement('li');
      empty.className = 'lab-empty';
      empty.textContent = t('labs.none');
      cards.replaceChildren(empty);
    }
    if (count) count.textContent = t('labs.count', { count: labs.length });
    history.replaceState(null, '', `/labs/?${params}`);
  }
  form.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, SEARCH_DELAY_MS);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(timer);
    refresh();
  });
}

/**
 * A lab's introduction in `doc`; `loadSessionPage()` resolves to the session page's chunk, in
 * which Start opens the lab's session (without it, Start moves to the session's page).
 */
export function initLabIntro(doc = document, loadSessionPage = null) {
  const body = doc.body;
  const intro = doc.getElementById('lab-intro');
  const source = doc.getElementById('lab-intro-html');
  if (intro && source) setSafeHtml(intro, JSON.parse(source.textContent));
  const button = doc.getElementById('lab-start');
  const status = doc.getElementById('lab-start-status');
  const errorBox = doc.getElementById('error');
  if (!button) return;
  button.addEventListener('click', async () => {
    button.disabled = true;
    if (status) status.textContent = status.dataset.starting || '';
    if (errorBox) errorBox.hidden = true;
    const requestedAt = Date.now();
    const reply = await apiRequest('/api/sessions/', {
      method: 'POST',
      body: { lab: body.dataset.labSlug, language: body.dataset.labLanguage },
    });
    if (reply.ok && reply.data && reply.data.id) {
      openStartedSession(doc, loadSessionPage, { ...reply, requestedAt });
      return;
    }
    button.disabled = false;
    if (status) status.textContent = '';
    if (errorBox) {
      errorBox.textContent = reply.message || t('labs.start_failed');
      errorBox.hidden = false;
    }
  });
  preloadSessionPage(loadSessionPage);
}
