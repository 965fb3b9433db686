// Builds frontend/dist/playground.js (the entry, an ES module), frontend/dist/playground.css,
// frontend/dist/replay.js and replay.css (the recordings page's asciinema-player) and
// the chunks it imports, frontend/dist/chunks/<name>-<hash>.js (the session page's code among
// them): named by their content, so they are served to be cached for good (playground/settings.py).
//   node build.mjs          one production build
//   node build.mjs --watch  rebuild on change (development)
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.join(here, 'dist');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const options = {
  absWorkingDir: here,
  entryPoints: { playground: 'src/main.js', replay: 'src/replay.js', watch: 'src/watch.js' },
  outdir,
  bundle: true,
  format: 'esm',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'edge100', 'firefox100', 'safari15'],
  minify: !watch,
  sourcemap: watch ? 'inline' : false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'info',
  metafile: true,
};

await rm(outdir, { recursive: true, force: true });

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log('watching frontend/src for changes…');
} else {
  const result = await esbuild.build(options);
  const outputs = Object.keys(result.metafile.outputs).map((f) => path.relative(outdir, path.resolve(here, f)));
  const entries = outputs.filter((f) => !f.startsWith('chunks/')).sort();
  const chunks = outputs.filter((f) => f.startsWith('chunks/'));
  const expected = ['playground.css', 'playground.js', 'replay.css', 'replay.js', 'watch.js'];
  if (JSON.stringify(entries) !== JSON.stringify(expected) || !chunks.some((f) => f.startsWith('chunks/sessionpage-'))) {
    console.error(`unexpected build outputs: ${outputs.join(', ')}`);
    process.exit(1);
  }
}
