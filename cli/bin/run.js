#!/usr/bin/env -S node --initial-heap-size=256
// The heap flag is cli/lib/node-flags.ts's: a daemon started by hand needs it (see there).
// The `galleon` binary. Operators run it often, so the client commands run as plain
// JavaScript: their TypeScript (cli/, proto/ and the pure metadata/state/logic) is transpiled once into a cache under the
// OS temp dir and rebuilt when a source file changes (a stat of each file per run). The daemon
// (`daemon start`) runs the TypeScript through tsx instead: it loads the whole tree once and
// lives long. Without the typescript package (a global install omits dev dependencies) every
// command goes through tsx.
import { execute } from '@oclif/core';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, relative } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
// metadata/state/logic is pure (storage-class files are checked by the same code as the state machine).
const clientSourceDirs = ['cli', 'proto', 'metadata/state/logic'];

/**
 * oclif only takes flags after the command id; operators also write the global flag first
 * (`galleon --daemon-address 10.0.1.10:8090 daemon status`), so move it behind the command.
 * @param {string[]} argv
 * @returns {string[]}
 */
function globalFlagsLast(argv) {
  const front = [];
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i] ?? '';
    if (arg === '--daemon-address' && i + 1 < argv.length) {
      front.push(arg, argv[i + 1] ?? '');
      i += 2;
    } else if (arg.startsWith('--daemon-address=')) {
      front.push(arg);
      i += 1;
    } else {
      break;
    }
  }
  return [...argv.slice(i), ...front];
}

/**
 * @param {string} dir
 * @param {string[]} out
 * @returns {string[]}
 */
function tsFiles(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) tsFiles(path, out);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Versions older than this are removed when a new one is built (a run takes far less). */
const staleCacheMs = 10 * 60 * 1000;

/**
 * @param {string} base
 * @param {string} keep
 */
function pruneOldVersions(base, keep) {
  for (const entry of readdirSync(base)) {
    const dir = join(base, entry);
    if (dir !== keep && Date.now() - statSync(dir).mtimeMs > staleCacheMs) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Transpiled client sources, rebuilt when any of them changed; null when typescript is absent.
 * @returns {string | null}
 */
function clientCache() {
  const files = clientSourceDirs.flatMap((d) => tsFiles(join(root, d))).sort();
  const stamp = createHash('sha256');
  for (const f of files) {
    const s = statSync(f);
    stamp.update(`${relative(root, f)}:${s.size}:${s.mtimeMs}\n`);
  }
  const digest = stamp.digest('hex').slice(0, 16);
  const rootKey = createHash('sha256').update(root).digest('hex').slice(0, 16);
  // One directory per source version, never changed once complete: a run never loses the
  // files it is executing to a concurrent rebuild.
  const base = join(tmpdir(), `galleon-cli-${userInfo().uid}`, rootKey);
  const cache = join(base, digest);
  if (existsSync(join(cache, 'stamp'))) return cache;

  /** @type {typeof import('typescript')} */
  let ts;
  try {
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- require() is untyped; the JSDoc type above holds
    ts = createRequire(import.meta.url)('typescript');
  } catch {
    return null;
  }
  const building = `${cache}.build-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  for (const f of files) {
    const out = join(building, relative(root, f)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    const { outputText } = ts.transpileModule(readFileSync(f, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: f,
    });
    writeFileSync(out, outputText);
  }
  writeFileSync(join(building, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(root, 'node_modules'), join(building, 'node_modules'), 'dir');
  writeFileSync(join(building, 'stamp'), digest);
  try {
    renameSync(building, cache);
  } catch {
    // A concurrent run finished first: use its copy.
    rmSync(building, { recursive: true, force: true });
  }
  pruneOldVersions(base, cache);
  return cache;
}

const args = globalFlagsLast(process.argv.slice(2));
// Detached daemons and `galleon up` start this same file again.
process.env.GALLEON_BIN = fileURLToPath(import.meta.url);
const isDaemon = args[0] === 'daemon' && args[1] === 'start';
// GALLEON_NO_CACHE=1 runs everything through tsx (debugging, and the startup benchmark's reference).
const cache = isDaemon || process.env.GALLEON_NO_CACHE === '1' ? null : clientCache();
if (cache === null) {
  const { register } = await import('tsx/esm/api');
  register();
  await execute({ dir: import.meta.url, args });
} else {
  /** @type {import('@oclif/core').Interfaces.PJSON} */
  // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- our own package.json
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  await execute({ loadOptions: { root: cache, pjson: { ...pjson, oclif: { ...pjson.oclif, commands: './cli/commands' } } }, args });
}
