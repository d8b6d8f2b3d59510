// Replaces the compiled dist/cluster/k8s.js (named re-exports of @kubernetes/client-node) with a
// minified bundle of only what those names reach, so the agent does not load every generated API
// group and model of the library (src/cluster/k8s.ts says why). Run by `npm run build` after tsc.
// Idempotent: a file that is already a bundle is left alone.
// Usage: node scripts/bundle-client-node.mjs [DIST_DIR]   (default: the repository's dist/)
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const dist = process.argv[2] === undefined ? new URL('../dist', import.meta.url).pathname : resolve(process.argv[2]);
const target = join(dist, 'cluster', 'k8s.js');
const MARK = '// smartnat: bundled @kubernetes/client-node';

if (readFileSync(target, 'utf8').startsWith(MARK)) process.exit(0);
await build({
  entryPoints: [target],
  outfile: target,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Names kept: stack traces through the library still say which class and function failed.
  minify: true,
  keepNames: true,
  legalComments: 'eof',
  // The library's CommonJS dependencies call require(); an ES module has none of its own.
  banner: { js: `${MARK}\nimport { createRequire as smartnatCreateRequire } from 'node:module';\nconst require = smartnatCreateRequire(import.meta.url);` },
  logLevel: 'warning',
});
