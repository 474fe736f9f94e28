// The snippet's conditions against the condition table shared with the server and the SDK.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadSnippet } from './fake-browser.mjs';

const CASES = JSON.parse(readFileSync(new URL('../cases/conditions.json', import.meta.url), 'utf8'));
const { matches } = loadSnippet().splitwerk.core;
// The operators the snippet evaluates (sdk/js/README.md); it leaves the rest to the server.
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

// Integers beyond 2^53 arrive rounded by JSON.parse: the snippet leaves them to the server.
const isRounded = (c) => /\d{16,}/.test(JSON.stringify(c.condition));

test('conditions within the subset give the same answer as the server', () => {
  const wrong = inSubset
    .filter((c) => matches(c.condition, c.attributes) !== (isRounded(c) ? null : c.expected))
    .map((c) => c.name);
  assert.deepEqual(wrong, []);
});

test('the table has cases of inherited properties, code points beyond the BMP and big integers', () => {
  assert.ok(inSubset.filter(isRounded).length >= 2);
  assert.ok(inSubset.some((c) => Object.hasOwn(c.condition, 'toString')));
  assert.ok(inSubset.some((c) => /[\u{10000}-\u{10ffff}]/u.test(JSON.stringify(c.attributes))));
});

test('conditions beyond the subset are left to the server, never answered here', () => {
  const answered = beyond.filter((c) => matches(c.condition, c.attributes) !== null).map((c) => c.name);
  assert.deepEqual(answered, []);
});

test('conditions the server refuses are refused here, or left to the server', () => {
  const invalid = CASES.filter((c) => c.invalid);
  assert.ok(invalid.length > 20, `${invalid.length} refused cases`);
  const answered = invalid.filter((c) => {
    try {
      return matches(c.condition, c.attributes) !== null;
    } catch (e) {
      return false; // refused
    }
  });
  assert.deepEqual(answered.map((c) => c.name), []);
  // within the subset, refused it is: an error, as the server's ConditionError
  const inSubsetInvalid = invalid.filter((c) => [...operators(c.condition)].every((op) => SUPPORTED.has(op)));
  assert.ok(inSubsetInvalid.length > 10);
  for (const c of inSubsetInvalid) assert.throws(() => matches(c.condition, c.attributes), c.name);
});
