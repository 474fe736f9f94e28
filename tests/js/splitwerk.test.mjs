// The snippet on a fake page: assignment, fallbacks, consent, outages, tracking, the embed, local mode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSnippet, plain, respond, settle, SNIPPET } from './fake-browser.mjs';
import vm from 'node:vm';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const GREEN = { variant: 'green', payload: { color: '#0a0' }, enrolled: true, reason: 'running' };
const UNKNOWN = { variant: null, payload: null, enrolled: false, reason: 'unknown_experiment' };
const never = () => new Promise(() => {});
const server = (assignments) => () => respond(200, { visitor: 'x', recorded: true, assignments });
const cookieOf = (page) => page.document.cookie.match(/splitwerk_vid=([^;]*)/)?.[1];

// ---- assignment ---------------------------------------------------------------------------

test('assign sends one text/plain POST for all experiments and returns their assignments', async () => {
  const page = loadSnippet({ fetch: server({ button: GREEN, zzz: UNKNOWN }) });
  const result = page.splitwerk.assign(['button', 'zzz']);
  await page.clock.advance(0);
  assert.equal(page.record.fetches.length, 1);
  const { url, init, body } = page.record.fetches[0];
  assert.equal(url, 'https://ab.example.com/v1/assign');
  assert.equal(init.method, 'POST');
  assert.equal(typeof init.body, 'string'); // a string body is sent as text/plain: no preflight
  assert.equal(init.headers, undefined);
  assert.deepEqual(plain(body.experiments), ['button', 'zzz']);
  assert.equal(body.consent, true);
  assert.match(body.visitor, UUID);
  assert.deepEqual(plain(await result), {
    button: GREEN,
    zzz: { variant: 'control', payload: null, enrolled: false, reason: 'unknown_experiment' },
  });
});

test('variant calls in the same tick share one request and resolve to variant keys', async () => {
  const page = loadSnippet({ fetch: server({ a: GREEN, b: { ...GREEN, variant: 'big' } }) });
  const a = page.splitwerk.variant('a');
  const b = page.splitwerk.variant('b');
  const again = page.splitwerk.variant('a');
  await page.clock.advance(0);
  assert.deepEqual([await a, await b, await again], ['green', 'big', 'green']);
  assert.equal(page.record.fetches.length, 1);
  assert.deepEqual(plain(page.record.fetches[0].body.experiments), ['a', 'b']);
});

test('an experiment is requested once per page', async () => {
  const page = loadSnippet({ fetch: server({ a: GREEN }) });
  await page.splitwerk.variant('a');
  await page.splitwerk.variant('a');
  await page.splitwerk.assign(['a']);
  assert.equal(page.record.fetches.length, 1);
});

test('assign without experiments asks the server for all of them', async () => {
  const page = loadSnippet({ fetch: server({ a: GREEN, b: UNKNOWN }) });
  const result = await page.splitwerk.assign();
  assert.equal('experiments' in page.record.fetches[0].body, false);
  assert.deepEqual(Object.keys(result), ['a', 'b']);
  assert.equal(result.b.variant, 'control');
});

test('data-experiments are assigned at load and splitwerk.ready resolves with them', async () => {
  const page = loadSnippet({ dataset: { experiments: 'a, b' }, fetch: server({ a: GREEN }) });
  const ready = await page.splitwerk.ready;
  assert.deepEqual(Object.keys(ready), ['a', 'b']);
  assert.equal(ready.a.variant, 'green');
  assert.equal(page.record.fetches.length, 1);
});

// The CUPED covariate (issue 20): sent as the top-level `covariate` of /v1/assign.
const covariateSent = async (options) => {
  const page = loadSnippet({ ...options, fetch: server({ a: GREEN }) });
  await page.splitwerk.variant('a');
  const { body } = page.record.fetches[0];
  return 'covariate' in body ? body.covariate : 'none';
};

test('a configured covariate is sent with /v1/assign, to the hundredth the server keeps', async () => {
  assert.equal(await covariateSent({ config: { covariate: 129.5 } }), 129.5);
  assert.equal(await covariateSent({ config: { covariate: -3 } }), -3);
  assert.equal(await covariateSent({ config: { covariate: 0 } }), 0);
  assert.equal(await covariateSent({ dataset: { covariate: '42.126' } }), 42.13);
  assert.equal(await covariateSent({ config: { covariate: 1e6 } }), 1e6);
  // splitwerkConfig wins over the data attribute, as for every option
  assert.equal(await covariateSent({ dataset: { covariate: '1' }, config: { covariate: 2 } }), 2);
});

test('without a finite covariate within the bounds, none is sent', async () => {
  assert.equal(await covariateSent({}), 'none');
  for (const covariate of ['', ' ', 'abc', '12abc', null, true, false, NaN, Infinity, -Infinity, 1e6 + 1, -2e6]) {
    assert.equal(await covariateSent({ config: { covariate } }), 'none', String(covariate));
  }
  assert.equal(await covariateSent({ dataset: { covariate: '' } }), 'none');
});

test('splitwerk.ready resolves at once when no experiments are configured', async () => {
  const page = loadSnippet();
  assert.deepEqual(plain(await page.splitwerk.ready), {});
  assert.equal(page.record.fetches.length, 0);
});

test('the server is found from the script src, path prefix included', async () => {
  const page = loadSnippet({ src: 'https://shop.example/ab/sdk.js?v=3', fetch: server({}) });
  await page.splitwerk.variant('a');
  assert.equal(page.record.fetches[0].url, 'https://shop.example/ab/v1/assign');
});

test('splitwerkConfig.server overrides the script src', async () => {
  const page = loadSnippet({ config: { server: 'http://127.0.0.1:5000' }, fetch: server({}) });
  await page.splitwerk.variant('a');
  assert.equal(page.record.fetches[0].url, 'http://127.0.0.1:5000/v1/assign');
});

test('onVariant calls back with the variant and payload once the DOM is parsed', async () => {
  const page = loadSnippet({ readyState: 'loading', fetch: server({ a: GREEN }) });
  const calls = [];
  page.splitwerk.onVariant('a', (variant, payload) => calls.push([variant, plain(payload)]));
  await page.clock.advance(0);
  assert.deepEqual(calls, []); // assigned, but the elements may not exist yet
  page.fire('document', 'DOMContentLoaded');
  await settle();
  assert.deepEqual(calls, [['green', { color: '#0a0' }]]);
});

// ---- fallbacks ----------------------------------------------------------------------------

test('a server that never answers gives the control at the timeout and aborts the request', async () => {
  const page = loadSnippet({ fetch: never });
  let result;
  page.splitwerk.assign(['a']).then((r) => (result = r));
  await page.clock.advance(799);
  assert.equal(result, undefined);
  await page.clock.advance(1);
  assert.deepEqual(plain(result.a), { variant: 'control', payload: null, enrolled: false, reason: 'timeout' });
  assert.equal(page.record.fetches[0].init.signal.aborted, true);
});

test('data-timeout-ms sets the timeout', async () => {
  const page = loadSnippet({ dataset: { timeoutMs: '200' }, fetch: never });
  let variant;
  page.splitwerk.variant('a').then((v) => (variant = v));
  await page.clock.advance(200);
  assert.equal(variant, 'control');
});

test('a server error gives the control', async () => {
  const page = loadSnippet({ fetch: () => respond(500, { code: 500 }) });
  assert.equal(await page.splitwerk.variant('a'), 'control');
  assert.equal((await page.splitwerk.assign(['b'])).b.reason, 'error');
});

test('a network failure or a broken body gives the control', async () => {
  const failing = loadSnippet({ fetch: () => Promise.reject(new TypeError('Failed to fetch')) });
  assert.equal(await failing.splitwerk.variant('a'), 'control');
  const broken = loadSnippet({ fetch: () => respond(200, 'not json at all') });
  assert.equal(await broken.splitwerk.variant('a'), 'control');
});

test('Retry-After keeps the snippet away from the server for that long', async () => {
  const page = loadSnippet({ fetch: () => respond(429, {}, { 'Retry-After': '30' }) });
  assert.equal(await page.splitwerk.variant('a'), 'control');
  assert.equal(await page.splitwerk.variant('b'), 'control');
  assert.equal(page.record.fetches.length, 1);
  await page.clock.advance(30_000);
  await page.splitwerk.variant('c');
  assert.equal(page.record.fetches.length, 2);
});

const boom = () => {
  throw new Error('boom');
};
const BREAKAGES = {
  'fetch throws': { overrides: { fetch: boom } },
  'fetch is missing': { overrides: { fetch: undefined } },
  'sendBeacon throws': { sendBeacon: boom },
  'crypto throws': { overrides: { crypto: { randomUUID: boom, getRandomValues: boom } } },
  'document.cookie throws': { cookieThrows: true }, // as in a sandboxed frame
  'sessionStorage is blocked': { overrides: { sessionStorage: undefined } },
  'localStorage is blocked': { overrides: { localStorage: undefined } },
  'localStorage holds garbage': { overrides: { localStorage: { getItem: () => '{', setItem: boom, removeItem: boom } } },
  'the script has no src': { src: null },
  'location is garbage': { overrides: { location: { href: '::', protocol: 'x' } } },
};

for (const [name, breakage] of Object.entries(BREAKAGES)) {
  test(`no public function throws or rejects when ${name}`, async () => {
    const page = loadSnippet({ dataset: { experiments: 'a' }, embed: 1000, ...breakage });
    const sw = page.splitwerk;
    assert.equal(typeof sw, 'function');
    assert.ok(['control', 'green'].includes(await sw.variant('a')));
    assert.equal(typeof (await sw.variant()), 'string');
    assert.equal(typeof (await sw.assign(['a', 'b'])).b.variant, 'string');
    assert.equal(typeof (await sw.assign('a')).a.variant, 'string');
    assert.equal(typeof (await sw.assign(42)), 'object');
    assert.equal(typeof (await sw.ready), 'object');
    assert.doesNotThrow(() => sw.onVariant('a', boom));
    assert.doesNotThrow(() => sw.onVariant('a'));
    assert.doesNotThrow(() => sw.track('add_to_cart'));
    assert.doesNotThrow(() => sw.track());
    assert.doesNotThrow(() => sw.consent(false));
    assert.doesNotThrow(() => sw.consent(true));
    assert.doesNotThrow(() => sw.flush());
    assert.doesNotThrow(() => sw('track', 'x'));
    assert.doesNotThrow(() => sw('no-such-command'));
    assert.doesNotThrow(() => sw('call'));
    assert.doesNotThrow(() => page.fire('window', 'pagehide'));
    await page.clock.advance(5000);
    assert.equal(page.classes.has('splitwerk-loading'), false, 'nothing stays hidden');
    assert.deepEqual(page.record.console, [], 'failures are reported through console.debug at most');
  });
}

test('a failure inside the snippet is reported through console.debug', async () => {
  const page = loadSnippet({ overrides: { fetch: boom } });
  await page.splitwerk.variant('a');
  assert.ok(page.record.debugs.some((args) => args[0] === 'splitwerk:' && String(args[1]).includes('boom')));
});

test('a broken console does not break the snippet either', async () => {
  const page = loadSnippet({ overrides: { console: undefined }, fetch: () => Promise.reject(new Error('x')) });
  assert.equal(await page.splitwerk.variant('a'), 'control');
});

test('the control comes from /v1/config in local mode when the config is loaded', async () => {
  const config = {
    experiments: [{ key: 'a', status: 'paused', salt: 'a', coverage: 10000, layer: null, variants: [{ key: 'blue', allocation: 10000 }] }],
  };
  const page = loadSnippet({ dataset: { local: 'true' }, fetch: () => respond(200, config) });
  assert.equal(await page.splitwerk.variant('a'), 'blue');
  assert.equal(await page.splitwerk.variant('missing'), 'control');
});

test('loading the snippet twice keeps the first instance', () => {
  const page = loadSnippet();
  const first = page.splitwerk;
  vm.runInContext(SNIPPET, page.window);
  assert.equal(page.window.splitwerk, first);
});

// ---- visitor id and consent ---------------------------------------------------------------

test('without consent mode a visitor cookie is created once and reused', async () => {
  const page = loadSnippet({ fetch: server({}) });
  const id = cookieOf(page);
  assert.match(id, UUID);
  assert.match(page.record.cookieWrites[0], /; Path=\/; Max-Age=31536000; SameSite=Lax; Secure$/);
  await page.splitwerk.variant('a');
  assert.equal(page.record.fetches[0].body.visitor, id);
});

test('a visitor cookie set by the shop backend is read and kept', async () => {
  const page = loadSnippet({ cookie: 'other=1; splitwerk_vid=kunde-m%C3%BCller', fetch: server({}) });
  await page.splitwerk.variant('a');
  assert.equal(page.record.fetches[0].body.visitor, 'kunde-müller');
  assert.deepEqual(page.record.cookieWrites, []);
});

test('without crypto.randomUUID the id comes from getRandomValues', () => {
  const page = loadSnippet({ crypto: { getRandomValues: (a) => a.fill(0xab) } });
  assert.equal(cookieOf(page), 'ab'.repeat(16)); // 128 random bits
});

test('on plain http the cookie is not marked Secure', () => {
  const page = loadSnippet({ href: 'http://shop.example/' });
  assert.doesNotMatch(page.record.cookieWrites[0], /Secure/);
});

test('before consent nothing is stored, nothing is sent, and every page shows the control', async () => {
  const page = loadSnippet({
    dataset: { consentMode: 'required', experiments: 'a' },
    href: 'https://shop.example/?fbclid=1',
    fetch: server({ a: GREEN }),
  });
  const ready = await page.splitwerk.ready;
  assert.deepEqual(plain(ready.a), { variant: 'control', payload: null, enrolled: false, reason: 'no_consent' });
  page.splitwerk.track('add_to_cart');
  await page.clock.advance(10_000);
  assert.deepEqual(page.record.fetches, []); // not even a per-page id leaves the browser
  assert.deepEqual(page.record.cookieWrites, []);
  assert.deepEqual(page.record.storageWrites, []);
  assert.deepEqual(page.record.beacons, []); // conversions wait for consent on this page
});

test('consent stores the cookie that later pages read as consent; this page keeps the control', async () => {
  const first = loadSnippet({ dataset: { consentMode: 'required', experiments: 'a' }, fetch: server({ a: GREEN }) });
  await first.splitwerk.ready;
  first.splitwerk.track('add_to_cart');
  first.splitwerk('consent', true); // the command form, as a consent tool calls it
  await first.clock.advance(0);
  const visitor = cookieOf(first);
  assert.match(visitor, UUID);
  assert.deepEqual(first.record.fetches, []); // what this page shows does not change
  assert.equal(await first.splitwerk.variant('a'), 'control');
  assert.equal(first.record.beacons[0].body.events[0].visitor, visitor);

  const next = loadSnippet({
    cookie: `splitwerk_vid=${visitor}`,
    dataset: { consentMode: 'required', experiments: 'a' },
    fetch: server({ a: GREEN }),
  });
  assert.equal((await next.splitwerk.ready).a.variant, 'green');
  assert.equal(next.record.fetches[0].body.visitor, visitor);
  assert.equal(next.record.fetches[0].body.consent, true);
  assert.equal(cookieOf(next), visitor);
});

test('a cookie set by the backend with consent counts as consent', async () => {
  const page = loadSnippet({
    cookie: 'splitwerk_vid=from-backend',
    dataset: { consentMode: 'required', experiments: 'a' },
    fetch: server({ a: GREEN }),
  });
  await page.splitwerk.ready;
  assert.deepEqual(page.record.cookieWrites, []);
  assert.equal(page.record.fetches[0].body.visitor, 'from-backend');
  assert.equal(page.record.fetches[0].body.consent, true);
});

test("a configured consent cookie grants consent, and without it the snippet's data is removed", async () => {
  const config = { consentMode: 'required', consentCookie: 'shop_consent=ab-testing', experiments: ['a'] };
  const agreed = loadSnippet({ cookie: 'shop_consent=ab-testing', config, fetch: server({ a: GREEN }) });
  assert.equal((await agreed.splitwerk.ready).a.variant, 'green');
  assert.match(cookieOf(agreed), UUID);

  const declined = loadSnippet({ cookie: 'shop_consent=declined; splitwerk_vid=old', config, fetch: server({ a: GREEN }) });
  assert.equal((await declined.splitwerk.ready).a.reason, 'no_consent');
  assert.equal(cookieOf(declined), undefined);
  assert.deepEqual(declined.record.fetches, []);
  assert.deepEqual(declined.record.storageWrites.at(-1), ['remove', 'splitwerk_variants']);

  const anyValue = loadSnippet({ cookie: 'cmplz_ab=1', config: { ...config, consentCookie: 'cmplz_ab' }, fetch: server({ a: GREEN }) });
  assert.equal((await anyValue.splitwerk.ready).a.variant, 'green');
});

test('withdrawn consent deletes the cookie, the stored source and variants, and drops queued events', async () => {
  const page = loadSnippet();
  page.splitwerk.track('add_to_cart');
  page.splitwerk.consent(false);
  await page.clock.advance(10_000);
  assert.equal(cookieOf(page), undefined);
  assert.match(page.record.cookieWrites.at(-1), /^splitwerk_vid=; Path=\/; Max-Age=0/);
  assert.deepEqual(page.record.storageWrites.slice(-2), [
    ['remove', 'splitwerk_source'],
    ['remove', 'splitwerk_variants'],
  ]);
  assert.deepEqual(page.record.beacons, []);
});

// ---- outages ------------------------------------------------------------------------------

test('a consenting visitor keeps the stored variant when the server does not answer', async () => {
  const first = loadSnippet({ dataset: { experiments: 'a' }, fetch: server({ a: GREEN }) });
  assert.equal((await first.splitwerk.ready).a.variant, 'green');
  const down = loadSnippet({
    cookie: `splitwerk_vid=${cookieOf(first)}`,
    dataset: { experiments: 'a,b' },
    overrides: { localStorage: first.window.localStorage },
    fetch: () => Promise.reject(new TypeError('Failed to fetch')),
  });
  const ready = await down.splitwerk.ready;
  assert.deepEqual(plain(ready.a), { ...GREEN, reason: 'error' });
  assert.equal(ready.b.variant, 'control'); // never enrolled: the control
});

test('a variant the server no longer enrols is forgotten', async () => {
  const first = loadSnippet({ dataset: { experiments: 'a' }, fetch: server({ a: GREEN }) });
  await first.splitwerk.ready;
  const stopped = { variant: 'control', payload: null, enrolled: false, reason: 'stopped' };
  const storage = { localStorage: first.window.localStorage };
  const second = loadSnippet({ dataset: { experiments: 'a' }, overrides: storage, fetch: server({ a: stopped }) });
  await second.splitwerk.ready;
  const down = loadSnippet({ dataset: { experiments: 'a' }, overrides: storage, fetch: () => respond(503, {}) });
  assert.equal((await down.splitwerk.ready).a.variant, 'control');
});

// ---- tracking -----------------------------------------------------------------------------

test('track batches conversions into one beacon after a short delay', async () => {
  const page = loadSnippet();
  page.splitwerk.track('add_to_cart', { value: '12.50' });
  page.splitwerk.track('newsletter_signup');
  await page.clock.advance(1999);
  assert.equal(page.record.beacons.length, 0);
  await page.clock.advance(501); // the delay plus its largest jitter
  assert.equal(page.record.beacons.length, 1);
  const { url, body } = page.record.beacons[0];
  assert.equal(url, 'https://ab.example.com/v1/events');
  const visitor = cookieOf(page);
  const [first, second] = body.events;
  assert.deepEqual(
    { ...first, id: 'id' },
    { type: 'conversion', goal: 'add_to_cart', ts: 1_700_000_000, value: '12.50', id: 'id', visitor }
  );
  assert.equal(second.goal, 'newsletter_signup');
  assert.equal('value' in second, false);
  assert.match(first.id, UUID);
  assert.notEqual(first.id, second.id);
});

test('track refuses orders and refunds and never sends revenue or other props', async () => {
  const page = loadSnippet();
  page.splitwerk.track('purchase', { type: 'order', revenue: '99.90' });
  page.splitwerk.track('purchase', { type: 'refund', value: '99.90' });
  page.splitwerk.track('add_to_cart', { revenue: '99.90', email: 'a@b.c', value: 'a lot' });
  page.splitwerk.track('', {});
  page.splitwerk.track('x'.repeat(129));
  page.splitwerk.track({ goal: 'object' });
  page.splitwerk.flush();
  assert.equal(page.record.beacons.length, 1);
  const events = page.record.beacons[0].body.events;
  assert.equal(events.length, 1);
  assert.deepEqual(Object.keys(events[0]).sort(), ['goal', 'id', 'ts', 'type', 'visitor']);
});

test('events are flushed when the page is hidden or left', async () => {
  const page = loadSnippet();
  page.splitwerk.track('a');
  page.document.visibilityState = 'hidden';
  page.fire('document', 'visibilitychange');
  assert.equal(page.record.beacons.length, 1);
  page.splitwerk.track('b');
  page.fire('window', 'pagehide');
  assert.equal(page.record.beacons.length, 2);
});

test('a full batch is sent at once', () => {
  const page = loadSnippet();
  for (let i = 0; i < 20; i++) page.splitwerk.track('view_item');
  assert.equal(page.record.beacons.length, 1);
  assert.equal(page.record.beacons[0].body.events.length, 20);
});

test('without sendBeacon, or when it refuses, events go by fetch with keepalive', () => {
  const page = loadSnippet({ sendBeacon: () => false, fetch: () => respond(202, {}) });
  page.splitwerk.track('a');
  page.splitwerk.flush();
  const { url, init, body } = page.record.fetches[0];
  assert.equal(url, 'https://ab.example.com/v1/events');
  assert.equal(init.keepalive, true);
  assert.equal(typeof init.body, 'string');
  assert.equal(body.events[0].goal, 'a');
});

test('the event queue is bounded and counts what it drops', async () => {
  const page = loadSnippet({ dataset: { consentMode: 'required' } });
  for (let i = 0; i < 105; i++) page.splitwerk.track('view_item');
  assert.equal(page.splitwerk.dropped, 5);
  page.splitwerk.consent(true);
  const sent = page.record.beacons.reduce((n, b) => n + b.body.events.length, 0);
  assert.equal(sent, 100);
  assert.ok(page.record.beacons.every((b) => b.body.events.length <= 20));
});

// ---- the embed ----------------------------------------------------------------------------

test('the embed hides marked elements until the variants are applied and loads the snippet async', async () => {
  const page = loadSnippet({ embed: 1000, deferred: true, dataset: { experiments: 'a' }, fetch: server({ a: GREEN }) });
  assert.ok(page.classes.has('splitwerk-loading'));
  const [script] = page.record.appended;
  assert.equal(script.async, 1);
  assert.equal(script.src, 'https://ab.example.com/sdk.js?v=17');
  page.load();
  let appliedWhileHidden;
  page.splitwerk.onVariant('a', () => (appliedWhileHidden = page.classes.has('splitwerk-loading')));
  await page.clock.advance(0);
  assert.equal(appliedWhileHidden, true);
  assert.equal(page.classes.has('splitwerk-loading'), false);
});

test('the embed shows everything at its cap when the snippet never arrives', async () => {
  const page = loadSnippet({ embed: 1000, deferred: true });
  await page.clock.advance(999);
  assert.ok(page.classes.has('splitwerk-loading'));
  await page.clock.advance(1);
  assert.equal(page.classes.has('splitwerk-loading'), false);
});

test('calls made before the snippet arrives are queued, then run by it in order', async () => {
  const page = loadSnippet({ embed: 1000, deferred: true, fetch: server({ a: GREEN }) });
  const stub = page.splitwerk;
  const variant = stub.variant('a');
  const viaCommand = stub('variant', 'a');
  stub.track('add_to_cart');
  stub('track', 'newsletter_signup');
  const ready = stub.ready;
  page.load();
  assert.notEqual(page.window.splitwerk, stub);
  assert.deepEqual([await variant, await viaCommand], ['green', 'green']);
  assert.deepEqual(plain(await ready), {});
  page.splitwerk.flush();
  assert.deepEqual(page.record.beacons[0].body.events.map((e) => e.goal), ['add_to_cart', 'newsletter_signup']);
  assert.equal(await stub.variant('a'), 'green'); // a reference kept to the stub still works
});

test('the stub never throws, and settles its calls when the snippet cannot load', async () => {
  const page = loadSnippet({ embed: 1000, deferred: true });
  const stub = page.splitwerk;
  const calls = [stub.variant('a'), stub.assign(['a']), stub.onVariant('a', () => {}), stub.track('x'), stub.consent(true), stub.flush(), stub('anything'), stub.ready];
  page.record.appended[0].onerror(); // 404, or the server is down
  assert.equal(page.classes.has('splitwerk-loading'), false);
  assert.deepEqual(await Promise.all(calls), calls.map(() => undefined));
  assert.equal(await stub.variant('a'), undefined); // later calls, too
});

test('a snippet arriving after the cap keeps the control on this page', async () => {
  const page = loadSnippet({ embed: 1000, deferred: true, dataset: { experiments: 'a' }, fetch: server({ a: GREEN }) });
  const queued = page.splitwerk.variant('b');
  await page.clock.advance(5000);
  page.load();
  assert.deepEqual(plain((await page.splitwerk.ready).a), { variant: 'control', payload: null, enrolled: false, reason: 'timeout' });
  assert.equal(await queued, 'control');
  assert.deepEqual(page.record.fetches, []);
  assert.equal(await page.splitwerk.variant('c'), 'control'); // later calls ask the server again
  assert.equal(page.record.fetches.length, 1);
});

test('an answer that comes after the cap keeps the control the page already shows', async () => {
  let answer;
  const page = loadSnippet({
    embed: 1000,
    deferred: true,
    dataset: { experiments: 'a', timeoutMs: '5000' },
    fetch: () => new Promise((resolve) => (answer = resolve)),
  });
  await page.clock.advance(500);
  page.load();
  const applied = [];
  page.splitwerk.onVariant('a', (variant) => applied.push(variant));
  await page.clock.advance(500); // the stub's cap: the page shows its markup
  assert.equal(page.classes.has('splitwerk-loading'), false);
  answer(respond(200, { assignments: { a: GREEN } }));
  await page.clock.advance(0);
  assert.deepEqual(plain((await page.splitwerk.ready).a), { variant: 'control', payload: null, enrolled: false, reason: 'timeout' });
  assert.deepEqual(applied, ['control']);
});

test('without the embed nothing is hidden', () => {
  const page = loadSnippet({ dataset: { experiments: 'a' }, fetch: never });
  assert.equal(page.classes.size, 0);
});

// ---- local evaluation ---------------------------------------------------------------------

const CONFIG = {
  spec: 'assignment v1',
  version: '17',
  experiments: [
    {
      key: 'ab',
      status: 'running',
      salt: 'ab',
      coverage: 10000,
      layer: null,
      winner: null,
      conditions: null,
      variants: [
        { key: 'control', allocation: 5000, payload: null },
        { key: 'b', allocation: 5000, payload: { text: 'Jetzt kaufen' } },
      ],
    },
    {
      key: 'fb-only',
      status: 'running',
      salt: 'fb-only',
      coverage: 10000,
      layer: null,
      winner: null,
      conditions: { source: 'facebook' },
      variants: [
        { key: 'plain', allocation: 0 },
        { key: 'social', allocation: 10000 },
      ],
    },
  ],
};

test('local mode evaluates /v1/config and reports exposures once', async () => {
  // "4xz8p8Üf" is in variant b of "ab" (spec vectors)
  const page = loadSnippet({
    cookie: 'splitwerk_vid=4xz8p8%C3%9Cf',
    dataset: { local: 'true', experiments: 'ab,fb-only' },
    config: { attributes: { country: 'DE' } },
    fetch: () => respond(200, CONFIG),
  });
  const ready = await page.splitwerk.ready;
  assert.equal(ready.ab.variant, 'b');
  assert.deepEqual(plain(ready.ab.payload), { text: 'Jetzt kaufen' });
  assert.deepEqual(plain(ready['fb-only']), { variant: 'plain', payload: null, enrolled: false, reason: 'not_targeted' });
  await page.splitwerk.variant('ab');
  page.splitwerk.flush();
  assert.deepEqual(
    page.record.fetches.map((f) => f.url),
    ['https://ab.example.com/v1/config']
  );
  const events = page.record.beacons[0].body.events;
  assert.deepEqual(
    events.map((e) => ({ ...e, id: 'id' })),
    [
      {
        type: 'exposure',
        experiment: 'ab',
        variant: 'b',
        attributes: { source: 'direct', country: 'DE' },
        id: 'id',
        visitor: '4xz8p8Üf',
      },
    ]
  );
});

test('local mode uses the source for conditions', async () => {
  const page = loadSnippet({
    href: 'https://shop.example/?fbclid=1',
    dataset: { local: 'true' },
    fetch: () => respond(200, CONFIG),
  });
  assert.equal(await page.splitwerk.variant('fb-only'), 'social');
});

test('local mode asks the server for experiments whose conditions only the server evaluates', async () => {
  const regex = { ...CONFIG.experiments[1], key: 'ua', conditions: { ua: { $regex: 'Mobile' } } };
  const config = { ...CONFIG, experiments: [...CONFIG.experiments, regex] };
  const page = loadSnippet({
    dataset: { local: 'true', experiments: 'ab,ua' },
    fetch: (url) => respond(200, url.endsWith('config') ? config : { assignments: { ua: GREEN } }),
  });
  const ready = await page.splitwerk.ready;
  assert.equal(ready.ua.variant, 'green');
  assert.deepEqual(plain(page.record.fetches[1].body.experiments), ['ua']);
  page.splitwerk.flush();
  const exposures = page.record.beacons.flatMap((b) => b.body.events).map((e) => e.experiment);
  assert.ok(!exposures.includes('ua')); // /v1/assign enrolled it already
});

test('local mode sends nothing before consent', async () => {
  const page = loadSnippet({ dataset: { local: 'true', consentMode: 'required' }, fetch: () => respond(200, CONFIG) });
  assert.equal((await page.splitwerk.assign(['ab'])).ab.reason, 'no_consent');
  page.splitwerk.flush();
  assert.deepEqual(page.record.fetches, []);
  assert.deepEqual(page.record.beacons, []);
});

test('local mode falls back to the control when /v1/config fails', async () => {
  const page = loadSnippet({ dataset: { local: 'true' }, fetch: () => respond(503, {}) });
  assert.equal(await page.splitwerk.variant('ab'), 'control');
});
