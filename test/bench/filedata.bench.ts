/**
 * File data through FileData (vfs/data) against three data-node processes on loopback.
 *
 *   npm run bench:filedata      sequential write and read of BENCH_FILE_MIB (default 1024) MiB
 *                               through FileData (128 KiB calls, as FUSE sends them) beside the
 *                               same bytes through the BlockClient alone (writeBlocks/readBlocks,
 *                               64 in flight), with the ratio; random 4 KiB writes (each
 *                               fsync'd, read-modify-write of its block) and reads, IOPS.
 *   npm run bench:blocksize     the block-size sweep that chose the default: for 4 KiB … 1 MiB
 *                               blocks, sequential 128 KiB writes and random fsync'd 4 KiB writes
 *                               with read-modify-write (no cache: every merge reads its block).
 *
 * Env: BENCH_BLOCK_SIZES=4096,… (sweep), BENCH_BLOCK_BYTES (filedata; default the volume
 * default), BENCH_SECONDS per random phase (default 3), BENCH_CONCERN (default replicated).
 */
import os from 'node:os';
import Table from 'cli-table3';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { StaticPlacementSource } from '../../dataplane/placement.js';
import { defaultBlockSizeBytes } from '../../proto/metadata-types.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { VolumeData } from '../../vfs/data/index.js';
import type { FileData } from '../../vfs/data/index.js';
import { TestCluster } from '../dataplane/cluster.js';
import { pattern } from '../dataplane/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const fuseIoBytes = 128 * KiB;
const inFlight = 64;
const randomWorkers = 16;
const pgCount = 12;
const phaseSeconds = Number(process.env.BENCH_SECONDS ?? '3');
const readRounds = Number(process.env.BENCH_READ_ROUNDS ?? '2');
const concern = (process.env.BENCH_CONCERN ?? 'replicated') as WriteConcern;
const ids = ['n1', 'n2', 'n3'];
const started = performance.now();
const note = (what: string): void => { process.stderr.write(`[bench] ${what} at ${((performance.now() - started) / 1000).toFixed(1)} s\n`); };

interface Rig { cluster: TestCluster; client: BlockClient; volume: (id: string) => Promise<void> }

async function rig(): Promise<Rig> {
  const cluster = new TestCluster();
  await Promise.all(ids.map((id, i) => cluster.start(id, `z${i + 1}`)));
  const source = new StaticPlacementSource();
  const client = new BlockClient({ placement: source, maxInFlight: inFlight });
  const volume = async (id: string): Promise<void> => {
    const p = cluster.placement(id, Array.from({ length: pgCount }, (_, pg) => ({ replicas: ids, primary: ids[pg % 3] ?? 'n1', epoch: 1 })));
    await cluster.install(p);
    source.set(p);
  };
  return { cluster, client, volume };
}

const mibps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);

/** Sequential 128 KiB writes through one FileData, then close (flush at the concern). */
async function fileSeqWrite(f: FileData, v: VolumeData, bytes: number, chunk: Buffer): Promise<number> {
  const t = performance.now();
  for (let off = 0; off < bytes; off += fuseIoBytes) await f.write(off, chunk.subarray(0, Math.min(fuseIoBytes, bytes - off)));
  await v.close(f);
  return performance.now() - t;
}

async function fileSeqRead(f: FileData, bytes: number): Promise<number> {
  const t = performance.now();
  for (let off = 0; off < bytes; off += fuseIoBytes) {
    const got = await f.read(off, fuseIoBytes);
    if (got.length !== Math.min(fuseIoBytes, bytes - off)) throw new Error(`short read at ${off}`);
  }
  return performance.now() - t;
}

/** `randomWorkers` files of `fileBytes`; each worker writes 4 KiB at a random offset and fsyncs, for `seconds`. */
async function randomWrites(files: FileData[], fileBytes: number, seconds: number): Promise<number> {
  let ops = 0;
  const deadline = performance.now() + seconds * 1000;
  const body = pattern(4242, 4 * KiB);
  let x = 12345;
  await Promise.all(files.map(async (f) => {
    while (performance.now() < deadline) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      await f.write((x % (fileBytes / (4 * KiB))) * 4 * KiB, body);
      await f.fsync();
      ops++;
    }
  }));
  return ops / seconds;
}

async function randomReads(files: FileData[], fileBytes: number, seconds: number): Promise<number> {
  let ops = 0;
  const deadline = performance.now() + seconds * 1000;
  let x = 999;
  await Promise.all(files.flatMap((f) => [0, 1, 2, 3].map(async () => {
    while (performance.now() < deadline) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      await f.read((x % (fileBytes / (4 * KiB))) * 4 * KiB, 4 * KiB);
      ops++;
    }
  })));
  return ops / seconds;
}

async function prefill(v: VolumeData, firstIno: number, n: number, fileBytes: number): Promise<void> {
  const chunk = pattern(7, fuseIoBytes);
  await Promise.all(Array.from({ length: n }, async (_, i) => fileSeqWrite(v.open(firstIno + i, { sizeBytes: 0, mtimeNs: 0n, changeToken: 'new' }), v, fileBytes, chunk)));
}

async function sweep(r: Rig): Promise<void> {
  const sizes = (process.env.BENCH_BLOCK_SIZES ?? '4096,16384,65536,131072,262144,524288,1048576').split(',').map(Number);
  const seqBytes = Number(process.env.BENCH_SEQ_MIB ?? '128') * MiB;
  const fileBytes = 8 * MiB;
  const table = new Table({ head: ['block size', 'seq 128 KiB writes MiB/s', 'blocks per 128 KiB write', 'rand 4 KiB write+fsync IOPS (RMW, no cache)', 'rand 4 KiB read IOPS (no cache)'], style: { head: [], border: [] } });
  for (const B of sizes) {
    const vol = `sweep-${B}`;
    await r.volume(vol);
    note(`block size ${B}: sequential`);
    const seq = new VolumeData({ client: r.client, volume: { id: vol, blockSizeBytes: B, writeConcern: concern } });
    const ms = await fileSeqWrite(seq.open(2, { sizeBytes: 0, mtimeNs: 0n, changeToken: 'new' }), seq, seqBytes, pattern(B, fuseIoBytes));
    await prefill(seq, 100, randomWorkers, fileBytes);
    note(`block size ${B}: random`);
    const cold = new VolumeData({ client: r.client, volume: { id: vol, blockSizeBytes: B, writeConcern: concern }, cacheBytes: 0 });
    const files = Array.from({ length: randomWorkers }, (_, i) => cold.open(100 + i, { sizeBytes: fileBytes, mtimeNs: 0n, changeToken: 'x' }));
    const wIops = await randomWrites(files, fileBytes, phaseSeconds);
    const rIops = await randomReads(files, fileBytes, phaseSeconds);
    table.push([`${B / KiB} KiB`, mibps(seqBytes, ms).toFixed(0), Math.max(1, fuseIoBytes / B).toString(), wIops.toFixed(0), rIops.toFixed(0)]);
  }
  console.log(`\nblock-size sweep, ${concern}, 3 data nodes, ${seqBytes / MiB} MiB sequential, ${randomWorkers} files × ${fileBytes / MiB} MiB random, ${phaseSeconds} s per random phase`);
  console.log(table.toString());
}

async function compare(r: Rig): Promise<void> {
  const B = Number(process.env.BENCH_BLOCK_BYTES ?? String(defaultBlockSizeBytes));
  const bytes = Number(process.env.BENCH_FILE_MIB ?? '1024') * MiB;
  await r.volume('cmp');
  const blocks = Math.ceil(bytes / B);
  const body = pattern(11, B);
  // Warm-up (connections, JIT, the stores' first segments), so neither side runs cold.
  note('warm-up');
  const warm = Math.ceil(Math.min(bytes, 64 * MiB) / B);
  await r.client.writeBlocks('cmp', Array.from({ length: warm }, (_, i) => ({ inode: 9, blockNo: i, data: body })), concern);
  await r.client.readBlocks('cmp', Array.from({ length: warm }, (_, i) => ({ inode: 9, blockNo: i })));
  note('block client: sequential write');
  let t = performance.now();
  for (let b = 0; b < blocks; b += 256) {
    await r.client.writeBlocks('cmp', Array.from({ length: Math.min(256, blocks - b) }, (_, i) => ({ inode: 3, blockNo: b + i, data: body })), concern);
  }
  const clientWriteMs = performance.now() - t;
  note('file data: sequential write');
  const v = new VolumeData({ client: r.client, volume: { id: 'cmp', blockSizeBytes: B, writeConcern: concern } });
  const fileWriteMs = await fileSeqWrite(v.open(2, { sizeBytes: 0, mtimeNs: 0n, changeToken: 'new' }), v, bytes, pattern(12, fuseIoBytes));
  // Reads alternate (client, file, client, file …) and the best of each counts: the machine's
  // speed drifts within a run, and whichever side went first would otherwise pay for it.
  let clientReadMs = Infinity;
  let fileReadMs = Infinity;
  for (let round = 0; round < readRounds; round++) {
    note(`block client: sequential read ${round + 1}`);
    t = performance.now();
    for (let b = 0; b < blocks; b += 256) await r.client.readBlocks('cmp', Array.from({ length: Math.min(256, blocks - b) }, (_, i) => ({ inode: 3, blockNo: b + i })));
    clientReadMs = Math.min(clientReadMs, performance.now() - t);
    note(`file data: sequential read ${round + 1}`);
    const reader = new VolumeData({ client: r.client, volume: { id: 'cmp', blockSizeBytes: B, writeConcern: concern } });
    fileReadMs = Math.min(fileReadMs, await fileSeqRead(reader.open(2, { sizeBytes: bytes, mtimeNs: 0n, changeToken: 'x' }), bytes));
  }
  note('file data: random 4 KiB');
  const fileBytes = 16 * MiB;
  await prefill(v, 100, randomWorkers, fileBytes);
  const rv = new VolumeData({ client: r.client, volume: { id: 'cmp', blockSizeBytes: B, writeConcern: concern } });
  const files = Array.from({ length: randomWorkers }, (_, i) => rv.open(100 + i, { sizeBytes: fileBytes, mtimeNs: 0n, changeToken: 'x' }));
  const wIops = await randomWrites(files, fileBytes, phaseSeconds);
  const cold = new VolumeData({ client: r.client, volume: { id: 'cmp', blockSizeBytes: B, writeConcern: concern }, cacheBytes: 0 });
  const rIops = await randomReads(Array.from({ length: randomWorkers }, (_, i) => cold.open(100 + i, { sizeBytes: fileBytes, mtimeNs: 0n, changeToken: 'y' })), fileBytes, phaseSeconds);
  const table = new Table({ head: ['workload', 'FileData', 'BlockClient alone', 'ratio'], style: { head: [], border: [] } });
  table.push(['seq write MiB/s', mibps(bytes, fileWriteMs).toFixed(0), mibps(bytes, clientWriteMs).toFixed(0), (clientWriteMs / fileWriteMs).toFixed(2)]);
  table.push(['seq read MiB/s', mibps(bytes, fileReadMs).toFixed(0), mibps(bytes, clientReadMs).toFixed(0), (clientReadMs / fileReadMs).toFixed(2)]);
  table.push([`rand 4 KiB write+fsync IOPS (${randomWorkers} files)`, wIops.toFixed(0), '-', '-']);
  table.push([`rand 4 KiB read IOPS (no cache, ${randomWorkers * 4} readers)`, rIops.toFixed(0), '-', '-']);
  console.log(`\nfile data, ${bytes / MiB} MiB, ${B / KiB} KiB blocks, ${concern}, 3 data nodes (target for the FUSE path: ≥ 0.8× the block client)`);
  console.log(table.toString());
}

async function main(): Promise<void> {
  const r = await rig();
  try {
    if (process.argv.includes('--sweep')) await sweep(r);
    else await compare(r);
    console.log(`load average: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
  } finally {
    await r.client.close();
    await r.cluster.stopAll();
  }
}

await main();
