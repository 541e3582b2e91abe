/**
 * Segment GC benchmark on one real store (real LevelDB, real segment files):
 *   - overwrite the same blocks again and again (durable writes, 64 in flight) without GC:
 *     write throughput and disk use (segment bytes) against the live data; then one GC pass
 *     alone: its census, bytes copied, disk use after;
 *   - the same overwrite workload with the reclaimer running back to back: throughput beside
 *     the phase without GC (the cost of GC) and disk use at the end (GC keeps up or not);
 *   - the census over a large index of small inline blocks (what a pass, or a rebuild of live
 *      bytes at open, would cost per million blocks).
 *
 *   npm run bench:gc   (env BENCH_SECONDS=4 per timed phase, BENCH_REPS=2, BENCH_GC_MIBS=32 GC rate,
 *                       BENCH_CENSUS_BLOCKS=200000)
 */
import { rm } from 'node:fs/promises';
import os from 'node:os';
import { dataplaneLogger } from '../../dataplane/log.js';
import { LevelBlockStore } from '../../dataplane/store/level-block-store.js';
import { takeCensus } from '../../dataplane/store/index-census.js';
import { Reclaimer } from '../../dataplane/store/reclaimer.js';
import { pattern, tempDir } from '../dataplane/helpers.js';

const phaseSeconds = Number(process.env.BENCH_SECONDS ?? '4');
const gcMiBs = Number(process.env.BENCH_GC_MIBS ?? '32');
const MiB = 1024 * 1024;
const blockBytes = 128 * 1024;
const blocks = 256; // 32 MiB of live data
const inFlight = 64;
const segmentMaxBytes = 16 * MiB;
const censusBlocks = Number(process.env.BENCH_CENSUS_BLOCKS ?? '200000');
const live = blocks * blockBytes;
const reps = Number(process.env.BENCH_REPS ?? '2');
process.env.GALLEON_LOG_LEVEL ??= 'warn';
const log = dataplaneLogger('bench-gc');

const bodies = Array.from({ length: 8 }, (_, i) => pattern(i + 1, blockBytes));
let seq = 0;

/** Overwrites random blocks with durable writes for `seconds`; returns MiB/s written. */
async function overwrite(store: LevelBlockStore, seconds: number): Promise<number> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const s = ++seq;
      const body = bodies[s % bodies.length] ?? bodies[0];
      if (body === undefined) throw new Error('no body');
      await store.write({ kind: 'put', address: { volumeId: 'bench', inode: 1, blockNo: Math.floor(Math.random() * blocks) }, pg: 0, seq: s, epoch: 1, data: body }, { sync: true });
      bytes += blockBytes;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return bytes / MiB / ((performance.now() - start) / 1000);
}

const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

async function main(): Promise<void> {
  console.log(`segment GC bench: ${blocks} blocks x ${blockBytes / 1024} KiB (${mib(live)} live), durable overwrites, ${inFlight} in flight, ${segmentMaxBytes / MiB} MiB segments, GC ${gcMiBs} MiB/s, ${phaseSeconds} s phases x ${reps}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const dir = await tempDir('bench-gc');
  try {
    const store = await LevelBlockStore.open({ dir, segmentMaxBytes });
    // Fill once so every block exists.
    await Promise.all(Array.from({ length: blocks }, (_, b) => store.write({ kind: 'put', address: { volumeId: 'bench', inode: 1, blockNo: b }, pg: 0, seq: ++seq, epoch: 1, data: bodies[0] ?? Buffer.alloc(0) }, { sync: false })));
    const gcOpts = { maxBytesPerSecond: gcMiBs * MiB, maxSegmentsPerPass: 1000 };
    // Phases alternate, in swapped order every other round (without GC first, then with GC
    // first), each from a freshly collected store, so load changes and order hit both alike.
    const without: number[] = [];
    const withGc: number[] = [];
    const phaseWithout = async (): Promise<void> => {
      const start = store.usedBytes();
      without.push(await overwrite(store, phaseSeconds));
      const grown = store.usedBytes();
      console.log(`   overwrites, no GC:       ${(without.at(-1) ?? 0).toFixed(0)} MiB/s; disk use ${mib(start)} -> ${mib(grown)} (${(grown / live).toFixed(1)}x the live data)`);
      const t0 = performance.now();
      const pass = await new Reclaimer({ store, log, gc: gcOpts }).runOnce();
      console.log(`   then one GC pass alone:  ${((performance.now() - t0) / 1000).toFixed(2)} s (census of ${pass.entries} entries ${pass.censusMs.toFixed(0)} ms), ${pass.gc.deleted} segments deleted, ${mib(pass.gc.bytesCopied)} copied; disk use ${mib(grown)} -> ${mib(store.usedBytes())}`);
    };
    const phaseWith = async (): Promise<void> => {
      const reclaimer = new Reclaimer({ store, log, gc: gcOpts, passIntervalMs: 50 });
      reclaimer.start();
      const before = store.usedBytes();
      let peak = before;
      const sampler = setInterval(() => { peak = Math.max(peak, store.usedBytes()); }, 50);
      withGc.push(await overwrite(store, phaseSeconds));
      clearInterval(sampler);
      const end = store.usedBytes();
      await reclaimer.stop();
      await new Reclaimer({ store, log, gc: gcOpts }).runOnce();
      console.log(`   overwrites, GC running:  ${(withGc.at(-1) ?? 0).toFixed(0)} MiB/s; disk use ${mib(before)} -> ${mib(end)} (peak ${mib(peak)}), ${mib(store.usedBytes())} after one more pass`);
    };
    for (let rep = 0; rep < reps; rep++) {
      if (rep % 2 === 0) { await phaseWithout(); await phaseWith(); } else { await phaseWith(); await phaseWithout(); }
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    console.log(`=> write throughput with GC running: ${mean(withGc).toFixed(0)} MiB/s vs ${mean(without).toFixed(0)} MiB/s without (${((mean(withGc) / mean(without)) * 100).toFixed(0)}%)`);
    await store.close();
    await rm(dir, { recursive: true, force: true });

    // 4. Census cost per index entry: many small inline blocks.
    const big = await LevelBlockStore.open({ dir, segmentMaxBytes });
    const small = Buffer.alloc(64, 7);
    for (let i = 0; i < censusBlocks; i += 4096) {
      const ops = [];
      for (let b = i; b < Math.min(censusBlocks, i + 4096); b++) ops.push({ kind: 'put' as const, address: { volumeId: 'bench', inode: 2, blockNo: b }, pg: 0, seq: ++seq, epoch: 1, data: small });
      await big.writeBatch(ops, { sync: false });
    }
    const c0 = performance.now();
    const census = await takeCensus(big.maintenance(), { maxPurgeCandidates: 0 });
    const censusMs = performance.now() - c0;
    console.log(`census of ${census.entries} index entries: ${censusMs.toFixed(0)} ms (${((census.entries / censusMs) * 1000 / 1e6).toFixed(2)} M entries/s, ${(censusMs / census.entries * 1e6 / 1000).toFixed(2)} s per million blocks)`);
    await big.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
