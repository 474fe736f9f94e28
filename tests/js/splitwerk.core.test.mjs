// The snippet's pure core against the shared spec vectors, plus the condition operators.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadSnippet, plain } from './fake-browser.mjs';

// the repository's copy of the spec vectors: tests/js -> repo/spec
const VECTORS = JSON.parse(
  readFileSync(new URL('../../spec/assignment-vectors.json', import.meta.url), 'utf8')
);
const { bucket, evaluate, matches } = loadSnippet().splitwerk.core;
const EXPERIMENTS = Object.fromEntries(VECTORS.experiments.map((e) => [e.key, e]));
const isAscii = (s) => /^[\x00-\x7f]*$/.test(s);

test('vectors file is the spec version the snippet implements', () => {
  assert.equal(VECTORS.spec, 'assignment v1');
  assert.ok(VECTORS.bucket.length > 0 && VECTORS.assign.length > 0);
});

test('bucket matches every bucket vector', () => {
  const wrong = VECTORS.bucket.filter((v) => bucket(v.visitor, v.salt) !== v.bucket);
  assert.deepEqual(wrong, []);
});

test('bucket hashes utf8 bytes, not utf16 code units', () => {
  const unicode = VECTORS.bucket.filter((v) => !isAscii(v.visitor + v.salt));
  assert.ok(unicode.length >= 5, 'the vectors should contain non-ASCII visitors');
  for (const v of unicode) assert.equal(bucket(v.visitor, v.salt), v.bucket, `${v.visitor} + ${v.salt}`);
});

test('evaluate matches every assign vector', () => {
  const wrong = VECTORS.assign.filter((v) => {
    const a = evaluate(EXPERIMENTS[v.experiment], v.visitor, {});
    return a.variant !== v.variant || a.enrolled !== v.enrolled;
  });
  assert.deepEqual(wrong, []);
});

test('evaluate gives the winner, not enrolled, for a stopped experiment', () => {
  assert.deepEqual(plain(evaluate(EXPERIMENTS.won, 'anyone', {})), {
    variant: 'b',
    enrolled: false,
    reason: 'winner',
  });
});

test('evaluate returns the payload of the chosen variant', () => {
  const experiment = {
    key: 'button',
    status: 'running',
    coverage: 10000,
    layer: null,
    variants: [
      { key: 'blue', allocation: 0, payload: { color: 'blue' } },
      { key: 'green', allocation: 10000, payload: { color: 'green' } },
    ],
  };
  assert.deepEqual(plain(evaluate(experiment, 'v-1', {})), {
    variant: 'green',
    payload: { color: 'green' },
    enrolled: true,
    reason: 'running',
  });
});

test('evaluate names its reasons as the server does', () => {
  const base = { ...EXPERIMENTS.ab, conditions: null };
  const reason = (changes) => evaluate({ ...base, ...changes }, 'v-1', {}).reason;
  assert.equal(reason({ status: 'paused' }), 'paused');
  assert.equal(reason({ status: 'stopped', winner: null }), 'stopped');
  assert.equal(reason({ status: 'draft' }), 'not_running');
  assert.equal(reason({ coverage: 0 }), 'outside_coverage');
});

test('evaluate leaves to the server what only the server evaluates, or what it refuses', () => {
  const experiment = (conditions) => ({ ...EXPERIMENTS.ab, conditions });
  assert.equal(evaluate(experiment({ page: { $regex: '^/checkout' } }), 'v-1', {}), null);
  assert.equal(evaluate(experiment({ id: 9007199254740993 }), 'v-1', {}), null);
  assert.throws(() => evaluate(experiment({ $or: 1 }), 'v-1', {}));
});

test('evaluate gives the control, not enrolled, when conditions do not match', () => {
  const experiment = { ...EXPERIMENTS.ab, conditions: { source: 'facebook' } };
  const visitor = VECTORS.assign.find((v) => v.experiment === 'ab' && v.variant === 'b').visitor;
  assert.equal(evaluate(experiment, visitor, { source: 'facebook' }).variant, 'b');
  assert.deepEqual(plain(evaluate(experiment, visitor, { source: 'search' })), {
    variant: 'control',
    enrolled: false,
    reason: 'not_targeted',
  });
});

const CONDITIONS = [
  // [conditions, attributes, expected]
  [null, {}, true],
  [{}, {}, true],
  [{ source: 'facebook' }, { source: 'facebook' }, true],
  [{ source: 'facebook' }, { source: 'search' }, false],
  [{ source: 'facebook' }, {}, false],
  [{ tags: 'vip' }, { tags: ['new', 'vip'] }, false], // as on the server: no array search
  [{ cart: { $eq: 3 } }, { cart: 3 }, true],
  [{ cart: { $ne: 3 } }, { cart: 3 }, false],
  [{ cart: { $ne: 3 } }, {}, true],
  [{ country: { $in: ['DE', 'AT'] } }, { country: 'AT' }, true],
  [{ country: { $in: ['DE', 'AT'] } }, { country: 'CH' }, false],
  [{ country: { $nin: ['DE', 'AT'] } }, { country: 'CH' }, true],
  [{ country: { $nin: ['DE', 'AT'] } }, { country: 'DE' }, false],
  [{ cart: { $gt: 50 } }, { cart: 50 }, false],
  [{ cart: { $gte: 50 } }, { cart: 50 }, true],
  [{ cart: { $lt: 50 } }, { cart: 49.5 }, true],
  [{ cart: { $lte: 50 } }, { cart: 51 }, false],
  [{ cart: { $gt: 50, $lt: 100 } }, { cart: 75 }, true],
  [{ cart: { $gt: 50 } }, { cart: '75' }, false], // no string/number coercion
  [{ version: { $gte: 'b' } }, { version: 'c' }, true],
  [{ cart: { $gt: 50 } }, {}, false],
  [{ coupon: { $exists: true } }, { coupon: 'X' }, true],
  [{ coupon: { $exists: true } }, {}, false],
  [{ coupon: { $exists: false } }, {}, true],
  [{ cart: { $not: { $gt: 50 } } }, { cart: 10 }, true],
  [{ cart: { $not: { $gt: 50 } } }, { cart: 60 }, false],
  [{ $and: [{ source: 'facebook' }, { country: 'DE' }] }, { source: 'facebook', country: 'DE' }, true],
  [{ $and: [{ source: 'facebook' }, { country: 'DE' }] }, { source: 'facebook', country: 'AT' }, false],
  [{ $or: [{ source: 'facebook' }, { source: 'instagram' }] }, { source: 'instagram' }, true],
  [{ $or: [{ source: 'facebook' }, { source: 'instagram' }] }, { source: 'direct' }, false],
  [{ $nor: [{ source: 'facebook' }, { source: 'instagram' }] }, { source: 'direct' }, true],
  [{ $nor: [{ source: 'facebook' }, { source: 'instagram' }] }, { source: 'facebook' }, false],
  [{ $not: { source: 'facebook' } }, { source: 'direct' }, true],
  [{ 'device.type': 'mobile' }, { device: { type: 'mobile' } }, true],
  // $regex is left to the server (null): a backtracking browser RegExp could freeze the page
  [{ page: { $regex: '^/checkout' } }, { page: '/checkout/pay' }, null],
  [{ $not: { page: { $regex: '(a+)+$' } } }, { page: 'a'.repeat(40) + '!' }, null],
  [{ tags: 'sale' }, { tags: ['sale', 'new'] }, false], // equality does not search arrays…
  [{ tags: { $in: ['sale'] } }, { tags: ['sale', 'new'] }, true], // …$in does
  [{ coupon: null }, {}, true], // a missing attribute is null, as on the server
  // attributes are own properties: what every object inherits is missing (null)
  [{ toString: { $exists: true } }, {}, false],
  [{ constructor: null }, {}, true],
  [{ 'a.constructor': { $exists: true } }, { a: {} }, false],
  [{ m: { toString: 1 } }, { m: {} }, false],
  // strings compare by code point, as in Python: U+1F600 (a surrogate pair) > U+FFFD
  [{ s: { $gt: '\ufffd' } }, { s: '\u{1f600}' }, true],
  [{ s: { $lt: '\ufffd' } }, { s: '\u{1f600}' }, false],
  [{ s: { $lt: 'ab' } }, { s: 'a' }, true],
  // integers beyond 2^53 were rounded by JSON.parse: the server decides
  [{ id: 9007199254740993 }, { id: 9007199254740992 }, null],
  [{ id: { $in: [1, 2 ** 60] } }, { id: 1 }, null],
  [{ n: 9007199254740991 }, { n: 9007199254740991 }, true],
];

// Conditions the server refuses (server/core/conditions.py): refused here too, never a guess.
const REFUSED = [
  { $or: [] },
  { $or: 1 },
  { $and: [] },
  { $nor: {} },
  { page: { $where: 'true' } },
  { $where: 'true' },
  { meta: {} },
  { v: { $eq: 1, x: 2 } },
  { v: { $in: 'DE' } },
  { v: { $gt: null } },
  { v: { $exists: 1 } },
  { 'a..b': 1 },
  ['a'],
];

test('matches refuses, with an error, what the server refuses', () => {
  for (const condition of REFUSED) {
    assert.throws(() => matches(condition, {}), /condition/, JSON.stringify(condition));
  }
});

test('matches implements the MongoDB-style operator subset', () => {
  for (const [conditions, attributes, expected] of CONDITIONS) {
    assert.equal(matches(conditions, attributes), expected, JSON.stringify([conditions, attributes]));
  }
});
