// The snippet's size budget, measured as sdk/js/size.mjs does, and the minified build still working.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadSnippet, respond } from './fake-browser.mjs';

const VECTORS = JSON.parse(
  readFileSync(new URL('../../spec/assignment-vectors.json', import.meta.url), 'utf8')
);

async function sizeModule() {
  try {
    return await import('../../sdk/js/size.mjs');
  } catch (error) {
    throw new Error(`cannot load terser: run "npm ci" in sdk/js first (${error.message})`);
  }
}

test('the snippet stays within 4 KB minified and gzipped', async (t) => {
  const size = await sizeModule();
  const { gzipped, minified } = await size.measure();
  t.diagnostic(`minified ${minified} B, gzipped ${gzipped} B, budget ${size.BUDGET_BYTES} B`);
  assert.ok(gzipped <= size.BUDGET_BYTES, `${gzipped} B gzipped is over the ${size.BUDGET_BYTES} B budget`);
});

test('the minified snippet computes the same buckets and assigns', async () => {
  const minified = await (await sizeModule()).minifySnippet();
  const page = loadSnippet({ source: minified, fetch: () => respond(200, { assignments: {} }) });
  const { bucket } = page.splitwerk.core;
  for (const v of VECTORS.bucket) assert.equal(bucket(v.visitor, v.salt), v.bucket);
  assert.equal(await page.splitwerk.variant('a'), 'control');
});
