// The instructor's live dashboard of a workshop (/workshops/<id>/, <body data-page="dashboard">):
// one row per learner, the class's step histogram and the help queue, pushed by the server over
// ws/workshops/<id>/ (playground/workshops/consumers.py): a `snapshot` at connect and every 30 s,
// then `row` and `help` events as learners change. Nothing is polled. "On step" and "last
// activity" tick here from the rows' timestamps, and so does the "stuck: long on step" flag, from
// the row's `stuck_at` (when the learner will have spent the workshop's stuck_minutes on a step
// without passing it). Columns sort on a click (again: the other way); the name, "stuck only" and
// "hand raised only" filter. A lost connection reconnects with backoff.

import { apiRequest } from './api.js';
import { element } from './dom.js';
import { backoffDelay, formatCountdown } from './format.js';
import { t } from './i18n.js';
import { mountActions } from './workshopactions.js';

const TICK_MS = 1000;
const CLOSE_REFUSED = [4403, 4404]; // not this instructor's, or no such workshop: no reconnecting

/** Seconds from the ISO time `iso` to `nowMs` (0 for a time to come), or null without a time. */
export function secondsSince(iso, nowMs) {
  const at = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(at) ? null : Math.max(0, Math.floor((nowMs - at) / 1000));
}

/** Why the row is stuck at `nowMs`: 'checks', 'time', or null (the server's `stuck_at` turns 'time' on). */
export function stuckReason(row, nowMs) {
  if (row.stuck_reason === 'checks') return 'checks';
  const at = row.stuck_at ? Date.parse(row.stuck_at) : NaN;
  return !Number.isNaN(at) && nowMs >= at ? 'time' : null;
}

/** The value a column sorts on: text for the name and state, numbers for the rest (null last). */
export function sortValue(row, key, nowMs) {
  switch (key) {
    case 'name':
      return row.name.toLocaleLowerCase();
    case 'state':
      return `${row.state === 'active' ? (row.connected ? 0 : 1) : row.state === 'ending' ? 2 : 3}`;
    case 'step':
      return row.step === null ? null : row.finished ? row.step + 0.5 : row.step;
    case 'on_step':
      return secondsSince(row.step_started_at, nowMs);
    case 'last_activity':
      return secondsSince(row.last_activity, nowMs);
    case 'flags':
      return (row.hand ? 2 : 0) + (stuckReason(row, nowMs) ? 1 : 0);
    default:
      return row[key] ?? null;
  }
}

/** `rows` sorted by the column `key` (`descending` the other way; rows without a value last, then by name). */
export function sortRows(rows, { key = 'name', descending = false } = {}, nowMs = Date.now()) {
  const direction = descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = sortValue(a, key, nowMs);
    const y = sortValue(b, key, nowMs);
    if (x === null || y === null) {
      if (x !== y) return x === null ? 1 : -1;
    } else if (x < y) return -direction;
    else if (x > y) return direction;
    return a.name.localeCompare(b.name);
  });
}

/** The rows the filters let through: `name` (a part of it, any case), `stuckOnly`, `handOnly`. */
export function filterRows(rows, { name = '', stuckOnly = false, handOnly = false } = {}, nowMs = Date.now()) {
  const part = name.trim().toLocaleLowerCase();
  return rows.filter(
    (row) =>
      (!part || row.name.toLocaleLowerCase().includes(part)) &&
      (!stuckOnly || stuckReason(row, nowMs) !== null) &&
      (!handOnly || row.hand !== null),
  );
}

/** The dashboard's state: rows by learner, the histogram, the help queue. `apply(event)` folds an event in. */
export function createModel() {
  const model = { rows: new Map(), histogram: null, help: [] };
  model.apply = (event) => {
    if (event.type === 'snapshot') {
      model.rows = new Map(event.rows.map((row) => [row.learner, row]));
      model.histogram = event.histogram;
      model.help = event.help;
    } else if (event.type === 'row') {
      model.rows.set(event.row.learner, event.row);
      model.histogram = event.histogram;
    } else if (event.type === 'help') {
      model.help = event.help;
    } else {
      return false;
    }
    return true;
  };
  return model;
}

/** What the state column says of a row. */
export function stateText(row) {
  if (row.state === 'active') return t(row.connected ? 'dashboard.state_connected' : 'dashboard.state_away');
  return t(row.state === 'ending' ? 'dashboard.state_ending' : 'dashboard.state_ended');
}

/** What the step column says of a row: "3/7", "finished", or that it is a free sandbox. */
export function stepText(row) {
  if (row.step === null) return t('dashboard.no_step');
  if (row.finished) return t('dashboard.finished');
  return t('dashboard.step', { step: row.step, steps: row.steps });
}

/** The row's flags as [class, text] pairs. */
export function flagsOf(row, nowMs) {
  const flags = [];
  const reason = stuckReason(row, nowMs);
  if (reason === 'checks') flags.push(['flag-stuck', t('dashboard.flag_stuck_checks')]);
  if (reason === 'time') flags.push(['flag-stuck', t('dashboard.flag_stuck_time')]);
  if (row.hand) flags.push(['flag-hand', t('dashboard.flag_hand')]);
  return flags;
}

function ago(iso, nowMs) {
  const seconds = secondsSince(iso, nowMs);
  return seconds === null ? '' : t('dashboard.ago', { time: formatCountdown(seconds) });
}

/** The dashboard page in `doc` (see the module). Returns { dispose() }. */
export function initDashboard(doc, { win = window, request = apiRequest } = {}) {
  const workshopId = doc.body.dataset.workshop;
  const els = Object.fromEntries(
    [
      'dashboard-status',
      'help-queue',
      'help-empty',
      'help-problem',
      'histogram-section',
      'histogram',
      'learner-rows',
      'learners-empty',
      'learner-count',
      'filter-name',
      'filter-stuck',
      'filter-hand',
    ].map((id) => [id, doc.getElementById(id)]),
  );
  const model = createModel();
  const actionsBox = doc.getElementById('workshop-actions'); // the instructor's actions (workshopactions.js)
  const actions = actionsBox ? mountActions(doc, actionsBox, workshopId) : null;
  const sort = { key: 'name', descending: false };
  let socket = null;
  let attempt = 0;
  let stopped = false;
  let retry = null;
  let skewMs = 0; // the browser's clock less the server's, from the last snapshot's `now`

  function status(text) {
    els['dashboard-status'].textContent = text;
  }

  function filters() {
    return {
      name: els['filter-name'].value,
      stuckOnly: els['filter-stuck'].checked,
      handOnly: els['filter-hand'].checked,
    };
  }

  function rowElement(row, nowMs) {
    const failed =
      row.failed_here > 0 ? t('dashboard.failed_here', { total: row.checks_failed, here: row.failed_here }) : `${row.checks_failed}`;
    const onStep = secondsSince(row.step_started_at, nowMs);
    const flags = element(doc, 'td', { className: 'flags' });
    for (const [className, text] of flagsOf(row, nowMs)) flags.append(element(doc, 'span', { className: `flag ${className}`, text }));
    const tr = element(
      doc,
      'tr',
      { dataset: { learner: String(row.learner) } },
      element(doc, 'td', { text: row.name }),
      element(doc, 'td', { className: `state state-${row.state}${row.connected ? ' is-connected' : ''}`, text: stateText(row) }),
      element(doc, 'td', { text: stepText(row) }),
      element(doc, 'td', { className: 'number', text: `${row.checks_passed}` }),
      element(doc, 'td', { className: 'number', text: failed }),
      element(doc, 'td', { className: 'number', text: onStep === null || row.finished ? '' : formatCountdown(onStep) }),
      element(doc, 'td', { text: ago(row.last_activity, nowMs) }),
      flags,
      element(
        doc,
        'td',
        {},
        element(doc, 'a', { text: t('dashboard.watch'), attrs: { href: row.watch } }),
        ' ',
        element(doc, 'a', { text: t('dashboard.recordings'), attrs: { href: row.recordings } }),
      ),
    );
    if (flagsOf(row, nowMs).length) tr.className = 'is-flagged';
    return tr;
  }

  function renderRows(nowMs) {
    const all = [...model.rows.values()];
    const shown = sortRows(filterRows(all, filters(), nowMs), sort, nowMs);
    els['learner-rows'].replaceChildren(...shown.map((row) => rowElement(row, nowMs)));
    els['learners-empty'].hidden = all.length > 0;
    els['learner-count'].textContent = all.length ? t('dashboard.count', { shown: shown.length, total: all.length }) : '';
    for (const th of doc.querySelectorAll('th [data-sort]')) {
      const sorted = th.dataset.sort === sort.key;
      th.parentElement.setAttribute('aria-sort', sorted ? (sort.descending ? 'descending' : 'ascending') : 'none');
    }
  }

  function renderHistogram() {
    const histogram = model.histogram;
    els['histogram-section'].hidden = !histogram;
    if (!histogram) return;
    const bars = histogram.counts.map((count, index) => [t('dashboard.histogram_step', { step: index + 1 }), count]);
    bars.push([t('dashboard.histogram_finished'), histogram.finished]);
    const most = Math.max(1, ...bars.map(([, count]) => count));
    els.histogram.replaceChildren(
      ...bars.map(([label, count]) => {
        const bar = element(doc, 'span', { className: 'histogram-bar' });
        bar.style.width = `${(100 * count) / most}%`;
        return element(
          doc,
          'div',
          { className: 'histogram-row', attrs: { 'aria-label': t('dashboard.histogram_bar', { label, count }) } },
          element(doc, 'span', { className: 'histogram-label', text: label }),
          element(doc, 'span', { className: 'histogram-track' }, bar),
          element(doc, 'span', { className: 'histogram-count', text: `${count}` }),
        );
      }),
    );
  }

  async function resolve(entry, button) {
    button.disabled = true;
    const reply = await request(`/workshops/${encodeURIComponent(workshopId)}/help/${entry.id}/resolve/`, { method: 'POST', body: {} });
    button.disabled = false;
    els['help-problem'].hidden = reply.ok;
    if (!reply.ok) els['help-problem'].textContent = reply.message || t('workshop.action_failed');
  }

  let helpTimes = []; // [element, entry]: the queue's "raised ... ago", updated every tick

  function helpLabel(entry, nowMs) {
    return t('dashboard.help_entry', { name: entry.name, time: formatCountdown(secondsSince(entry.raised_at, nowMs) ?? 0) });
  }

  function renderHelp(nowMs) {
    els['help-empty'].hidden = model.help.length > 0;
    helpTimes = [];
    els['help-queue'].replaceChildren(
      ...model.help.map((entry) => {
        const label = element(doc, 'strong', { text: helpLabel(entry, nowMs) });
        helpTimes.push([label, entry]);
        const resolveButton = element(doc, 'button', { type: 'button', className: 'btn btn-primary', text: t('dashboard.resolve') });
        resolveButton.addEventListener('click', () => resolve(entry, resolveButton));
        return element(
          doc,
          'li',
          { dataset: { help: String(entry.id) } },
          label,
          entry.sentence ? element(doc, 'span', { className: 'help-sentence', text: entry.sentence }) : '',
          element(doc, 'a', { className: 'btn btn-secondary', text: t('dashboard.watch'), attrs: { href: entry.watch } }),
          resolveButton,
        );
      }),
    );
  }

  function render() {
    const nowMs = Date.now() - skewMs;
    renderRows(nowMs);
    renderHistogram();
    renderHelp(nowMs);
    actions?.update([...model.rows.values()], model.histogram ? model.histogram.steps : null);
  }

  /** Every second: the rows (their times and flags), and the queue's times without remaking its buttons. */
  function tick() {
    const nowMs = Date.now() - skewMs;
    renderRows(nowMs);
    for (const [label, entry] of helpTimes) label.textContent = helpLabel(entry, nowMs);
  }

  function connect() {
    const scheme = win.location.protocol === 'https:' ? 'wss://' : 'ws://';
    socket = new win.WebSocket(`${scheme}${win.location.host}/ws/workshops/${encodeURIComponent(workshopId)}/`);
    socket.addEventListener('message', (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === 'error') {
        status(event.message);
        return;
      }
      if (event.type === 'snapshot') {
        const serverNow = Date.parse(event.now);
        if (!Number.isNaN(serverNow)) skewMs = Date.now() - serverNow; // stuck_at and the times are the server's
        attempt = 0;
        status(t('dashboard.live'));
      }
      if (model.apply(event)) render();
    });
    socket.addEventListener('close', (closed) => {
      socket = null;
      if (stopped || CLOSE_REFUSED.includes(closed.code)) return;
      status(t('dashboard.reconnecting'));
      retry = win.setTimeout(connect, backoffDelay(attempt++));
    });
  }

  for (const button of doc.querySelectorAll('th [data-sort]')) {
    button.addEventListener('click', () => {
      sort.descending = sort.key === button.dataset.sort ? !sort.descending : false;
      sort.key = button.dataset.sort;
      render();
    });
  }
  for (const id of ['filter-name', 'filter-stuck', 'filter-hand']) els[id].addEventListener('input', tick);
  const ticker = win.setInterval(tick, TICK_MS);
  connect();

  return {
    dispose() {
      stopped = true;
      win.clearInterval(ticker);
      if (retry !== null) win.clearTimeout(retry);
      socket?.close();
    },
  };
}
