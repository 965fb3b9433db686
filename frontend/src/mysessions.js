// The landing page's list of the visitor's live sessions: the ones whose keys this browser's
// cookies hold (GET /api/sessions/ answers from them), each with Resume (its page, the same
// shell) and End (once confirmed). So a closed tab is not a lost session, nor a slot of the
// visitor's per-address limit held until the idle timeout.

import { endSession, listSessions, sessionPath } from './api.js';
import { localTime } from './countdown.js';
import { element } from './dom.js';
import { t } from './i18n.js';
import { confirmEndSession } from './ui.js';

/** What a list item says of a session's API data: its lab's or template's title, or its image, and its times. */
export function sessionSummary(data, timeOf = localTime) {
  const titled = [data.lab, data.template].find((part) => part && part.title);
  const name = titled ? titled.title : data.image;
  const times = [t('mysessions.started', { time: timeOf(data.created_at) }), t('mysessions.ends', { time: timeOf(data.expires_at) })];
  return { name, detail: [titled ? data.image : '', ...times].filter(Boolean).join(' · ') };
}

/**
 * The list in `section` (#my-sessions, with #my-sessions-list); hidden while there is none.
 * `onError(message)` shows a failed End. Returns { refresh(), dispose() }.
 */
export function createSessionList(doc, { section, list, onError }) {
  const controller = new AbortController();
  if (!section || !list) return { refresh: async () => {}, dispose: () => controller.abort() };

  /** The list shows while it has a session; the page is then more compact (body.has-sessions). */
  function showList() {
    section.hidden = list.children.length === 0;
    doc.body.classList.toggle('has-sessions', !section.hidden);
  }

  function item(data) {
    const { name, detail } = sessionSummary(data);
    const resume = element(doc, 'a', {
      className: 'btn btn-primary my-session-resume',
      text: t('mysessions.resume'),
      attrs: { href: sessionPath(data.id), 'aria-label': t('mysessions.resume_label', { name, detail }) },
    });
    const end = element(doc, 'button', {
      type: 'button',
      className: 'btn btn-danger my-session-end',
      text: t('mysessions.end'),
      attrs: { 'aria-label': t('mysessions.end_label', { name, detail }) },
    });
    const li = element(
      doc,
      'li',
      { className: 'my-session', dataset: { sessionId: data.id } },
      element(
        doc,
        'div',
        { className: 'my-session-what' },
        element(doc, 'span', { className: 'my-session-name', text: name }),
        element(doc, 'span', { className: 'my-session-detail', text: detail }),
      ),
      resume,
      end,
    );
    end.addEventListener('click', () => endOne(li, end), { signal: controller.signal });
    return li;
  }

  async function endOne(li, button) {
    if (!(await confirmEndSession(doc))) return;
    button.disabled = true;
    const { ended, message } = await endSession(li.dataset.sessionId);
    if (!ended) {
      button.disabled = false;
      onError(message);
      return;
    }
    li.remove();
    showList();
  }

  /** Ask the server for the visitor's sessions again and show them (nothing on a failure). */
  async function refresh() {
    let result;
    try {
      result = await listSessions({ signal: controller.signal });
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      throw err;
    }
    if (!result.ok || !result.data || !Array.isArray(result.data.sessions)) return;
    list.replaceChildren(...result.data.sessions.map(item));
    showList();
  }

  return { refresh, dispose: () => controller.abort() };
}
