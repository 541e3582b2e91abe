/**
 * `npm ci`'s postinstall step for FUSE (run as `tsx vfs/fuse/native/install.ts`):
 *  1. makes sure the machine has FUSE's user tools and libfuse 2 (Debian `fuse` + `libfuse2`),
 *     installing them with apt-get when we are root, printing the one command to run otherwise;
 *  2. builds fuse-native 2.2.6 from its npm source with our patch (fuse-native-2.2.6.patch)
 *     into `vfs/fuse/native/out/`, offline, with the node-gyp that npm ships and the local
 *     Node headers. `vfs/fuse/binding.ts` loads that build, never the package's prebuilt binary.
 *
 * It never fails `npm ci` (exit 0 on every path) unless `CI=true` and we are root: there a
 * missing FUSE is a broken CI machine and must be loud. Skipping is always said in one line.
 * It is idempotent and fast when nothing changed: a stamp of the inputs sits beside the build.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyPatch } from 'diff';

const here = dirname(fileURLToPath(import.meta.url));
export const nativeOutDir = join(here, 'out');
const patchFile = join(here, 'fuse-native-2.2.6.patch');
const upstreamVersion = '2.2.6';
const aptTimeoutMs = 10 * 60_000;
const buildTimeoutMs = 10 * 60_000;

function say(line: string): void {
  process.stdout.write(`galleon fuse: ${line}\n`);
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function hasLibfuse2(): boolean {
  const out = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  if (out.status === 0) return /libfuse\.so\.2\b/.test(out.stdout);
  return ['/lib/x86_64-linux-gnu/libfuse.so.2', '/usr/lib/x86_64-linux-gnu/libfuse.so.2', '/usr/lib/libfuse.so.2']
    .some((p) => existsSync(p));
}

/**
 * The Debian 12 packages missing: `fuse` gives fusermount, `libfuse2` the library fuse-native
 * links. `fuse` conflicts with `fuse3`; fusermount3 unmounts our mounts too, so with fuse3
 * present we install only libfuse2 and never remove fuse3.
 */
export function missingFusePackages(): string[] {
  const missing: string[] = [];
  if (!onPath('fusermount') && !onPath('fusermount3')) missing.push('fuse');
  if (!hasLibfuse2()) missing.push('libfuse2');
  return missing;
}

/** Debian packages node-gyp needs to build a C addon (make, a C/C++ toolchain, python3). */
export function missingBuildPackages(): string[] {
  const wanted: [string, string][] = [['make', 'make'], ['cc', 'gcc'], ['g++', 'g++'], ['python3', 'python3']];
  return wanted.filter(([tool]) => !onPath(tool)).map(([, pkg]) => pkg);
}

function ensureFuseTools(isRoot: boolean, needBuild: boolean): boolean {
  const missing = [...missingFusePackages(), ...(needBuild ? missingBuildPackages() : [])];
  if (missing.length === 0) return true;
  const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (!isRoot) {
    say(`missing Debian packages for FUSE (${missing.join(', ')}); FUSE mounts and their tests need them — run as root: ${cmd}`);
    return false;
  }
  if (!onPath('apt-get')) {
    say(`FUSE is not installed (${missing.join(', ')}) and this is not a Debian/Ubuntu machine — install libfuse 2 and fusermount with your package manager`);
    return false;
  }
  say(`installing ${missing.join(' ')} from Debian (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const opts = { stdio: 'inherit' as const, env, timeout: aptTimeoutMs };
  execFileSync('apt-get', ['update', '-q'], opts);
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], opts);
  return missingFusePackages().length === 0;
}

function needsBuild(): boolean {
  return !existsSync(builtBindingPath) || !existsSync(join(nativeOutDir, 'stamp'));
}

interface BuildInputs {
  sourceDir: string;
  napiMacrosDir: string;
  fuseIncludeDir: string;
  fuseLib: string;
  nodeDir: string;
  nodeGyp: string;
}

function locateInputs(): BuildInputs | string {
  const req = createRequire(join(here, '..', '..', '..', 'package.json'));
  let pkgJson: string;
  try { pkgJson = req.resolve('fuse-native/package.json'); } catch { return 'fuse-native is not installed (run npm ci)'; }
  const sourceDir = dirname(pkgJson);
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  if (version !== upstreamVersion) return `fuse-native ${version} is installed; the patch is for ${upstreamVersion}`;
  const fromFuse = createRequire(pkgJson);
  const napiMacrosDir = dirname(fromFuse.resolve('napi-macros/package.json'));
  const shared = fromFuse('fuse-shared-library') as { include: string; lib: string };
  const nodeDir = resolve(dirname(process.execPath), '..');
  if (!existsSync(join(nodeDir, 'include', 'node', 'node_api.h'))) {
    return `no Node headers under ${nodeDir}/include/node (install Node from a package that ships them)`;
  }
  const nodeGyp = process.env.npm_config_node_gyp ??
    join(nodeDir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(nodeGyp)) return `npm's node-gyp not found at ${nodeGyp}`;
  return { sourceDir, napiMacrosDir, fuseIncludeDir: shared.include, fuseLib: shared.lib, nodeDir, nodeGyp };
}

/** Our own small binding.gyp: absolute paths, so the copy builds outside node_modules. */
function bindingGyp(i: BuildInputs): string {
  return JSON.stringify({
    targets: [{
      target_name: 'fuse',
      include_dirs: [i.napiMacrosDir, i.fuseIncludeDir],
      libraries: [i.fuseLib],
      sources: ['fuse-native.c'],
      cflags: ['-g', '-O3', '-Wall', '-Wno-unused-function'],
    }],
  }, null, 2);
}

function stampOf(i: BuildInputs): string {
  const h = createHash('sha256');
  h.update(readFileSync(join(i.sourceDir, 'fuse-native.c')));
  h.update(readFileSync(patchFile));
  h.update(bindingGyp(i));
  h.update(process.version);
  return h.digest('hex');
}

export const builtBindingPath = join(nativeOutDir, 'build', 'Release', 'fuse.node');

function buildPatched(i: BuildInputs): void {
  const stampFile = join(nativeOutDir, 'stamp');
  const stamp = stampOf(i);
  if (existsSync(builtBindingPath) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) {
    say('patched fuse-native is up to date');
    return;
  }
  const tools = missingBuildPackages();
  if (tools.length > 0) throw new Error(`cannot build: missing ${tools.join(', ')} (Debian: apt-get install -y ${tools.join(' ')})`);
  rmSync(nativeOutDir, { recursive: true, force: true });
  mkdirSync(nativeOutDir, { recursive: true });
  const original = readFileSync(join(i.sourceDir, 'fuse-native.c'), 'utf8');
  const patched = applyPatch(original, readFileSync(patchFile, 'utf8'));
  if (patched === false) throw new Error(`${patchFile} does not apply to fuse-native ${upstreamVersion}`);
  writeFileSync(join(nativeOutDir, 'fuse-native.c'), patched);
  copyFileSync(join(i.sourceDir, 'semaphore.h'), join(nativeOutDir, 'semaphore.h'));
  writeFileSync(join(nativeOutDir, 'binding.gyp'), bindingGyp(i));
  say('building patched fuse-native (node-gyp, offline)');
  execFileSync(process.execPath, [i.nodeGyp, 'rebuild', `--nodedir=${i.nodeDir}`, '--loglevel=warn'], {
    cwd: nativeOutDir, stdio: ['ignore', 'ignore', 'inherit'], timeout: buildTimeoutMs,
  });
  if (!existsSync(builtBindingPath)) throw new Error(`node-gyp finished without ${builtBindingPath}`);
  writeFileSync(stampFile, stamp);
  say(`built ${builtBindingPath}`);
}

function main(): number {
  const isRoot = process.getuid?.() === 0;
  const strict = process.env.CI === 'true' && isRoot;
  try {
    const toolsOk = ensureFuseTools(isRoot, needsBuild());
    const inputs = locateInputs();
    if (typeof inputs === 'string') {
      say(`cannot build the patched fuse-native: ${inputs}; FUSE mounts are unavailable`);
      return strict ? 1 : 0;
    }
    buildPatched(inputs);
    return strict && !toolsOk ? 1 : 0;
  } catch (err) {
    say(`FUSE setup failed: ${(err as Error).message}; FUSE mounts are unavailable (re-run: npm run fuse:install)`);
    return strict ? 1 : 0;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main();
}
