import assert from 'node:assert/strict';
import { test } from 'node:test';

import { showRecordingsLink } from '../src/recordingslink.js';

/** Just enough of a document for the link: elements by id, `before` and `append`. */
function fakeDocument() {
  const placed = [];
  const byId = new Map();
  const make = (tag) => {
    const el = {
      tag,
      dataset: {},
      attributes: {},
      setAttribute(name, value) {
        this.attributes[name] = value;
      },
      append() {},
      before(node) {
        placed.push(['before end-session', node]);
        if (node.id) byId.set(node.id, node);
      },
    };
    return el;
  };
  const endSession = make('button');
  byId.set('end-session', endSession);
  return {
    placed,
    body: { append: (node) => placed.push(['body', node]) },
    createElement: make,
    getElementById: (id) => byId.get(id) || null,
  };
}

test('a learner gets one link to their recordings, before End session, opening in a new tab', () => {
  const doc = fakeDocument();
  const workshop = { id: 1, recordings: '/s/0f1e/recordings/' };
  const link = showRecordingsLink(doc, workshop);
  assert.equal(link.attributes.href, '/s/0f1e/recordings/');
  assert.equal(link.attributes.target, '_blank');
  assert.equal(showRecordingsLink(doc, workshop), link);
  assert.equal(doc.placed.length, 1);
  assert.equal(doc.placed[0][0], 'before end-session');
});

test('a session of no workshop gets no link', () => {
  const doc = fakeDocument();
  assert.equal(showRecordingsLink(doc, undefined), null);
  assert.equal(doc.placed.length, 0);
});
