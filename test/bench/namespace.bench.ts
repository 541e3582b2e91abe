/**
 * The file-system namespace at scale (`npm run bench:namespace`).
 *
 * Default: a THREE-member cluster of real processes (namespace-cluster.ts): create, stat and
 * readdir rates on an empty volume and again once the volume holds BENCH_INODES inodes (bulk-
 * loaded through the state machine's apply path, see there), member RSS, restart time, and a
 * follower's catch-up from a streamed snapshot. BENCH_INODES defaults to 100,000 (a quick run);
 * the target is BENCH_INODES=10000000. BENCH_OPS per measured phase (default 5,000).
 *
 * BENCH_SINGLE=1: one state machine in this process instead (one member's apply path): the same
 * rates with creates through apply() in batches of 256 records (BENCH_OPS default 20,000), this
 * process's RSS, cache figures, and one-buffer snapshot / restore / reopen times (BENCH_CACHE
 * entries, default the state machine's). Both measure the empty volume after a warm-up (the JIT
 * and LevelDB caches), so the ratio compares sizes, not a cold process with a warm one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppliedRecord, StateMachine } from '../../metadata/state/contract.js';
import { openStateMachine } from '../../metadata/state/index.js';
import type { NsCacheStats } from '../../metadata/state/ns-cache.js';
import type { FsInodeRange } from '../../proto/metadata-types.js';
import { clusterBench } from './namespace-cluster.js';
import { applyInBatches, recordMaker } from './lib/apply.js';

const single = process.env.BENCH_SINGLE === '1';
const inodes = Number(process.env.BENCH_INODES ?? (single ? 1_000_000 : 100_000));
const ops = Number(process.env.BENCH_OPS ?? (single ? 20_000 : 5_000));
const cacheEntries = process.env.BENCH_CACHE === undefined ? undefined : Number(process.env.BENCH_CACHE);
const batchSize = 256;
const filesPerDir = 1_000;
const caller = { uid: 0, gid: 0 };

// A session keeps its last results: a fresh client id every million records keeps each small.
const record = recordMaker((n) => ({ clientId: `bench-${Math.floor(n / 1e6)}`, seq: (n % 1e6) + 1 }));

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
const cacheOf = (sm: StateMachine): NsCacheStats => (sm as unknown as { cacheStats(): NsCacheStats }).cacheStats();

const apply = (sm: StateMachine, records: AppliedRecord[]): Promise<unknown[]> => applyInBatches(sm, records, batchSize);

/** Inode numbers from fsAllocateInodes ranges, reserved before the records that use them are built. */
class Inos {
  private readonly ranges: FsInodeRange[] = [];
  private left = 0;
  constructor(private readonly sm: StateMachine) {}
  async reserve(count: number): Promise<void> {
    while (this.left < count) {
      const [r] = await apply(this.sm, [record('fsAllocateInodes', ['ns', 65_536])]) as FsInodeRange[];
      this.ranges.push(r!);
      this.left += r!.end - r!.start;
    }
  }
  take(): number {
    const r = this.ranges[0];
    if (r === undefined) throw new Error('inode numbers not reserved');
    const ino = r.start;
    if (r.start + 1 === r.end) this.ranges.shift();
    else this.ranges[0] = { start: r.start + 1, end: r.end };
    this.left -= 1;
    return ino;
  }
}

/** Creates `count` files in directories of filesPerDir under the root; returns the inode numbers. */
async function fill(sm: StateMachine, inos: Inos, count: number, tag: string, dirs: number[]): Promise<number[]> {
  const files: number[] = [];
  await inos.reserve(count + Math.ceil(count / filesPerDir) + 1);
  let pending: AppliedRecord[] = [];
  for (let i = 0; i < count; i += 1) {
    if (i % filesPerDir === 0) {
      const d = inos.take();
      pending.push(record('fsMkdir', ['ns', caller, 1, `${tag}-${dirs.length}`, d, 0o755]));
      dirs.push(d);
    }
    const ino = inos.take();
    pending.push(record('fsCreate', ['ns', caller, dirs[dirs.length - 1], `f${i % filesPerDir}`, ino, 0o644]));
    files.push(ino);
    if (pending.length >= batchSize * 16) {
      await apply(sm, pending);
      pending = [];
    }
  }
  await apply(sm, pending);
  return files;
}

/** The rate, and this process's CPU per operation (every thread: LevelDB's compaction included). */
async function rate(label: string, count: number, fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  await fn();
  const cpu = process.cpuUsage(cpu0);
  const perS = (count / (performance.now() - start)) * 1000;
  console.log(`${label}: ${count} in ${((count / perS) * 1000).toFixed(0)} ms = ${Math.round(perS)}/s; CPU ${Math.round((cpu.user + cpu.system) / count)} µs/op`);
  return perS;
}

/** create, stat (random files), readdir (pages of 256 through one directory of filesPerDir). */
async function measure(sm: StateMachine, inos: Inos, phase: string, known: number[], dirs: number[]): Promise<number[]> {
  const created = await rate(`[${phase}] create (batches of ${batchSize})`, ops, async () => { await fill(sm, inos, ops, `m-${phase}`, dirs); });
  const statOps = Math.min(ops, known.length * 4);
  let x = 12345;
  const stat = await rate(`[${phase}] stat of random files (64 in flight)`, statOps, async () => {
    for (let i = 0; i < statOps; i += 64) {
      await Promise.all(Array.from({ length: 64 }, () => {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        return sm.query('fsGetattr', ['ns', known[x % known.length]]);
      }));
    }
  });
  const pages = Math.max(1, Math.floor(ops / 256 / 4));
  const dir = dirs[0]!;
  const readdir = await rate(`[${phase}] readdir entries (pages of 256 with attributes)`, pages * filesPerDir, async () => {
    for (let p = 0; p < pages; p += 1) {
      let cursor: string | null = null;
      do {
        const page = await sm.query('fsReaddir', ['ns', dir, cursor, 256]) as { cursor: string | null };
        cursor = page.cursor;
      } while (cursor !== null);
    }
  });
  console.log(`[${phase}] rss ${mib(process.memoryUsage().rss)}, heap ${mib(process.memoryUsage().heapUsed)}, cache ${JSON.stringify(cacheOf(sm))}`);
  return [created, stat, readdir];
}

const dirsToRemove: string[] = [];
if (!single) {
  await clusterBench(inodes, ops);
  process.exit(0);
}
try {
  const dir = await mkdtemp(join(tmpdir(), 'galleon-ns-bench-'));
  dirsToRemove.push(dir);
  const options = cacheEntries === undefined ? {} : { nsCacheMaxEntries: cacheEntries };
  let sm = await openStateMachine(dir, options);
  await apply(sm, [1, 2, 3].map((i) => record('registerDataNode', [{ id: `n${i}`, address: `127.0.0.1:${9000 + i}`, zone: `z${i}`, capacityBytes: 2 ** 40 }])));
  await apply(sm, [record('createVolume', [{ name: 'ns', size: '1T' }])]);
  const inos = new Inos(sm);
  const dirs: number[] = [];
  const seed = await fill(sm, inos, filesPerDir, 'seed', dirs);
  // Warm-up (JIT, LevelDB and namespace caches) so that "empty" is not also "cold".
  await fill(sm, inos, ops, 'warm', []);
  const empty = await measure(sm, inos, 'empty', seed, dirs);
  const start = performance.now();
  const bulk = await fill(sm, inos, inodes, 'bulk', dirs);
  console.log(`filled ${inodes} inodes in ${((performance.now() - start) / 1000).toFixed(1)} s; rss ${mib(process.memoryUsage().rss)}`);
  const full = await measure(sm, inos, `${inodes}`, bulk, dirs);
  const names = ['create', 'stat', 'readdir'];
  console.log(names.map((n, i) => `${n} at ${inodes} / empty = ${(full[i]! / empty[i]!).toFixed(2)}`).join('; '));
  let t = performance.now();
  const snap = await sm.snapshot();
  console.log(`snapshot: ${mib(snap.data.byteLength)} in ${(performance.now() - t).toFixed(0)} ms; rss ${mib(process.memoryUsage().rss)}`);
  const dir2 = await mkdtemp(join(tmpdir(), 'galleon-ns-bench-'));
  dirsToRemove.push(dir2);
  const other = await openStateMachine(dir2, options);
  t = performance.now();
  await other.restore(snap.index, snap.data);
  console.log(`restore: ${(performance.now() - t).toFixed(0)} ms; rss ${mib(process.memoryUsage().rss)}`);
  await other.close();
  await sm.close();
  t = performance.now();
  sm = await openStateMachine(dir, options);
  console.log(`restart (reopen): ${(performance.now() - t).toFixed(0)} ms`);
  await sm.close();
} finally {
  for (const d of dirsToRemove) await rm(d, { recursive: true, force: true });
}
