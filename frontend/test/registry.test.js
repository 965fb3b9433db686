import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loginCommand, registryValues } from '../src/registry.js';

const REGISTRY = {
  address: 'registry:5050',
  user: 'pg-0123456789ab',
  password: '0f1e2d3c4b5a69788796a5b4',
  prefix: 'registry:5050/pg-0123456789ab/',
};

test('the login line pipes the password to docker login for the session user', () => {
  assert.equal(
    loginCommand(REGISTRY),
    'echo 0f1e2d3c4b5a69788796a5b4 | docker login registry:5050 -u pg-0123456789ab --password-stdin',
  );
});

test('each copy button has a value: address, user, password and the login line', () => {
  assert.deepEqual(Object.keys(registryValues(REGISTRY)), ['address', 'user', 'password', 'login']);
});
