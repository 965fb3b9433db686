import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DISMISSED_KEY, shouldShow } from '../src/broadcast.js';
import { setLanguage } from '../src/i18n.js';
import { createEventHandler } from '../src/serverevents.js';
import {
  actionPath,
  broadcast,
  extendLearner,
  mountActions,
  outcome,
  pickerEntries,
  progressCsvPath,
  pushStep,
  resetLearner,
} from '../src/workshopactions.js';

/** Just enough of a document for the controls: elements with children, text, attributes and clicks. */
function fakeDoc() {
  const make = (tag) => {
    const node = {
      tag,
      children: [],
      dataset: {},
      listeners: {},
      textContent: '',
      value: '',
      append(...items) {
        for (const item of items) {
          const child = typeof item === 'string' ? { tag: '#text', textContent: item, children: [] } : item;
          child.parent = this;
          this.children.push(child);
        }
      },
      replaceChildren(...items) {
        this.children = [];
        this.append(...items);
      },
      setAttribute(name, value) {
        this[name] = value;
      },
      addEventListener(type, listener) {
        this.listeners[type] = listener;
      },
      click() {
        return this.listeners.click();
      },
    };
    return node;
  };
  return { createElement: make };
}

function all(node, tag) {
  return [...(node.tag === tag ? [node] : []), ...node.children.flatMap((child) => all(child, tag))];
}

/** A fake apiRequest that records its calls and answers `reply`. */
function recorder(reply = { ok: true, data: { ok: true, message: 'Done.' } }) {
  const calls = [];
  const request = async (path, init) => {
    calls.push({ path, ...init });
    return reply;
  };
  return { calls, request };
}

test("an action's address is the workshop's, or its learner's, with the action last", () => {
  assert.equal(actionPath(7, 'extend'), '/workshops/7/extend/');
  assert.equal(actionPath(7, 'reset', 12), '/workshops/7/learners/12/reset/');
  assert.equal(progressCsvPath(7), '/workshops/7/progress.csv');
});

test('an action POSTs its JSON body and resolves to the server sentence', async () => {
  const { calls, request } = recorder();
  assert.deepEqual(await extendLearner(3, 9, 15, request), { ok: true, message: 'Done.' });
  assert.deepEqual(calls, [{ path: '/workshops/3/learners/9/extend/', method: 'POST', body: { minutes: 15 } }]);
  await broadcast(3, '쉬는 시간', request);
  await pushStep(3, 4, request);
  assert.deepEqual(calls.slice(1).map((c) => [c.path, c.body]), [
    ['/workshops/3/broadcast/', { message: '쉬는 시간' }],
    ['/workshops/3/step/', { step: 4 }],
  ]);
});

test('a refused action resolves to its sentence, and one without a sentence to a generic one', () => {
  setLanguage('en');
  const refused = { ok: false, data: { error: 'bad_step', message: 'Give a step number from 1 to 3.' } };
  assert.deepEqual(outcome(refused), { ok: false, message: 'Give a step number from 1 to 3.' });
  assert.equal(outcome({ ok: false, data: null, message: '' }).message, 'The action did not go through; reload the dashboard and try again.');
});

test('a reset asks first, naming the learner, and a no sends nothing', async () => {
  setLanguage('en');
  const { calls, request } = recorder();
  const asked = [];
  const no = await resetLearner(3, 9, 'Min', { confirm: (s) => asked.push(s) && false, request });
  assert.equal(no.cancelled, true);
  assert.equal(calls.length, 0);
  assert.match(asked[0], /Reset Min's sandbox\?/);
  const yes = await resetLearner(3, 9, 'Min', { confirm: () => true, request });
  assert.equal(yes.ok, true);
  assert.deepEqual(calls[0].body, { confirm: true });
});

test('a broadcast is shown unless it is the one dismissed, and one without words never', () => {
  const message = { message: 'Break', from: 'Alice', sent_at: '2026-12-03T13:00:00+00:00' };
  assert.equal(shouldShow(message, null), true);
  assert.equal(shouldShow(message, '2026-12-03T13:00:00+00:00'), false);
  assert.equal(shouldShow({ ...message, sent_at: '2026-12-03T13:05:00+00:00' }, message.sent_at), true);
  assert.equal(shouldShow({ message: '' }, null), false);
  assert.equal(shouldShow(null, null), false);
  assert.equal(DISMISSED_KEY, 'playground.broadcast-dismissed');
});

test("a workshop's events reach the banner, the lab panel and the reset handler", () => {
  const seen = [];
  const onEvent = createEventHandler({
    state: {},
    status: {},
    topbar: {},
    endScreen: {},
    toaster: {},
    broadcast: { show: (event) => seen.push(['broadcast', event.message]) },
    onLabStep: (step) => seen.push(['lab_step', step]),
    onReset: (event) => seen.push(['reset', event.nodes]),
  });
  onEvent({ type: 'broadcast', message: 'Break', from: 'Alice', sent_at: 'x' });
  onEvent({ type: 'lab_step', step: 3 });
  onEvent({ type: 'reset', nodes: ['node1'] });
  assert.deepEqual(seen, [['broadcast', 'Break'], ['lab_step', 3], ['reset', ['node1']]]);
});

test('the panel lists the learners by name, keeps the choice across updates, and shows steps once known', () => {
  setLanguage('en');
  const doc = fakeDoc();
  const container = doc.createElement('div');
  const panel = mountActions(doc, container, 3, { request: recorder().request });
  const [, picker] = all(container, 'select');
  const [stepPicker] = all(container, 'select');
  assert.equal(stepPicker.id, 'push-step');
  panel.update([{ learner: 9, name: 'Min' }, { learner: 4, name: 'Ara' }], null);
  assert.deepEqual(all(picker, 'option').map((o) => o.textContent), ['Ara', 'Min']);
  assert.equal(picker.value, '4');
  assert.equal(stepPicker.parent.parent.hidden, true);
  picker.value = '9';
  panel.update([{ learner: 9, name: 'Min' }, { learner: 4, name: 'Ara' }, { learner: 5, name: 'Jun' }], 4);
  assert.equal(picker.value, '9'); // the instructor's choice stays
  assert.equal(all(stepPicker, 'option').length, 4);
  assert.equal(stepPicker.parent.parent.hidden, false);
  assert.deepEqual(pickerEntries([{ learner: 2, name: '지민' }]), [['2', '지민']]);
});

test("the panel's learner buttons act on the chosen learner, reset and end after a yes, and say each outcome", async () => {
  setLanguage('en');
  const doc = fakeDoc();
  const container = doc.createElement('div');
  const { calls, request } = recorder();
  let answer = false;
  const panel = mountActions(doc, container, 3, { confirm: () => answer, request });
  const said = all(container, 'p')[0];
  const [extend, reset, end] = all(container, 'button').slice(3);
  assert.deepEqual([extend.textContent, reset.textContent, end.textContent], ['+15 min', 'Reset', 'End']);
  await extend.click();
  assert.equal(said.textContent, 'Choose a learner first.');
  panel.update([{ learner: 9, name: 'Min' }], null);
  await extend.click();
  assert.equal(said.textContent, 'Done.');
  await reset.click(); // no: nothing sent
  await end.click();
  answer = true;
  await reset.click();
  await end.click();
  assert.deepEqual(calls.map((c) => [c.path, c.body]), [
    ['/workshops/3/learners/9/extend/', { minutes: 15 }],
    ['/workshops/3/learners/9/reset/', { confirm: true }],
    ['/workshops/3/learners/9/end/', {}],
  ]);
  assert.equal(extend.disabled, false);
});

test("the panel's class controls broadcast the typed message, extend everyone, move to a step and link the CSV", async () => {
  setLanguage('en');
  const doc = fakeDoc();
  const container = doc.createElement('div');
  const { calls, request } = recorder();
  const panel = mountActions(doc, container, 3, { request });
  panel.update([], 4);
  const [send, everyone, move] = all(container, 'button');
  const [message] = all(container, 'input');
  const [step] = all(container, 'select');
  message.value = 'Break';
  await send.click();
  assert.equal(message.value, ''); // sent: the field is cleared
  await everyone.click();
  step.value = '3';
  await move.click();
  assert.deepEqual(calls.map((c) => [c.path, c.body]), [
    ['/workshops/3/broadcast/', { message: 'Break' }],
    ['/workshops/3/extend/', { minutes: 15 }],
    ['/workshops/3/step/', { step: 3 }],
  ]);
  assert.equal(all(container, 'a')[0].href, '/workshops/3/progress.csv');
});
