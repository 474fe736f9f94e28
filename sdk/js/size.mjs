// Size budget of the browser snippet: minifies splitwerk.js with terser, gzips it, and exits
// with code 1 above the budget. Run: node sdk/js/size.mjs (after npm ci in sdk/js).
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

// 4 KB gzipped, the product's budget: the snippet is loaded on every page of every shop
export const BUDGET_BYTES = 4096;
export const SOURCE = fileURLToPath(new URL('splitwerk.js', import.meta.url));

/** The snippet as terser minifies it. */
export async function minifySnippet() {
  const source = await readFile(SOURCE, 'utf8');
  // ecma 2017 keeps terser from rewriting into newer syntax than the snippet promises
  const { code } = await minify(source, { ecma: 2017, compress: { passes: 2 }, mangle: true });
  return code;
}

/** Source, minified and gzipped sizes of the snippet in bytes. */
export async function measure() {
  const code = await minifySnippet();
  return {
    source: (await readFile(SOURCE)).length,
    minified: Buffer.byteLength(code),
    gzipped: gzipSync(code, { level: 9 }).length,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const size = await measure();
  const isWithin = size.gzipped <= BUDGET_BYTES;
  console.log(
    `splitwerk.js: ${size.source} B source, ${size.minified} B minified, ` +
      `${size.gzipped} B gzipped (budget ${BUDGET_BYTES} B): ${isWithin ? 'ok' : 'OVER BUDGET'}`
  );
  process.exitCode = isWithin ? 0 : 1;
}
