// The node panel's pure parts (no DOM, tested with node --test): the API's paths for nodes,
// ports and files, a node's CPU use from two readings, its stats line, the port badges' model,
// the list's poll delays and the sentences of uploads and downloads.

import { backoffDelay, formatBytes } from './format.js';
import { t } from './i18n.js';

/** The list is asked for about once a second while the page is visible. */
export const POLL_MS = 1000;
/** After failures the delay doubles up to this (no poll storm while the server is away). */
export const MAX_POLL_BACKOFF_MS = 30000;

const segment = encodeURIComponent;

/** `/api/sessions/<id>/instances/` or, with `node`, that node's path (`.../instances/<node>/`). */
export function nodesUrl(sessionId, node) {
  const base = `/api/sessions/${segment(sessionId)}/instances/`;
  return node === undefined ? base : `${base}${segment(node)}/`;
}

/** A node's port: `.../instances/<node>/ports/<port>/` (GET its port JSON, PATCH its options). */
export function portUrl(sessionId, node, port) {
  return `${nodesUrl(sessionId, node)}ports/${segment(String(port))}/`;
}

/** A node's files: `.../instances/<node>/files/?path=<path>[&terminal=<n>]`. */
export function filesUrl(sessionId, node, path, terminal) {
  const query = new URLSearchParams({ path });
  if (terminal !== undefined && terminal !== null) query.set('terminal', String(terminal));
  return `${nodesUrl(sessionId, node)}files/?${query}`;
}

/**
 * CPU use in percent of one CPU between two readings `{cpuSeconds, atMs}` (the node's
 * `stats.cpu_seconds` and when the answer came); null when it cannot be told: no earlier
 * reading, no time between them, or a counter that went back (the node was made anew).
 */
export function cpuPercent(previous, current) {
  if (!previous || !current) return null;
  const { cpuSeconds: before, atMs: then } = previous;
  const { cpuSeconds: now, atMs: later } = current;
  if (![before, then, now, later].every(Number.isFinite)) return null;
  const elapsed = (later - then) / 1000;
  if (elapsed <= 0 || now < before) return null;
  return ((now - before) / elapsed) * 100;
}

/** 0.04 -> "0%", 3.26 -> "3.3%", 57.9 -> "58%" (null -> "" until there are two readings). */
export function formatPercent(percent) {
  if (percent === null || !Number.isFinite(percent)) return '';
  if (percent < 0.05) return '0%';
  return percent < 10 ? `${Math.round(percent * 10) / 10}%` : `${Math.round(percent)}%`;
}

/** A node's use in words: "12 MiB / 256 MiB · 3.3% CPU" (each part left out when unknown). */
export function formatNodeStats(stats, percent) {
  if (!stats) return '';
  const used = formatBytes(stats.memory_bytes);
  const limit = formatBytes(stats.memory_limit_bytes);
  const memory = used && limit ? `${used} / ${limit}` : used;
  const cpu = formatPercent(percent);
  return [memory, cpu && `${cpu} CPU`].filter(Boolean).join(' · ');
}

/**
 * The badges of a node's ports (the API's port JSON list), by port number: `{port, listening,
 * shared, https, openUrl, pathOpenUrl, url, pathUrl, label, title}`. A port that does not listen
 * is listed only while it has options set (the API's list), so that its share can be undone.
 */
export function portBadges(ports) {
  if (!Array.isArray(ports)) return [];
  return ports
    .filter((p) => p && Number.isInteger(p.port))
    .map((p) => ({
      port: p.port,
      listening: p.listening === true,
      shared: p.shared === true,
      https: p.https === true,
      openUrl: p.open_url || '',
      pathOpenUrl: p.open_url ? `${p.open_url}?form=path` : '',
      url: p.url || '',
      pathUrl: p.path_url || '',
      label: String(p.port),
      title: portTitle(p),
    }))
    .sort((a, b) => a.port - b.port);
}

function portTitle(p) {
  const what = t(p.listening ? 'ports.open_title' : 'ports.not_listening', { port: p.port });
  const options = [p.shared && t('ports.shared_note'), p.https && t('ports.https_note')];
  return [what, ...options.filter(Boolean)].join('; ');
}

/** The delay before the next poll of the node list: a second, or a backoff after `failures` failures in a row. */
export function nextPollDelay(failures, random = Math.random) {
  if (failures <= 0) return POLL_MS;
  return backoffDelay(failures, random, POLL_MS, MAX_POLL_BACKOFF_MS);
}

/** "Uploaded notes.txt to /root/notes.txt (10 MiB)." from the API's 201 answer. */
export function uploadedMessage(name, answer) {
  const where = answer && typeof answer.path === 'string' ? answer.path : name;
  if (!(answer && Number.isFinite(answer.size))) return t('files.uploaded', { name, where });
  return t('files.uploaded_size', { name, where, size: formatBytes(answer.size) });
}

/** The catalogue key of the sentence for each status of a failed transfer. */
const TRANSFER_FALLBACKS = {
  0: 'files.lost',
  400: 'files.refused',
  403: 'api.forbidden',
  404: 'files.no_such',
  409: 'files.node_stopped',
  413: 'files.too_large',
  507: 'files.disk_full',
};

/**
 * The sentence for a failed upload or download: the API's own `message` when its body was one
 * (`{"error", "message"}`), else a sentence for the status (`0`: no answer).
 */
export function transferError(status, body) {
  if (body && typeof body === 'object' && typeof body.message === 'string' && body.message) return body.message;
  if (TRANSFER_FALLBACKS[status]) return t(TRANSFER_FALLBACKS[status]);
  if (status >= 500) return t('api.server_error', { status });
  return t('files.failed', { status });
}

/** "Uploading notes.txt… 42%" for an upload's progress (`total` 0 when unknown). */
export function progressMessage(name, loaded, total) {
  if (!total) return t('files.uploading', { name });
  return t('files.uploading_percent', { name, percent: Math.min(100, Math.floor((loaded / total) * 100)) });
}

/** The file name of a download path: "/root/out/data.bin" -> "data.bin" ("download" for none). */
export function downloadName(path) {
  const parts = String(path).split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : 'download';
}
