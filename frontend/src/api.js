// Thin wrappers around fetch() for the Playground JSON API.
//
// Every call resolves (never rejects) to
//   { ok, status, data, error, message, retryAfter, serverDate }
// where `data` is the parsed JSON body (or null), `error`/`message` come from the
// server's {"error": code, "message": sentence} body or are filled in here for
// network failures and non-JSON replies.

import { parseRetryAfter } from './format.js';
import { language, t } from './i18n.js';

/** The CSRF token rendered into <meta name="csrf-token"> by base.html, if any. */
function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const token = meta ? meta.getAttribute('content') : '';
  return token && token !== 'NOTPROVIDED' ? token : '';
}

/** The headers of a request that changes something (the server's CSRF checks), for fetch() and XMLHttpRequest. */
export function changeHeaders() {
  const token = csrfToken();
  return token ? { 'X-Requested-With': 'playground', 'X-CSRFToken': token } : { 'X-Requested-With': 'playground' };
}

function genericMessage(status) {
  if (status === 403) return t('api.forbidden');
  if (status === 404) return t('api.not_found');
  if (status === 429) return t('api.too_many');
  if (status === 503) return t('api.capacity');
  if (status >= 500) return t('api.server_error', { status });
  return t('api.failed', { status });
}

/** The page's own sentence for the common refusals (the API's `error` codes), shown instead of the server's English one. */
const OWN_SENTENCES = { at_capacity: 'api.capacity', too_many_sessions: 'api.too_many_sessions', session_ended: 'end.ended_fallback' };

/** The sentence to show for a failed reply: the page's own for a common refusal when the page is not in English, else the server's. */
function replyMessage(data, status) {
  const error = data && typeof data.error === 'string' ? data.error : '';
  if (language() !== 'en' && OWN_SENTENCES[error]) return t(OWN_SENTENCES[error]);
  return (data && typeof data.message === 'string' && data.message) || genericMessage(status);
}

export async function apiRequest(url, { method = 'GET', body, headers = {}, signal } = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...headers },
    signal,
  };
  if (method !== 'GET' && method !== 'HEAD') Object.assign(init.headers, changeHeaders());
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    return {
      ok: false,
      status: 0,
      data: null,
      error: 'network',
      message: t('api.network'),
      retryAfter: null,
      serverDate: null,
    };
  }

  let data = null;
  if (response.status !== 204) {
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
  }

  const dateHeader = response.headers.get('Date');
  const serverDate = dateHeader ? Date.parse(dateHeader) : NaN;
  const result = {
    ok: response.ok,
    status: response.status,
    data,
    error: null,
    message: null,
    retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
    serverDate: Number.isNaN(serverDate) ? null : serverDate,
  };
  if (!response.ok) {
    result.error = (data && typeof data.error === 'string' && data.error) || `http_${response.status}`;
    result.message = replyMessage(data, response.status);
  }
  return result;
}

/** Starts a session: `{template}` (a template's nodes), `{image}` (one node of it), or `{}` (the default image). */
export function createSession({ image, template } = {}) {
  return apiRequest('/api/sessions/', { method: 'POST', body: startBody({ image, template }) });
}

/** The body of a start: the template when one is chosen (its nodes name their images), else the image, if any. */
export function startBody({ image, template } = {}) {
  if (template) return { template };
  return image ? { image } : {};
}

/** The visitor's live sessions, by the cookies their starts set: `{sessions: [session, ...]}`. */
export function listSessions({ signal } = {}) {
  return apiRequest('/api/sessions/', { signal });
}

export function getSession(id) {
  return apiRequest(`/api/sessions/${encodeURIComponent(id)}/`);
}

export function deleteSession(id) {
  return apiRequest(`/api/sessions/${encodeURIComponent(id)}/`, { method: 'DELETE' });
}

/** DELETE statuses after which the session no longer runs. */
const GONE = [204, 404, 410];

/**
 * Ends session `id` (DELETE): resolves `{ ended, message }`, `message` saying why not when it
 * did not end.
 */
export async function endSession(id) {
  const result = await deleteSession(id);
  return {
    ended: GONE.includes(result.status),
    message: result.message || t('api.end_failed'),
  };
}

export function extendSession(id) {
  return apiRequest(`/api/sessions/${encodeURIComponent(id)}/extend/`, { method: 'POST' });
}

export function sessionPath(id) {
  return `/s/${encodeURIComponent(id)}/`;
}
