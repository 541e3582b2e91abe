/**
 * A seeded random sequence of file-system operations, each run through one of two mounts of the
 * same volume on different nodes (strict mounts: --cache-timeout 0) and on a local directory;
 * every result (value or errno) must agree, and so must the final trees (seen through both
 * mounts). A failing sequence is shrunk (chunks, then single operations removed while it still
 * fails) and printed with its seed. Seeds: GALLEON_SEEDS=1,2,3 (default 1,2); length:
 * GALLEON_OPS (default 250). The same sequences also run all on one mount with the default 1 s
 * timeouts (node 3's automatic mount; GALLEON_CACHED_SEEDS, default 1,2): with its attribute,
 * name and listing caches in play, its own changes must still show at once, and the strict
 * mounts must see its closed files whole. And on two caching mounts of another volume on nodes
 * 1 and 3 (GALLEON_PAIR_SEEDS, default 1,2), runs of steps on one then on the other: the daemons
 * run with GALLEON_WRITEBACK_MS=600000, so what one closed in a directory it holds is committed
 * only when the other's access recalls it (vfs/fs/writeback.ts); at each switch the test waits
 * out the mounts' attribute/entry timeout (the bound the guarantee gives for names; 0.3 s here,
 * `--cache-timeout 0.3`, so that the waits of the default 1 s do not fill CI), and every result
 * must still agree with the local directory.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  appendFile, chmod, link, lstat, mkdir, readFile, readdir, readlink, rename, rm, rmdir, symlink, truncate, unlink, writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../cli/helpers.js';
import { pollUntil } from '../support/poll.js';
import { describeFuse } from '../support/fuse.js';
import { startMountedCluster, waitMounted, type MountedCluster } from './cluster-mounts.js';

type Op =
  | { k: 'write'; p: string; len: number; fill: number }
  | { k: 'append'; p: string; len: number; fill: number }
  | { k: 'read'; p: string }
  | { k: 'mkdir'; p: string }
  | { k: 'rmdir'; p: string }
  | { k: 'unlink'; p: string }
  | { k: 'rename'; p: string; q: string }
  | { k: 'link'; p: string; q: string }
  | { k: 'symlink'; target: string; p: string }
  | { k: 'readlink'; p: string }
  | { k: 'truncate'; p: string; len: number }
  | { k: 'chmod'; p: string; mode: number }
  | { k: 'stat'; p: string }
  | { k: 'readdir'; p: string };
/** 1, 2: strict mounts of `rand`; 3: node 3's default mount of `rand`; p1, p3: mounts of `rand2` on nodes 1 and 3 with `pairTimeoutMs`. */
type Node = 1 | 2 | 3 | 'p1' | 'p3';
type Step = Op & { node: Node };
type Mode = 'strict' | 'cached' | 'pair';
/** The pair mounts' attribute/entry timeout (`--cache-timeout`), waited out when a pair sequence moves to the other node. */
const pairTimeoutMs = 300;
/** In a pair sequence, the chance that a step moves to the other node. */
const switchChance = 0.15;
type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

const names = ['a', 'b', 'c'];
/** Runs spent shrinking a failing sequence (GALLEON_SHRINK_RUNS; 0 reports the whole failing prefix). */
const maxShrinkRuns = Number(process.env.GALLEON_SHRINK_RUNS ?? 40);

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `cached`: every step on node 3's mount (default timeouts: its caches in play, its own changes
 * must show at once). `pair`: runs of steps on p1 then p3 (default mounts), no hard links.
 */
function generate(seed: number, count: number, mode: Mode = 'strict'): Step[] {
  const cached = mode !== 'strict';
  let pairNode: Node = 'p1';
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const path = (): string => (r() < 0.5 ? pick(names) : `${pick(names)}/${pick(names)}`);
  const len = (): number => (r() < 0.7 ? Math.floor(r() * 5000) : Math.floor(r() * 400_000));
  const ops: (() => Op)[] = [
    () => ({ k: 'write', p: path(), len: len(), fill: Math.floor(r() * 256) }),
    () => ({ k: 'append', p: path(), len: len(), fill: Math.floor(r() * 256) }),
    () => ({ k: 'read', p: path() }),
    () => ({ k: 'mkdir', p: path() }),
    () => ({ k: 'mkdir', p: pick(names) }),
    () => ({ k: 'rmdir', p: path() }),
    () => ({ k: 'unlink', p: path() }),
    () => ({ k: 'rename', p: path(), q: path() }),
    // Also on a cached mount since the kernel's attribute timeout is 0 (mount-volume.ts): before,
    // a link count changed through one name showed through another only after 1 s (seeds 5 and 6
    // met it at 400 steps). Not in pair mode: across nodes a link count catches up within the
    // mount's cache timeout (a known difference, vfs/README.md).
    ...(mode === 'pair' ? [] : [() => ({ k: 'link', p: path(), q: path() }) as Op]),
    () => ({ k: 'symlink', target: pick(names), p: path() }),
    () => ({ k: 'readlink', p: path() }),
    () => ({ k: 'truncate', p: path(), len: len() }),
    () => ({ k: 'chmod', p: path(), mode: pick([0o600, 0o644, 0o755, 0o700]) }),
    () => ({ k: 'stat', p: path() }),
    () => ({ k: 'readdir', p: r() < 0.3 ? '.' : pick(names) }),
  ];
  return Array.from({ length: count }, (): Step => {
    const op = pick(ops)(); // drawn before the node: the sequences of a seed stay what they were
    const node = r() < 0.5 ? 1 : 2;
    if (mode === 'pair' && node === 1 && r() < switchChance * 2) pairNode = pairNode === 'p1' ? 'p3' : 'p1';
    return { ...op, node: mode === 'pair' ? pairNode : cached ? 3 : node };
  });
}

function hash(b: Buffer): string {
  return `${b.length}:${createHash('sha1').update(b).digest('hex').slice(0, 12)}`;
}

async function apply(root: string, op: Op): Promise<unknown> {
  const at = (p: string): string => join(root, p);
  switch (op.k) {
    case 'write': await writeFile(at(op.p), Buffer.alloc(op.len, op.fill)); return null;
    case 'append': await appendFile(at(op.p), Buffer.alloc(op.len, op.fill)); return null;
    case 'read': return hash(await readFile(at(op.p)));
    case 'mkdir': await mkdir(at(op.p)); return null;
    case 'rmdir': await rmdir(at(op.p)); return null;
    case 'unlink': await unlink(at(op.p)); return null;
    case 'rename': await rename(at(op.p), at(op.q)); return null;
    case 'link': await link(at(op.p), at(op.q)); return null;
    case 'symlink': await symlink(op.target, at(op.p)); return null;
    case 'readlink': return readlink(at(op.p));
    case 'truncate': await truncate(at(op.p), op.len); return null;
    case 'chmod': await chmod(at(op.p), op.mode); return null;
    case 'stat': {
      const s = await lstat(at(op.p));
      const type = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'file';
      // Directory sizes and link counts differ by design (vfs/README.md, known differences).
      return type === 'dir' ? { type, mode: s.mode & 0o7777 } : { type, mode: s.mode & 0o7777, size: s.size, nlink: s.nlink };
    }
    case 'readdir': return (await readdir(at(op.p))).sort();
  }
}

async function outcome(root: string, op: Op): Promise<Outcome> {
  try {
    return { ok: true, value: await apply(root, op) };
  } catch (err) {
    return { ok: false, code: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}

async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const s = await lstat(join(root, p));
      if (s.isDirectory()) { out[p] = `dir ${(s.mode & 0o7777).toString(8)}`; await walk(p); }
      else if (s.isSymbolicLink()) out[p] = `-> ${await readlink(join(root, p))}`;
      else out[p] = `file ${(s.mode & 0o7777).toString(8)} ${hash(await readFile(join(root, p)))}`;
    }
  };
  await walk('');
  return out;
}

async function clear(root: string): Promise<void> {
  for (const name of await readdir(root)) await rm(join(root, name), { recursive: true, force: true });
}

describeFuse('seeded random operations: two mounts on two nodes against a local directory (fuse)', function () {
  this.timeout(600_000);
  let c: MountedCluster;
  let roots: Record<Node | 'local', string>;

  before(async function () {
    this.timeout(300_000);
    // Inherited by the daemons: only a recall (or an fsync, sync or bound) commits a buffered file.
    const saved = process.env.GALLEON_WRITEBACK_MS;
    process.env.GALLEON_WRITEBACK_MS = '600000';
    try {
      c = await startMountedCluster('galleon-fuse-rand-');
    } finally {
      if (saved === undefined) delete process.env.GALLEON_WRITEBACK_MS;
      else process.env.GALLEON_WRITEBACK_MS = saved;
    }
    assert.equal((await c.cli(1, ['volume', 'create', '--name', 'rand', '--size', '512M', '--access-mode', 'ReadWriteMany'])).code, 0);
    // Node 3 keeps its automatic mount (1 s attribute/entry timeouts) for the cached sequences.
    assert.equal((await c.cli(1, ['volume', 'create', '--name', 'rand2', '--size', '512M', '--access-mode', 'ReadWriteMany'])).code, 0);
    roots = { 1: join(c.dir, 'r1'), 2: join(c.dir, 'r2'), 3: c.path(3, 'rand'), p1: join(c.dir, 'p1'), p3: join(c.dir, 'p3'), local: join(c.dir, 'local') };
    await waitMounted(roots[3]);
    for (const n of [1, 3] as const) {
      await waitMounted(c.path(n, 'rand2'));
      assert.equal((await c.cli(n, ['vfs', 'unmount', 'rand2'])).code, 0);
      const p = n === 1 ? roots.p1 : roots.p3;
      await mkdir(p);
      const bad = await c.cli(n, ['vfs', 'mount', 'rand2', '--mount-point', p, '--cache-timeout', '0.3s']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^Error: --cache-timeout "0\.3s" is not a number of seconds from 0 to 60 — /);
      const r = await c.cli(n, ['vfs', 'mount', 'rand2', '--mount-point', p, '--cache-timeout', String(pairTimeoutMs / 1000)]);
      assert.equal(r.code, 0, r.stderr);
    }
    for (const n of [1, 2] as const) {
      await waitMounted(c.path(n, 'rand'));
      assert.equal((await c.cli(n, ['vfs', 'unmount', 'rand'])).code, 0);
      await mkdir(roots[n]);
      const r = await c.cli(n, ['vfs', 'mount', 'rand', '--mount-point', roots[n], '--cache-timeout', '0']);
      assert.equal(r.code, 0, r.stderr);
    }
    await mkdir(roots.local);
  });

  after(async function () {
    this.timeout(120_000);
    await c?.teardown();
  });

  /** Runs `steps` from empty roots; the index of the first disagreement, or null. */
  async function firstMismatch(steps: Step[], log: string[] | null): Promise<number | null> {
    // A cached mount sees its own changes at once, others' within its timeouts: it clears itself.
    const cached = steps.some((s) => s.node === 3);
    const pair = steps.some((s) => s.node === 'p1' || s.node === 'p3');
    await clear(pair ? roots.p1 : cached ? roots[3] : roots[1]);
    await clear(roots.local);
    if (pair) await waitFor('node 3 sees rand2 empty', 10_000, async () => (await readdir(roots.p3)).length === 0);
    else await waitFor('node 2 sees the volume empty', 10_000, async () => (await readdir(roots[2])).length === 0);
    // The clear ran on p1: a first step on p3 waits out its timeout like any switch.
    let last: Node | null = pair ? 'p1' : null;
    for (const [i, s] of steps.entries()) {
      // The guarantee for names: another node's change shows within the timeout (its kernel's and
      // its listing's). Waited out here, since that bound is what is promised, not less.
      if (pair && last !== null && last !== s.node) await new Promise((res) => setTimeout(res, pairTimeoutMs + 200));
      last = s.node;
      const [got, want]: [Outcome, Outcome] = [await outcome(roots[s.node], s), await outcome(roots.local, s)];
      try {
        assert.deepEqual(got, want);
      } catch {
        log?.push(`step ${i} ${JSON.stringify(s)}: mount ${JSON.stringify(got)} local ${JSON.stringify(want)}`);
        return i;
      }
    }
    if (pair) await new Promise((res) => setTimeout(res, pairTimeoutMs + 200));
    const tl = await tree(roots.local);
    if (pair) {
      try {
        assert.deepEqual(await tree(roots.p1), tl);
        assert.deepEqual(await tree(roots.p3), tl);
      } catch (err) {
        log?.push(`final trees differ: ${(err as Error).message.slice(0, 2000)}`);
        return steps.length;
      }
      return null;
    }
    const [t1, t2] = [await tree(roots[1]), await tree(roots[2])];
    try {
      if (cached) assert.deepEqual(await tree(roots[3]), tl);
      assert.deepEqual(t1, tl);
      assert.deepEqual(t2, tl);
    } catch (err) {
      log?.push(`final trees differ: ${(err as Error).message.slice(0, 2000)}`);
      return steps.length;
    }
    return null;
  }

  async function shrink(steps: Step[]): Promise<Step[]> {
    let best = steps;
    let runs = 0;
    for (let chunk = Math.max(1, Math.floor(best.length / 2)); chunk >= 1 && runs < maxShrinkRuns; chunk = Math.floor(chunk / 2)) {
      for (let at = 0; at < best.length && runs < maxShrinkRuns;) {
        const candidate = [...best.slice(0, at), ...best.slice(at + chunk)];
        runs++;
        const bad = await firstMismatch(candidate, null);
        if (bad !== null) best = candidate.slice(0, bad + 1);
        else at += chunk;
      }
    }
    return best;
  }

  it(`--cache-timeout ${pairTimeoutMs / 1000} takes effect: a mode changed on node 1 shows on node 3 within it, not the default 1 s`, async () => {
    const [on1, on3] = [join(roots.p1, 'moded'), join(roots.p3, 'moded')];
    await mkdir(on1, { mode: 0o755 });
    await pollUntil('node 3 sees the directory', async () => ((await lstat(on3).catch(() => null))?.mode ?? 0) & 0o777, 10_000, 20);
    assert.equal((await lstat(on3)).mode & 0o777, 0o755); // cached on node 3 from here
    await chmod(on1, 0o711);
    const t0 = performance.now();
    await pollUntil('node 3 sees the new mode', async () => ((await lstat(on3)).mode & 0o777) === 0o711, 10_000, 20);
    const ms = performance.now() - t0;
    // + 0.5 s for a loaded machine's round trips, as the posix test's bound; at 1 s it shows after about 1 s.
    assert.ok(ms < pairTimeoutMs + 500, `shown after ${ms.toFixed(0)} ms`);
    await rm(on1, { recursive: true });
  });

  const seeds = (process.env.GALLEON_SEEDS ?? '1,2').split(',').map(Number);
  const cachedSeeds = (process.env.GALLEON_CACHED_SEEDS ?? '1,2').split(',').map(Number);
  const count = Number(process.env.GALLEON_OPS ?? 250);
  const pairSeeds = (process.env.GALLEON_PAIR_SEEDS ?? '1,2').split(',').map(Number);
  const cases: { seed: number; mode: Mode }[] = [
    ...seeds.map((seed) => ({ seed, mode: 'strict' as const })), ...cachedSeeds.map((seed) => ({ seed, mode: 'cached' as const })),
    ...pairSeeds.map((seed) => ({ seed, mode: 'pair' as const })),
  ];
  const whats: Record<Mode, string> = {
    strict: 'on two strict mounts', cached: 'on one mount with 1 s timeouts (its caches in play)',
    pair: `on two mounts of two nodes with ${pairTimeoutMs / 1000} s timeouts (write-back, recalls)`,
  };
  for (const { seed, mode } of cases) {
    it(`seed ${seed}: ${count} operations ${whats[mode]} agree with a local directory, and the trees match`, async () => {
      const steps = generate(seed, count, mode);
      const log: string[] = [];
      const bad = await firstMismatch(steps, log);
      if (bad === null) return;
      const small = await shrink(steps.slice(0, bad + 1));
      const again: string[] = [];
      await firstMismatch(small, again);
      assert.fail(`seed ${seed} diverged: ${log.join('\n')}\nshrunk to ${small.length} steps:\n${small.map((s) => JSON.stringify(s)).join('\n')}\n${again.join('\n')}`);
    });
  }
});
