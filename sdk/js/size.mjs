// Size budget of the browser snippet on the wire: the committed splitwerk.min.js compressed as
// the server sends it (brotli for browsers that accept it, gzip for the rest); exits with code
// 1 when either encoding is above the budget. Run: node sdk/js/size.mjs
import { readFile } from 'node:fs/promises';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { MINIFIED, SOURCE } from './build.mjs';

// 4 KB on the wire, the product's budget: the snippet is loaded on every page of every shop,
// by browsers with brotli and by clients with gzip only.
export const BUDGET_BYTES = 4096;

/** Source, minified, gzipped and brotli sizes of the snippet in bytes. */
export async function measure() {
  const code = await readFile(MINIFIED);
  return {
    source: (await readFile(SOURCE)).length,
    minified: code.length,
    // gzip level 9: an upper bound of the server's gzip (zopfli, about 1.5 % smaller;
    // tests/api/test_snippet.py measures what it serves); brotli quality 11, as the server
    gzipped: gzipSync(code, { level: 9 }).length,
    brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

/** The encodings above the budget, e.g. ['gzip 4300 B']; empty when both fit. */
export const overBudget = ({ gzipped, brotli }) =>
  [['gzip', gzipped], ['brotli', brotli]].filter(([, n]) => n > BUDGET_BYTES).map(([name, n]) => `${name} ${n} B`);

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const size = await measure();
  const over = overBudget(size);
  console.log(
    `splitwerk.min.js: ${size.source} B source, ${size.minified} B minified, ${size.gzipped} B gzip, ` +
      `${size.brotli} B brotli (budget ${BUDGET_BYTES} B each): ${over.length ? 'OVER BUDGET: ' + over.join(', ') : 'ok'}`
  );
  process.exitCode = over.length ? 1 : 0;
}
