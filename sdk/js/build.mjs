// Builds splitwerk.min.js, the file the server serves at /sdk.js, from splitwerk.js with terser.
// Run after every change of the source: node sdk/js/build.mjs (after npm ci in sdk/js), or
// `make snippet`. The minified file is committed, so that `pip install` needs no node;
// tests/js/size.test.mjs fails when it no longer matches the source.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

export const SOURCE = fileURLToPath(new URL('splitwerk.js', import.meta.url));
export const MINIFIED = fileURLToPath(new URL('splitwerk.min.js', import.meta.url));

/** The snippet as terser minifies it (the same terser as package-lock.json: the same bytes). */
export async function minifySnippet() {
  // Declarations as `let`: shorter than `const`, and the same program for a source that never
  // assigns a constant (node's tests run the source, where that would throw). A line that
  // starts with `const ` is a declaration: the snippet has no multi-line strings.
  const source = (await readFile(SOURCE, 'utf8')).replace(/^(\s*)const /gm, '$1let ');
  // ecma 2020, the newest syntax the snippet uses (?. and ??): terser writes nothing newer.
  // unsafe_arrows: no function of the snippet uses `this` or is called with `new`; unsafe:
  // shorter forms of String(x) and the like, the same for the values the snippet handles.
  const compress = { passes: 3, unsafe_arrows: true, unsafe: true };
  const { code } = await minify(source, { ecma: 2020, compress, mangle: true });
  return code + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const code = await minifySnippet();
  await writeFile(MINIFIED, code);
  console.log(`wrote ${MINIFIED} (${Buffer.byteLength(code)} B)`);
}
