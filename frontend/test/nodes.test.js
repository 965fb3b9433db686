import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  MAX_POLL_BACKOFF_MS,
  POLL_MS,
  cpuPercent,
  downloadName,
  filesUrl,
  formatNodeStats,
  formatPercent,
  nextPollDelay,
  portBadges,
  portUrl,
  progressMessage,
  transferError,
  uploadedMessage,
} from '../src/nodemodel.js';

test('CPU use is the CPU seconds spent over the seconds between two readings, in percent of one CPU', () => {
  assert.equal(cpuPercent({ cpuSeconds: 10, atMs: 1000 }, { cpuSeconds: 10.5, atMs: 2000 }), 50);
  assert.equal(cpuPercent({ cpuSeconds: 1, atMs: 0 }, { cpuSeconds: 4, atMs: 2000 }), 150); // two busy CPUs
  assert.equal(cpuPercent({ cpuSeconds: 3, atMs: 0 }, { cpuSeconds: 3, atMs: 1000 }), 0);
});

test('CPU use is unknown without an earlier reading, without time between them, or when the counter went back', () => {
  assert.equal(cpuPercent(null, { cpuSeconds: 1, atMs: 1000 }), null);
  assert.equal(cpuPercent({ cpuSeconds: 1, atMs: 1000 }, null), null); // the agent did not answer
  assert.equal(cpuPercent({ cpuSeconds: 1, atMs: 1000 }, { cpuSeconds: 2, atMs: 1000 }), null);
  assert.equal(cpuPercent({ cpuSeconds: 9, atMs: 0 }, { cpuSeconds: 1, atMs: 1000 }), null);
  assert.equal(cpuPercent({ cpuSeconds: undefined, atMs: 0 }, { cpuSeconds: 1, atMs: 1000 }), null);
});

test("a node's use reads as memory used of its limit and its CPU percent", () => {
  const stats = { memory_bytes: 12 * 1024 * 1024, memory_limit_bytes: 256 * 1024 * 1024, cpu_seconds: 3 };
  assert.equal(formatNodeStats(stats, 3.26), '12 MiB / 256 MiB · 3.3% CPU');
  assert.equal(formatNodeStats(stats, null), '12 MiB / 256 MiB');
  assert.equal(formatNodeStats(stats, 57.9), '12 MiB / 256 MiB · 58% CPU');
  assert.equal(formatNodeStats(null, 5), '');
  assert.equal(formatPercent(0.01), '0%');
});

test('port badges come in port order with their links, options and a title that says what a click does', () => {
  const open = (port) => `/api/sessions/s/instances/node1/ports/${port}/open/`;
  const badges = portBadges([
    { port: 8080, listening: true, shared: false, https: false, url: 'http://8080-node1-abc.localhost:8001/', path_url: 'http://h:8001/ports/abc/node1/8080/', open_url: open(8080) },
    { port: 443, listening: false, shared: true, https: true, url: 'u', path_url: 'p', open_url: open(443) },
    { port: 'x' },
    null,
  ]);
  assert.deepEqual(
    badges.map((b) => [b.port, b.listening, b.shared, b.https]),
    [
      [443, false, true, true],
      [8080, true, false, false],
    ],
  );
  assert.equal(badges[1].openUrl, open(8080));
  assert.equal(badges[1].pathOpenUrl, `${open(8080)}?form=path`);
  assert.equal(badges[1].url, 'http://8080-node1-abc.localhost:8001/');
  assert.equal(badges[1].title, 'Open port 8080 in a new tab');
  assert.match(badges[0].title, /nothing listens on it now; shared: anyone with the link may open it; HTTPS to the node/);
  assert.deepEqual(portBadges(undefined), []);
});

test('the list is asked for every second, and after failures less and less often, up to 30 s', () => {
  assert.equal(nextPollDelay(0), POLL_MS);
  const half = () => 0.5; // no jitter
  assert.equal(nextPollDelay(1, half), 2000);
  assert.equal(nextPollDelay(2, half), 4000);
  assert.equal(nextPollDelay(20, half), MAX_POLL_BACKOFF_MS);
});

test("an upload's or a download's failure is told in the API's words, or by its status when the body was none", () => {
  const tooLarge = { error: 'too_large', message: 'This file is 60 MB: the limit is 50 MB.' };
  assert.equal(transferError(413, tooLarge), 'This file is 60 MB: the limit is 50 MB.');
  assert.equal(transferError(413, null), 'The file is too large to upload.'); // a proxy's HTML page
  assert.equal(transferError(507, { error: 'disk_full' }), "The node's disk is full: delete some files and try again.");
  assert.equal(transferError(0, null), 'The connection was lost. Check your connection and try again.');
  assert.equal(transferError(502, null), 'The server had a problem (HTTP 502). Please try again.');
  assert.equal(transferError(418, null), 'The transfer failed (HTTP 418).');
});

test('an upload says where the file went, and its progress in percent', () => {
  assert.equal(uploadedMessage('x', { path: '/root/x', size: 10 * 1024 * 1024 }), 'Uploaded x to /root/x (10 MiB).');
  assert.equal(uploadedMessage('x', null), 'Uploaded x to x.');
  assert.equal(progressMessage('x', 5, 10), 'Uploading x… 50%');
  assert.equal(progressMessage('x', 0, 0), 'Uploading x…');
});

test("the files' and ports' paths name the session, the node and the terminal", () => {
  assert.equal(
    filesUrl('s1', 'node2', 'my file.txt', 1),
    '/api/sessions/s1/instances/node2/files/?path=my+file.txt&terminal=1',
  );
  assert.equal(filesUrl('s1', 'node2', '/root/a'), '/api/sessions/s1/instances/node2/files/?path=%2Froot%2Fa');
  assert.equal(portUrl('s1', 'node1', '70000'), '/api/sessions/s1/instances/node1/ports/70000/');
  assert.equal(downloadName('/root/out/data.bin'), 'data.bin');
  assert.equal(downloadName('/'), 'download');
});
