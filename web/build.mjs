// Builds the dashboard: `node build.mjs [--outdir DIR]` (through `npm run build -- --outdir DIR`,
// after `tsc --noEmit` has type-checked the sources).
//
// Contract, relied on by the C++ build that embeds the result in the till binary: DIR ends up
// holding exactly
//   DIR/index.html        references /assets/app.js and /assets/app.css, nothing inline
//   DIR/assets/app.js     the bundled, minified app (ES module)
//   DIR/assets/app.css    every stylesheet, uPlot's included
// and nothing else: whatever DIR held before is deleted first, and no source maps are written.
// The default DIR is web/dist. A relative DIR is taken from where npm was started.
import * as esbuild from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, parse, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const webDir = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  let outdir = join(webDir, 'dist');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--outdir' && i + 1 < argv.length) {
      outdir = argv[++i];
    } else if (arg.startsWith('--outdir=')) {
      outdir = arg.slice('--outdir='.length);
    } else {
      throw new Error(`unknown argument ${JSON.stringify(arg)}; usage: node build.mjs [--outdir DIR]`);
    }
  }
  // `npm run` changes into web/; INIT_CWD is where the user typed the command.
  return resolve(process.env.INIT_CWD ?? process.cwd(), outdir);
}

// Emptying DIR is part of the contract, so refuse the directories where that would be a disaster:
// the filesystem root, the home directory, and web/ itself or any folder above it.
function checkSafeToEmpty(dir) {
  const isAncestorOrSame = (ancestor, path) => {
    const rel = relative(ancestor, path);
    return rel === '' || !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel));
  };
  if (dir === parse(dir).root || dir === homedir() || isAncestorOrSame(dir, webDir)) {
    throw new Error(`refusing to use ${dir} as the output directory: it would be emptied`);
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new Error(`${dir} exists and is not a directory`);
  }
}

function emptyDir(dir) {
  mkdirSync(dir, { recursive: true });
  for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
}

async function main() {
  const outdir = parseArgs(process.argv.slice(2));
  checkSafeToEmpty(outdir);
  emptyDir(outdir);

  const assets = join(outdir, 'assets');
  // main.tsx imports the stylesheets, so esbuild writes app.css beside app.js.
  const result = await esbuild.build({
    absWorkingDir: webDir,
    entryPoints: { app: 'src/main.tsx' },
    outdir: assets,
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    sourcemap: false,
    logLevel: 'warning',
    metafile: true,
  });

  copyFileSync(join(webDir, 'index.html'), join(outdir, 'index.html'));

  const written = readdirSync(assets).sort();
  if (written.join(',') !== 'app.css,app.js') {
    throw new Error(`expected assets/app.css and assets/app.js, esbuild wrote: ${written.join(', ')}`);
  }
  for (const [file, { bytes }] of Object.entries(result.metafile.outputs)) {
    console.log(`${resolve(webDir, file)}  ${bytes} bytes`);
  }
}

main().catch((error) => {
  console.error(`web build failed: ${error.message}`);
  process.exit(1);
});
