/**
 * What the first write of each block after an epoch change costs the store (issue #11: to keep
 * the older version for snapshots, that write reads the block's index entry once, and stores the
 * version's key), against a write of a block already written at the current epoch (no read).
 * Store only (one LevelBlockStore, segment layout, 4 KiB synced writes at 64 in flight), so it
 * runs unchanged in a tree from before snapshots: pair two trees at the same moment with
 *
 *   test/bench/epoch-write-ab.sh ROUNDS OLD_TREE NEW_TREE
 *
 * Each round writes every block at epoch e (untimed), then times a pass at epoch e + 1 (first
 * write after the change) and a second pass at e + 1 (control). Prints CPU µs per write of the
 * whole process (LevelDB's threads included) and writes/s for both passes, and their ratio.
 * env: BENCH_BLOCKS (default 8192), BENCH_ROUNDS (default 3).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LevelBlockStore } from '../../dataplane/store/level-block-store.js';

const blocks = Number(process.env.BENCH_BLOCKS ?? '8192');
const rounds = Number(process.env.BENCH_ROUNDS ?? '3');
const inFlight = 64;
const blockBytes = 4096;

async function pass(store: LevelBlockStore, epoch: number, seqFrom: number, data: Buffer): Promise<{ cpuUsPerWrite: number; perSecond: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < blocks; i = next++) {
      await store.write({ kind: 'put', address: { volumeId: 'bench', inode: 1, blockNo: i }, pg: 0, seq: seqFrom + i, epoch, data }, { sync: true });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuUsPerWrite: (cpu.user + cpu.system) / blocks, perSecond: blocks / (ms / 1000) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'galleon-epoch-bench-'));
  const store = await LevelBlockStore.open({ dir, minFreeBytes: 0 });
  const data = Buffer.alloc(blockBytes, 7);
  let seq = 1;
  try {
    for (let r = 1; r <= rounds; r++) {
      const epoch = 2 * r;
      await pass(store, epoch - 1, seq, data);
      seq += blocks;
      const first = await pass(store, epoch, seq, data);
      seq += blocks;
      const again = await pass(store, epoch, seq, data);
      seq += blocks;
      console.log(`round ${r}: first write after an epoch change ${first.cpuUsPerWrite.toFixed(1)} µs CPU/write (${first.perSecond.toFixed(0)}/s); `
        + `same epoch again ${again.cpuUsPerWrite.toFixed(1)} µs CPU/write (${again.perSecond.toFixed(0)}/s); ratio ${(first.cpuUsPerWrite / again.cpuUsPerWrite).toFixed(2)}`);
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
