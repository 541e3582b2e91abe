/**
 * Reads with 1 snapshot vs 1,000 snapshots of a volume (issue #11 target: within 1.2x).
 * Two real block stores (segments layout, temp dirs): each holds `blocks` blocks; store A was
 * snapshotted once (every block rewritten after the cut: one kept version each), store B a
 * thousand times (every block rewritten after each cut: 1,000 kept versions each). Measured, in
 * alternating rounds: reads at a random snapshot (`readBelow`, one reverse seek), and live reads.
 * Reported as CPU per read (see cpuMicrosPerRead).
 *   npm run bench:snapshot            (BENCH_REPS=3 BENCH_READS=20000 BENCH_SNAPSHOTS=1000 BENCH_CONTROL=0 BENCH_REOPEN=0)
 */
import { performance } from 'node:perf_hooks';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelBlockStore } from '../../dataplane/store/level-block-store.js';
import type { BlockOp } from '../../dataplane/store/types.js';

const reps = Number(process.env.BENCH_REPS ?? 3);
const reads = Number(process.env.BENCH_READS ?? 20_000);
const manySnapshots = Number(process.env.BENCH_SNAPSHOTS ?? 1000);
const blocks = 128;
const bodyBytes = 512;
const volumeId = 'bench-snap';

/**
 * A store whose blocks were each rewritten after every one of `snapshots` cuts (epoch 1 + i);
 * `padding` other blocks (never read) make its index as large as another store's: the control.
 */
async function build(dir: string, snapshots: number, padding = 0): Promise<LevelBlockStore> {
  const store = await LevelBlockStore.open({ dir, minFreeBytes: 0 });
  let seq = 0;
  for (let b = 0; b < padding; b += blocks) {
    const ops: BlockOp[] = [];
    for (let i = b; i < Math.min(padding, b + blocks); i++) {
      ops.push({ kind: 'put', address: { volumeId, inode: 2, blockNo: i }, pg: 0, seq: ++seq, epoch: 1, data: Buffer.alloc(bodyBytes, 7) });
    }
    await store.writeBatch(ops, { sync: false });
  }
  for (let epoch = 1; epoch <= snapshots + 1; epoch++) {
    const ops: BlockOp[] = [];
    for (let b = 0; b < blocks; b++) {
      ops.push({ kind: 'put', address: { volumeId, inode: 1, blockNo: b }, pg: 0, seq: ++seq, epoch, data: Buffer.alloc(bodyBytes, epoch & 0xff) });
    }
    await store.writeBatch(ops, { sync: false });
  }
  return store;
}

/** Deterministic pseudo-random sequence (no clock, no Math.random: repeatable rounds). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

/**
 * CPU µs per read (user + system of the whole process, LevelDB's threads included): on the shared
 * 2-core machine wall-clock rates swing 3x between rounds with other engineers' load, CPU much less.
 */
async function cpuMicrosPerRead(store: LevelBlockStore, snapshots: number, atSnapshot: boolean, seed: number): Promise<number> {
  const rnd = lcg(seed);
  const started = process.cpuUsage();
  for (let i = 0; i < reads; i++) {
    const address = { volumeId, inode: 1, blockNo: Math.floor(rnd() * blocks) };
    if (atSnapshot) {
      const cut = 2 + Math.floor(rnd() * snapshots); // cuts 2..snapshots+1
      const r = await store.readBelow(address, cut);
      if (r.kind !== 'block' || r.block.epoch !== cut - 1) throw new Error(`read at cut ${cut} saw ${r.kind === 'block' ? r.block.epoch : r.kind}`);
    } else {
      await store.read(address);
    }
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / reads;
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'galleon-bench-snap-'));
  try {
    const t0 = performance.now();
    // Control (BENCH_CONTROL=1): the 1-snapshot store padded to the same number of index entries.
    const control = process.env.BENCH_CONTROL === '1';
    let one = await build(join(root, 'one'), 1, control ? blocks * (manySnapshots - 1) : 0);
    let many = await build(join(root, 'many'), manySnapshots);
    if (process.env.BENCH_REOPEN === '1') {
      // Reopened, LevelDB turns the log into table files: reads then go through sorted tables and
      // the block cache instead of the 64 MiB memtable that holds every entry after the build.
      await one.close();
      await many.close();
      one = await LevelBlockStore.open({ dir: join(root, 'one'), minFreeBytes: 0 });
      many = await LevelBlockStore.open({ dir: join(root, 'many'), minFreeBytes: 0 });
      console.log('reopened: the entries are in table files, not the memtable');
    }
    if (control) console.log('control: the 1-snapshot store is padded to the same index size');
    console.log(`built: ${blocks} blocks of ${bodyBytes} B; 1 snapshot vs ${manySnapshots} snapshots (${blocks * manySnapshots} kept versions) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const rows: { rep: number; one: number; many: number; liveOne: number; liveMany: number }[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const seed = 1000 + rep;
      // Alternate the order each round so drift in the shared machine's load hits both sides.
      let oneAt: number;
      let m: number;
      if (rep % 2 === 0) {
        oneAt = await cpuMicrosPerRead(one, 1, true, seed);
        m = await cpuMicrosPerRead(many, manySnapshots, true, seed);
      } else {
        m = await cpuMicrosPerRead(many, manySnapshots, true, seed);
        oneAt = await cpuMicrosPerRead(one, 1, true, seed);
      }
      const liveOne = await cpuMicrosPerRead(one, 1, false, seed);
      const liveMany = await cpuMicrosPerRead(many, manySnapshots, false, seed);
      rows.push({ rep, one: oneAt, many: m, liveOne, liveMany });
      console.log(`round ${rep + 1}: CPU per read at a snapshot ${oneAt.toFixed(1)} µs (1 snapshot) vs ${m.toFixed(1)} µs (${manySnapshots}) = ${(m / oneAt).toFixed(2)}x; live reads ${liveOne.toFixed(1)} µs vs ${liveMany.toFixed(1)} µs = ${(liveMany / liveOne).toFixed(2)}x`);
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ratio = mean(rows.map((r) => r.many)) / mean(rows.map((r) => r.one));
    const liveRatio = mean(rows.map((r) => r.liveMany)) / mean(rows.map((r) => r.liveOne));
    console.log(`mean of ${reps} rounds: a read at a snapshot costs ${ratio.toFixed(2)}x the CPU with ${manySnapshots} snapshots than with 1 (target <= 1.2x); a live read ${liveRatio.toFixed(2)}x`);
    await one.close();
    await many.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
