import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  backoffDelay,
  formatBytes,
  formatCountdown,
  formatCpus,
  formatLimits,
  formatPids,
  parseRetryAfter,
} from '../src/format.js';

test('formatBytes uses binary units', () => {
  assert.equal(formatBytes(512 * 1024 * 1024), '512 MiB');
  assert.equal(formatBytes(1024 ** 3), '1 GiB');
  assert.equal(formatBytes(1.5 * 1024 ** 3), '1.5 GiB');
  assert.equal(formatBytes(64 * 1024), '64 KiB');
  assert.equal(formatBytes(100), '100 bytes');
  assert.equal(formatBytes(-1), '');
  assert.equal(formatBytes('x'), '');
});

test('formatCpus and formatPids', () => {
  assert.equal(formatCpus(1), '1 CPU');
  assert.equal(formatCpus(1.0), '1 CPU');
  assert.equal(formatCpus(0.5), '0.5 CPU');
  assert.equal(formatCpus(2), '2 CPUs');
  assert.equal(formatCpus(0.25), '0.25 CPU');
  assert.equal(formatPids(256), '256 processes');
  assert.equal(formatPids(1), '1 process');
});

test('formatLimits joins the parts', () => {
  assert.equal(
    formatLimits({ memory_bytes: 536870912, cpus: 1.0, pids: 256, disk_bytes: 1073741824 }),
    '512 MiB RAM · 1 CPU · 256 processes · 1 GiB disk',
  );
  assert.equal(formatLimits({ memory_bytes: 268435456 }), '256 MiB RAM');
  assert.equal(formatLimits(null), '');
});

test('formatCountdown', () => {
  assert.equal(formatCountdown(0), '00:00');
  assert.equal(formatCountdown(-5), '00:00');
  assert.equal(formatCountdown(59), '00:59');
  assert.equal(formatCountdown(61), '01:01');
  assert.equal(formatCountdown(3599), '59:59');
  assert.equal(formatCountdown(3600), '1:00:00');
  assert.equal(formatCountdown(3723), '1:02:03');
});

test('parseRetryAfter accepts seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('30'), 30);
  assert.equal(parseRetryAfter(' 0 '), 0);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter(''), null);
  assert.equal(parseRetryAfter('soon'), null);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now), 10);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0);
});

test('backoffDelay doubles from 0.5 s to at most 8 s with jitter', () => {
  const mid = () => 0.5; // no jitter
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 20].map((n) => backoffDelay(n, mid)),
    [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000],
  );
  for (let n = 0; n < 10; n += 1) {
    for (const r of [0, 0.999]) {
      const d = backoffDelay(n, () => r);
      assert.ok(d >= 250 && d <= 8000, `attempt ${n} random ${r}: ${d}`);
    }
  }
  assert.equal(backoffDelay(0, () => 0), 375);
  assert.equal(backoffDelay(0, () => 0.999), 625);
});
