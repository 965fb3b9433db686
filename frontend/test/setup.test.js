import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startBody } from '../src/api.js';
import { setupFraction, setupView } from '../src/setupmodel.js';

const SWARM = { name: 'swarm-3m2w', title: 'Docker swarm', total: 5, log: '' };

test('a start sends the chosen template alone, else the chosen image, else nothing', () => {
  assert.deepEqual(startBody({ template: 'swarm-3m2w', image: 'busybox' }), { template: 'swarm-3m2w' });
  assert.deepEqual(startBody({ image: 'docker' }), { image: 'docker' });
  assert.deepEqual(startBody({ image: '' }), {});
  assert.deepEqual(startBody(), {});
});

test('a session without a template part has no setup line', () => {
  assert.equal(setupView(undefined), null);
  assert.equal(setupView(null), null);
  assert.equal(setupView('swarm'), null);
});

test('a setup waiting for its nodes says how many it waits for, with no step done', () => {
  const view = setupView({ ...SWARM, state: 'waiting', step: 0, message: 'Waiting for the nodes to run.' });
  assert.equal(view.text, 'Setting up Docker swarm: waiting for its 5 nodes to start…');
  assert.equal(view.finished, false);
  assert.equal(setupFraction(view), 0);
});

test('a running setup names the node being set up as step k of n, with the API message beside it', () => {
  const view = setupView({ ...SWARM, state: 'running', step: 2, message: 'Setting up node3 (manager).' });
  assert.equal(view.text, 'Setting up Docker swarm: step 3 of 5.');
  assert.equal(view.detail, 'Setting up node3 (manager).');
  assert.equal(view.step, 3);
  assert.equal(setupFraction(view), 2 / 5); // two nodes' setups have run
});

test('a step past the total is read as the total (never "step 6 of 5")', () => {
  const view = setupView({ ...SWARM, state: 'running', step: 9, message: '' });
  assert.equal(view.text, 'Setting up Docker swarm: step 5 of 5.');
  assert.equal(view.detail, '');
});

test('a done setup says the nodes are ready and is finished, its bar full', () => {
  const view = setupView({ ...SWARM, state: 'done', step: 5, message: 'The setup is done.', log: '== node1\n' });
  assert.equal(view.text, 'Docker swarm is set up: 5 nodes ready.');
  assert.equal(view.finished, true);
  assert.equal(view.hasLog, true);
  assert.equal(setupFraction(view), 1);
});

test("a failed setup says where it stopped, the API's reason, and that the nodes keep running", () => {
  const message = "node2's setup failed (exit status 1); its output is in the log.";
  const view = setupView({ ...SWARM, state: 'failed', step: 2, message, log: '== node2 (manager)\nno\n' });
  assert.equal(
    view.text,
    `The setup of Docker swarm stopped at step 2 of 5. ${message} The nodes keep running: look at them, or finish the setup by hand.`,
  );
  assert.equal(view.finished, true);
  assert.equal(view.hasLog, true);
});

test('a setup that failed before any node ran says no step, and a node count of one is singular', () => {
  const view = setupView({ name: 'solo', title: 'Solo', total: 1, state: 'failed', step: 0, message: '', log: '' });
  assert.equal(view.text, 'The setup of Solo stopped. It failed. The nodes keep running: look at them, or finish the setup by hand.');
  assert.equal(view.hasLog, false);
  assert.equal(setupView({ name: 'solo', title: 'Solo', total: 1, state: 'done', step: 1 }).text, 'Solo is set up: 1 node ready.');
});

test('an unknown state is read as waiting, and a template without a title is named by its name', () => {
  const view = setupView({ name: 'pair', total: 2, state: 'new', step: 0 });
  assert.equal(view.state, 'waiting');
  assert.equal(view.text, 'Setting up pair: waiting for its 2 nodes to start…');
});
