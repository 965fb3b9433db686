// Pure formatting and parsing helpers. No DOM access here, so they can be
// unit-tested with `node --test` (see ../test/format.test.js). Words in the page's language (t()).

import { t } from './i18n.js';

const KIB = 1024;
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; // B: below a KiB, words instead (format.bytes)

/** Rounds to at most `digits` decimals and drops trailing zeros: 1.50 -> "1.5". */
function trimNumber(value, digits = 1) {
  const factor = 10 ** digits;
  return String(Math.round(value * factor) / factor);
}

/** 536870912 -> "512 MiB", 1610612736 -> "1.5 GiB" (binary units, as the server counts). */
export function formatBytes(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < KIB) return t(bytes === 1 ? 'format.byte' : 'format.bytes', { n: Math.round(bytes) });
  let value = bytes;
  let unit = 0;
  while (value >= KIB && unit < UNITS.length - 1) {
    value /= KIB;
    unit += 1;
  }
  return `${trimNumber(value)} ${UNITS[unit]}`;
}

/** 1 -> "1 CPU", 0.5 -> "0.5 CPU", 2 -> "2 CPUs". */
export function formatCpus(cpus) {
  if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus <= 0) return '';
  const text = trimNumber(cpus, 2);
  return t(cpus > 1 ? 'format.cpus' : 'format.cpu', { n: text });
}

/** 256 -> "256 processes", 1 -> "1 process". */
export function formatPids(pids) {
  if (typeof pids !== 'number' || !Number.isFinite(pids) || pids <= 0) return '';
  const n = Math.round(pids);
  return t(n === 1 ? 'format.process' : 'format.processes', { n });
}

/** The header line: "512 MiB RAM · 1 CPU · 256 processes · 1 GiB disk" (missing parts are left out). */
export function formatLimits(limits) {
  if (!limits || typeof limits !== 'object') return '';
  const memory = formatBytes(limits.memory_bytes);
  const disk = formatBytes(limits.disk_bytes);
  return [memory && t('format.memory', { size: memory }), formatCpus(limits.cpus), formatPids(limits.pids), disk && t('format.disk', { size: disk })]
    .filter(Boolean)
    .join(' · ');
}

/** Seconds -> "mm:ss" below an hour, "h:mm:ss" from an hour on. Negative counts as 0. */
export function formatCountdown(totalSeconds) {
  const s = Math.max(0, Math.floor(Number(totalSeconds) || 0));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return hours > 0 ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${pad(minutes)}:${pad(seconds)}`;
}

/**
 * Parses a Retry-After header value into whole seconds (>= 0), or null when it
 * is missing or unusable. Accepts delta-seconds ("30") and HTTP dates.
 */
export function parseRetryAfter(value, nowMs = Date.now()) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim();
  if (text === '') return null;
  if (/^\d+$/.test(text)) return Number.parseInt(text, 10);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - nowMs) / 1000));
}

/**
 * Reconnect delay in ms for the given attempt (0-based): 0.5 s doubling up to
 * 8 s, with +/-25 % jitter (never above the cap). `random` is injectable for tests.
 */
export function backoffDelay(attempt, random = Math.random, baseMs = 500, maxMs = 8000) {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt, 16)));
  const jittered = exp * (0.75 + 0.5 * random());
  return Math.round(Math.min(maxMs, Math.max(baseMs / 2, jittered)));
}
