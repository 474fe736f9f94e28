// Size budget of the browser snippet on the wire: the committed splitwerk.min.js compressed as
// the server sends it (brotli for browsers that accept it, gzip for the rest); exits with code
// 1 when brotli is above the budget. Run: node sdk/js/size.mjs
import { readFile } from 'node:fs/promises';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { MINIFIED, SOURCE } from './build.mjs';

// 4 KB on the wire, the product's budget: the snippet is loaded on every page of every shop.
// Every current browser accepts brotli over https (Chromium over http, too).
export const BUDGET_BYTES = 4096;

/** Source, minified, gzipped and brotli sizes of the snippet in bytes. */
export async function measure() {
  const code = await readFile(MINIFIED);
  return {
    source: (await readFile(SOURCE)).length,
    minified: code.length,
    // the server's settings: gzip level 9, brotli quality 11 (server/api/snippet.py)
    gzipped: gzipSync(code, { level: 9 }).length,
    brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const size = await measure();
  const isWithin = size.brotli <= BUDGET_BYTES;
  console.log(
    `splitwerk.min.js: ${size.source} B source, ${size.minified} B minified, ${size.gzipped} B gzip, ` +
      `${size.brotli} B brotli (budget ${BUDGET_BYTES} B): ${isWithin ? 'ok' : 'OVER BUDGET'}`
  );
  process.exitCode = isWithin ? 0 : 1;
}
