import { test } from 'node:test';
import assert from 'node:assert/strict';

import { endSession, listSessions } from '../src/api.js';
import { sessionSummary } from '../src/mysessions.js';

const at = (iso) => iso.slice(11, 16); // "HH:MM" of an ISO time, in place of the visitor's locale

test("a listed session is named by its image, with when it started and when it ends", () => {
  const data = { image: 'busybox', created_at: '2026-01-01T10:00:00+00:00', expires_at: '2026-01-01T14:00:00+00:00' };
  assert.deepEqual(sessionSummary(data, at), { name: 'busybox', detail: 'started 10:00 · ends 14:00' });
});

test("a listed lab session is named by the lab's title, its image beside its times", () => {
  const data = {
    image: 'busybox',
    lab: { title: 'Containers from the inside' },
    created_at: '2026-01-01T10:00:00+00:00',
    expires_at: '2026-01-01T14:00:00+00:00',
  };
  assert.deepEqual(sessionSummary(data, at), {
    name: 'Containers from the inside',
    detail: 'busybox · started 10:00 · ends 14:00',
  });
});

test("a listed template session is named by the template's title, its image beside its times", () => {
  const data = {
    image: 'docker',
    template: { name: 'swarm-3m2w', title: 'Docker swarm: 3 managers and 2 workers', state: 'done' },
    created_at: '2026-01-01T10:00:00+00:00',
    expires_at: '2026-01-01T14:00:00+00:00',
  };
  assert.deepEqual(sessionSummary(data, at), {
    name: 'Docker swarm: 3 managers and 2 workers',
    detail: 'docker · started 10:00 · ends 14:00',
  });
});

/** Runs `body` with fetch answering `status` (and JSON `reply`), recording the requests. */
async function withServer(status, reply, body) {
  const requests = [];
  const saved = { fetch: globalThis.fetch, document: globalThis.document };
  globalThis.document = { querySelector: () => null }; // no CSRF meta tag
  globalThis.fetch = async (url, init) => {
    requests.push({ url, method: init.method });
    const headers = new Headers(reply ? { 'Content-Type': 'application/json' } : {});
    return new Response(reply ? JSON.stringify(reply) : null, { status, headers });
  };
  try {
    await body(requests);
  } finally {
    Object.assign(globalThis, saved);
  }
}

test('ending a session that is gone already counts as ended', async () => {
  for (const status of [204, 404, 410]) {
    await withServer(status, null, async (requests) => {
      assert.equal((await endSession('abc')).ended, true);
      assert.deepEqual(requests, [{ url: '/api/sessions/abc/', method: 'DELETE' }]);
    });
  }
});

test("a failed end says why in the server's words", async () => {
  await withServer(503, { error: 'agent_unavailable', message: 'Try again shortly.' }, async () => {
    assert.deepEqual(await endSession('abc'), { ended: false, message: 'Try again shortly.' });
  });
});

test("the visitor's sessions are asked for with GET /api/sessions/", async () => {
  await withServer(200, { sessions: [] }, async (requests) => {
    const result = await listSessions();
    assert.deepEqual(result.data, { sessions: [] });
    assert.deepEqual(requests, [{ url: '/api/sessions/', method: 'GET' }]);
  });
});
