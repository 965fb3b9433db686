// Builds frontend/dist/playground.js and frontend/dist/playground.css.
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
  entryPoints: { playground: 'src/main.js' },
  outdir,
  bundle: true,
  format: 'iife',
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
  const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f)).sort();
  const expected = ['playground.css', 'playground.js'];
  if (JSON.stringify(outputs) !== JSON.stringify(expected)) {
    console.error(`unexpected build outputs: ${outputs.join(', ')}`);
    process.exit(1);
  }
}
