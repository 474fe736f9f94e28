// The snippet's size on the wire, measured as sdk/js/size.mjs does, and the committed build:
// the same bytes as a fresh build of the source, and still working.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadSnippet, respond } from './fake-browser.mjs';

const VECTORS = JSON.parse(
  readFileSync(new URL('../../spec/assignment-vectors.json', import.meta.url), 'utf8')
);
const MINIFIED = readFileSync(new URL('../../sdk/js/splitwerk.min.js', import.meta.url), 'utf8');

async function buildModule() {
  try {
    return await import('../../sdk/js/build.mjs');
  } catch (error) {
    throw new Error(`cannot load terser: run "npm ci" in sdk/js first (${error.message})`);
  }
}

test('the snippet stays within 4 KB on the wire with brotli', async (t) => {
  const size = await import('../../sdk/js/size.mjs');
  const { brotli, gzipped, minified } = await size.measure();
  t.diagnostic(`minified ${minified} B, gzip ${gzipped} B, brotli ${brotli} B, budget ${size.BUDGET_BYTES} B`);
  assert.ok(brotli <= size.BUDGET_BYTES, `${brotli} B brotli is over the ${size.BUDGET_BYTES} B budget`);
});

// zlib's level 9, an upper bound of the server's zopfli (tests/api/test_snippet.py measures that)
test('the snippet stays within 4 KB on the wire with gzip', async (t) => {
  const size = await import('../../sdk/js/size.mjs');
  const { gzipped } = await size.measure();
  t.diagnostic(`gzip ${gzipped} B (zlib level 9), budget ${size.BUDGET_BYTES} B`);
  assert.ok(gzipped <= size.BUDGET_BYTES, `${gzipped} B gzip is over the ${size.BUDGET_BYTES} B budget`);
});

test('size.mjs names each encoding above the budget', async () => {
  const { overBudget, BUDGET_BYTES: budget } = await import('../../sdk/js/size.mjs');
  assert.deepEqual(overBudget({ gzipped: budget, brotli: budget }), []);
  assert.deepEqual(overBudget({ gzipped: budget + 1, brotli: budget }), [`gzip ${budget + 1} B`]);
  assert.deepEqual(overBudget({ gzipped: 1, brotli: budget + 1 }), [`brotli ${budget + 1} B`]);
});

test('size.mjs exits with 1 exactly when an encoding is over the budget', async () => {
  const size = await import('../../sdk/js/size.mjs');
  const script = fileURLToPath(new URL('../../sdk/js/size.mjs', import.meta.url));
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(run.status, size.overBudget(await size.measure()).length ? 1 : 0, run.stdout + run.stderr);
  assert.match(run.stdout, /B gzip, \d+ B brotli \(budget 4096 B each\)/);
});

test('the committed splitwerk.min.js is the build of splitwerk.js (run node sdk/js/build.mjs)', async () => {
  const built = await (await buildModule()).minifySnippet();
  assert.ok(built === MINIFIED, 'sdk/js/splitwerk.min.js is stale: run node sdk/js/build.mjs');
});

test('the minified snippet computes the same buckets and assigns', async () => {
  const page = loadSnippet({ source: MINIFIED, fetch: () => respond(200, { assignments: {} }) });
  const { bucket } = page.splitwerk.core;
  for (const v of VECTORS.bucket) assert.equal(bucket(v.visitor, v.salt), v.bucket);
  assert.equal(await page.splitwerk.variant('a'), 'control');
});
