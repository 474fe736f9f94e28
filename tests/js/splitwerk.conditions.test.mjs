// The snippet's conditions against the condition table shared with the server and the SDK.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadSnippet } from './fake-browser.mjs';

const CASES = JSON.parse(readFileSync(new URL('../cases/conditions.json', import.meta.url), 'utf8'));
const { matches } = loadSnippet().splitwerk.core;
// The operators the snippet evaluates (sdk/js/README.md); the server knows more.
const SUPPORTED = new Set(['$and', '$or', '$nor', '$not', '$eq', '$ne', '$in', '$nin', '$gt',
  '$gte', '$lt', '$lte', '$exists']);

function operators(condition, found = new Set()) {
  if (Array.isArray(condition)) condition.forEach((c) => operators(c, found));
  else if (condition && typeof condition === 'object') {
    for (const [key, value] of Object.entries(condition)) {
      if (key.startsWith('$')) found.add(key);
      operators(value, found);
    }
  }
  return found;
}

const valid = CASES.filter((c) => !c.invalid);
const inSubset = valid.filter((c) => [...operators(c.condition)].every((op) => SUPPORTED.has(op)));
const beyond = valid.filter((c) => !inSubset.includes(c));

test('the shared table has cases inside and beyond the snippet subset', () => {
  assert.ok(inSubset.length > 150, `${inSubset.length} cases in the subset`);
  assert.ok(beyond.length > 10, `${beyond.length} cases beyond it`);
});

test('conditions within the subset give the same answer as the server', () => {
  const wrong = inSubset
    .filter((c) => matches(c.condition, c.attributes) !== c.expected)
    .map((c) => c.name);
  assert.deepEqual(wrong, []);
});

test('conditions beyond the subset target nobody, never a guess', () => {
  const matched = beyond.filter((c) => matches(c.condition, c.attributes)).map((c) => c.name);
  assert.deepEqual(matched, []);
});
