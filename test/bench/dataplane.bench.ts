/**
 * Data-plane benchmark: three data-node processes on loopback (3 replicas, one disk), driven
 * by the BlockClient from this process, side by side with fio on the same disk in the same run.
 *
 *   npm run bench:dataplane            (env BENCH_SECONDS=3 per timed phase, BENCH_WARMUP_SECONDS=3 before them)
 *   BENCH_ONLY=small npm run bench:dataplane   (only fio's synced QD1 reference and the 4 KiB writes)
 *   BENCH_TLS=both npm run bench:dataplane     (the cluster phases in plaintext and with mutual TLS, and the TLS / plain ratio; on = TLS only)
 *   BENCH_ENCRYPT=both npm run bench:dataplane (adds the same phases on an encrypted volume, in the
 *                                               same run: figures and the ratio; `on` encrypts the
 *                                               main volume; BENCH_ONLY=crypt runs only that comparison,
 *                                               then the encrypted reads with the rollback check off and on)
 *
 * Prints one table: our figure, fio's reference, the ratio; and the physical limit of three
 * replicas on one disk (fio sequential write / 3) with our replicated sequential write's ratio.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Table from 'cli-table3';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { StaticPlacementSource } from '../../dataplane/placement.js';
import { LevelBlockStore } from '../../dataplane/store/level-block-store.js';
import type { BodyLayout } from '../../dataplane/store/level-block-store.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { writeConcernOrder } from '../../proto/metadata-types.js';
import { pgStates, TestCluster, type TestClusterTls } from '../dataplane/cluster.js';
import type { TlsMaterial } from '../../proto/tls.js';
import { issueTestCert, makeTestPki } from '../support/tls.js';
import { pattern, tempDir } from '../dataplane/helpers.js';
import { pollUntil } from '../support/poll.js';
import { benchKeyring, encryptMode, sealCpuMicros } from './lib/crypt.js';

const phaseSeconds = Number(process.env.BENCH_SECONDS ?? '3');
const warmUpSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? '3');
const inFlight = 64;
const seqBlockBytes = 1024 * 1024;
const seqBlocks = Number(process.env.BENCH_SEQ_BLOCKS ?? '512');
const smallBlockBytes = 4096;
const randomSpaceBlocks = 1 << 18;
const pgCount = 12;
const MiB = 1024 * 1024;
const onlySmallWrites = process.env.BENCH_ONLY === 'small';
const encrypt = encryptMode(process.env.BENCH_ENCRYPT);
/** BENCH_ONLY=crypt: only the plain-versus-encrypted comparison (no fio, no store-only rows). */
const onlyCrypt = process.env.BENCH_ONLY === 'crypt';
/** BENCH_CONCERNS=durable,replicated limits the 4 KiB write phases to those concerns. */
const smallWriteConcerns = process.env.BENCH_CONCERNS === undefined ? writeConcernOrder : writeConcernOrder.filter((c) => (process.env.BENCH_CONCERNS ?? '').split(',').includes(c));

/** CPU time (user + system) a process has used so far, in µs: from /proc for the data nodes. */
function cpuMicros(pid: number | undefined): number {
  if (pid === undefined) { const u = process.cpuUsage(); return u.user + u.system; }
  // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * (1e6 / clockTicksPerSecond);
}
const clockTicksPerSecond = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || '100');

function ensureFio(): void {
  if (spawnSync('fio', ['--version']).status === 0) return;
  console.log('fio not found: installing it with apt-get');
  if (spawnSync('apt-get', ['install', '-y', 'fio'], { stdio: 'ignore' }).status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore' });
    if (spawnSync('apt-get', ['install', '-y', 'fio'], { stdio: 'ignore' }).status !== 0) throw new Error('could not install fio (apt-get install -y fio failed)');
  }
}

interface FioResult { bwMiBs: number; iops: number }
function fioRun(dir: string, name: string, args: string[]): FioResult {
  progress();
  const out = execFileSync('fio', ['--name', name, '--filename', path.join(dir, 'fio.dat'), '--output-format=json', ...args], { encoding: 'utf8', maxBuffer: 64 * MiB });
  const job = (JSON.parse(out) as { jobs: { read: { bw: number; iops: number }; write: { bw: number; iops: number } }[] }).jobs[0];
  if (job === undefined) throw new Error(`fio ${name} returned no job`);
  const side = job.write.bw > 0 ? job.write : job.read;
  return { bwMiBs: side.bw / 1024, iops: side.iops };
}

/** Runs `op` with `inFlight` workers until `seconds` pass (or `count` ops ran); returns ops/s. */
async function timed(seconds: number, count: number, op: (i: number) => Promise<unknown>): Promise<{ opsPerSec: number; ops: number }> {
  progress();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && performance.now() < deadline) await op(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (performance.now() - start) / 1000;
  return { opsPerSec: next / elapsed, ops: next };
}

const benchStart = performance.now();
let phase = 0;
function progress(): void {
  process.stderr.write(`[bench] phase ${++phase} at ${((performance.now() - benchStart) / 1000).toFixed(1)} s\n`);
}

/** Waits (bounded) until every replica has applied what its PGs' primaries have, so one phase's replication backlog does not run into the next phase. */
async function settle(cluster: TestCluster, ids: string[], tls: TlsMaterial | null, maxMs = 15_000): Promise<void> {
  await pollUntil('replicas to catch up with their primaries', async () => {
    const states = await Promise.all(ids.map((id) => pgStates(cluster.node(id).address, tls)));
    const high = new Map<string, number>();
    for (const list of states) for (const s of list) high.set(`${s.volumeId}/${s.pg}`, Math.max(high.get(`${s.volumeId}/${s.pg}`) ?? 0, s.appliedSeq));
    return states.every((list) => list.every((s) => s.appliedSeq >= (high.get(`${s.volumeId}/${s.pg}`) ?? 0)));
  }, maxMs, 50).catch(() => undefined); // a phase still starts if a backlog remains (bounded wait)
}

function rand(n: number): number {
  return Math.floor(Math.random() * n);
}

/** The store alone: 1 MiB durable writes, 64 in flight, with bodies inline in LevelDB or in segments. */
async function storeOnly(layout: BodyLayout, blocks: number): Promise<number> {
  const dir = await tempDir(`bench-store-${layout}`);
  const store = await LevelBlockStore.open({ dir, layout, minFreeBytes: 0 });
  try {
    const data = pattern(3, seqBlockBytes);
    const r = await timed(60, blocks, (i) => store.write({ kind: 'put', address: { volumeId: 'b', inode: 1, blockNo: i }, pg: 0, seq: i + 1, epoch: 1, data }, { sync: true }));
    return r.opsPerSec * seqBlockBytes / MiB;
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

interface FioRefs { seqW: FioResult; randW: FioResult; seqR: FioResult; randR: FioResult }
interface ClusterRun { rows: (string | number)[][]; cpuLines: string[]; seqWCpu: string; seqWMiBs: number; durableIops: number }

const fmt = (n: number, d = 0): string => n.toFixed(d);

/** BENCH_TLS: off (plaintext, the default), on (mutual TLS), both (each, in this run, with the ratio). */
const tlsModes = ((): ('plain' | 'tls')[] => {
  const v = process.env.BENCH_TLS ?? 'off';
  if (v === 'both') return ['plain', 'tls'];
  if (v === 'on') return ['tls'];
  if (v === 'off') return ['plain'];
  throw new Error(`BENCH_TLS=${v}: use off, on or both`);
})();

interface CryptRow { workload: string; unit: string; plain: number; encrypted: number; cpuPlain: number; cpuEncrypted: number }

/**
 * The same four phases on the plain volume `bench` and the encrypted `bench-enc`, interleaved
 * (plain, encrypted, per phase) so drift of the shared machine hits both alike. CPU is this
 * process's (the client, where sealing happens) per operation.
 */
async function cryptComparison(c: BlockClient, cluster: TestCluster, ids: string[]): Promise<CryptRow[]> {
  const big = pattern(5, seqBlockBytes);
  const small = pattern(6, smallBlockBytes);
  const blocks = Math.min(seqBlocks, 256);
  const clientCpu = (): number => { const u = process.cpuUsage(); return u.user + u.system; };
  const measure = async (vol: string, run: (vol: string) => Promise<{ opsPerSec: number; ops: number }>): Promise<{ rate: number; cpu: number }> => {
    await settle(cluster, ids, null);
    const before = clientCpu();
    const r = await run(vol);
    return { rate: r.opsPerSec, cpu: (clientCpu() - before) / Math.max(1, r.ops) };
  };
  const phases: { workload: string; unit: string; scale: number; run: (vol: string) => Promise<{ opsPerSec: number; ops: number }> }[] = [
    { workload: 'seq write 1 MiB, replicated', unit: 'MiB/s', scale: seqBlockBytes / MiB, run: (v) => timed(60, blocks, (i) => c.writeBlock(v, 21, i, big, 'replicated')) },
    { workload: 'rand write 4 KiB, durable', unit: 'IOPS', scale: 1, run: (v) => timed(phaseSeconds, Number.MAX_SAFE_INTEGER, () => c.writeBlock(v, 22, rand(randomSpaceBlocks), small, 'durable')) },
    { workload: 'seq read 1 MiB', unit: 'MiB/s', scale: seqBlockBytes / MiB, run: (v) => timed(60, blocks, (i) => c.readBlock(v, 21, i)) },
    { workload: 'rand read 4 KiB', unit: 'IOPS', scale: 1, run: (v) => timed(phaseSeconds, Number.MAX_SAFE_INTEGER, () => c.readBlock(v, 23, rand(256))) },
  ];
  // The 4 KiB read phase reads blocks that exist.
  for (const v of ['bench', 'bench-enc']) await timed(60, 256, (i) => c.writeBlock(v, 23, i, small, 'durable'));
  const rows: CryptRow[] = [];
  for (const ph of phases) {
    const p = await measure('bench', ph.run);
    const e = await measure('bench-enc', ph.run);
    rows.push({ workload: ph.workload, unit: ph.unit, plain: p.rate * ph.scale, encrypted: e.rate * ph.scale, cpuPlain: p.cpu, cpuEncrypted: e.cpu });
  }
  return rows;
}

function printCryptRows(rows: CryptRow[]): void {
  const t = new Table({ head: ['workload', 'plain', 'encrypted (AES-256-GCM)', 'encrypted / plain', 'client CPU µs/op plain / encrypted'] });
  for (const r of rows) {
    t.push([`${r.workload} (${r.unit})`, r.plain.toFixed(0), r.encrypted.toFixed(0), `${(r.encrypted / r.plain).toFixed(2)}x`, `${r.cpuPlain.toFixed(0)} / ${r.cpuEncrypted.toFixed(0)}`]);
  }
  console.log('Encryption cost: the same phases on a plain and an encrypted volume, one cluster, one run');
  console.log(t.toString());
  const big = sealCpuMicros(MiB, 256);
  const small = sealCpuMicros(4096, 20_000);
  console.log(`the cipher alone (CPU of this process): seal 1 MiB ${big.seal.toFixed(0)} µs (${(MiB / big.seal).toFixed(0)} MB/s), open ${big.open.toFixed(0)} µs; ` +
    `seal 4 KiB ${small.seal.toFixed(1)} µs, open ${small.open.toFixed(1)} µs`);
}

/**
 * The rollback check of encrypted reads (dataplane/client/README.md "Rollback"): the read phases of
 * the encrypted volume by a client with the check off (the read path before it) and one with it on
 * (the body from the primary plus one block-head request per other in-sync replica), interleaved.
 * Runs after `cryptComparison`, which wrote the blocks read here.
 */
async function freshnessComparison(off: BlockClient, on: BlockClient, cluster: TestCluster, ids: string[]): Promise<CryptRow[]> {
  const blocks = Math.min(seqBlocks, 256);
  const clientCpu = (): number => { const u = process.cpuUsage(); return u.user + u.system; };
  const measure = async (c: BlockClient, run: (c: BlockClient) => Promise<{ opsPerSec: number; ops: number }>): Promise<{ rate: number; cpu: number }> => {
    await settle(cluster, ids, null);
    const before = clientCpu();
    const r = await run(c);
    return { rate: r.opsPerSec, cpu: (clientCpu() - before) / Math.max(1, r.ops) };
  };
  const phases = [
    { workload: 'seq read 1 MiB', unit: 'MiB/s', scale: seqBlockBytes / MiB, run: (c: BlockClient) => timed(60, blocks, (i) => c.readBlock('bench-enc', 21, i)) },
    { workload: 'rand read 4 KiB', unit: 'IOPS', scale: 1, run: (c: BlockClient) => timed(phaseSeconds, Number.MAX_SAFE_INTEGER, () => c.readBlock('bench-enc', 23, rand(256))) },
  ];
  const rows: CryptRow[] = [];
  for (let round = 0; round < 2; round++) {
    for (const ph of phases) {
      const a = await measure(off, ph.run);
      const b = await measure(on, ph.run);
      rows.push({ workload: `${ph.workload} (round ${round + 1})`, unit: ph.unit, plain: a.rate * ph.scale, encrypted: b.rate * ph.scale, cpuPlain: a.cpu, cpuEncrypted: b.cpu });
    }
  }
  return rows;
}

function printFreshnessRows(rows: CryptRow[]): void {
  const t = new Table({ head: ['encrypted read', 'check off', 'check on (heads of 2 replicas)', 'on / off', 'client CPU µs/op off / on'] });
  for (const r of rows) {
    t.push([`${r.workload} (${r.unit})`, r.plain.toFixed(0), r.encrypted.toFixed(0), `${(r.encrypted / r.plain).toFixed(2)}x`, `${r.cpuPlain.toFixed(0)} / ${r.cpuEncrypted.toFixed(0)}`]);
  }
  console.log('Rollback check of encrypted reads: the same reads with the check off and on, one cluster, one run');
  console.log(t.toString());
}

/** BENCH_ONLY=crypt: three nodes, the plain and the encrypted volume, the comparison only. */
async function cryptOnly(): Promise<void> {
  const cluster = new TestCluster();
  const keys = await benchKeyring(['bench-enc']);
  const ids = ['n1', 'n2', 'n3'];
  let client: BlockClient | undefined;
  try {
    await Promise.all([cluster.start('n1', 'z1'), cluster.start('n2', 'z2'), cluster.start('n3', 'z3')]);
    const source = new StaticPlacementSource();
    for (const v of ['bench', 'bench-enc']) {
      const p = cluster.placement(v, Array.from({ length: pgCount }, (_, pg) => ({ replicas: ids, primary: ids[pg % 3] ?? 'n1', epoch: 1 })));
      await cluster.install(p);
      source.set(p);
    }
    client = new BlockClient({ placement: source, maxInFlight: inFlight, keyring: keys.keyring });
    const c = client;
    // Warm-up on both volumes (connections, JIT, the keyring's first unwrap and writer id).
    for (const v of ['bench', 'bench-enc']) await timed(warmUpSeconds, Number.MAX_SAFE_INTEGER, (i) => c.writeBlock(v, 9, i % 4096, pattern(2, smallBlockBytes), 'durable'));
    printCryptRows(await cryptComparison(c, cluster, ids));
    const unchecked = new BlockClient({ placement: source, maxInFlight: inFlight, keyring: keys.keyring, checkFreshness: false });
    try {
      printFreshnessRows(await freshnessComparison(unchecked, c, cluster, ids));
    } finally {
      await unchecked.close();
    }
    console.log(`load average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
  } finally {
    await client?.close();
    for (const id of [...cluster.nodes.keys()]) await cluster.stop(id);
    await cluster.stopAll();
    await keys.close();
  }
}

/** Three data nodes (mutual TLS with `tls`), the same phases as always; returns the rows, tagged [TLS]. */
async function clusterRun(tls: TestClusterTls | null, fio: FioRefs): Promise<ClusterRun> {
  const cluster = new TestCluster(tls);
  let client: BlockClient | undefined;
  let keys: Awaited<ReturnType<typeof benchKeyring>> | undefined;
  const rows: (string | number)[][] = [];
  const cpuLines: string[] = [];
  const tag = tls === null ? '' : ' [TLS]';
  const clientTls = tls?.client ?? null;
  try {
    await Promise.all([cluster.start('n1', 'z1'), cluster.start('n2', 'z2'), cluster.start('n3', 'z3')]);
    const ids = ['n1', 'n2', 'n3'];
    const placement = cluster.placement('bench', Array.from({ length: pgCount }, (_, pg) => ({ replicas: ids, primary: ids[pg % 3] ?? 'n1', epoch: 1 })));
    await cluster.install(placement);
    const source = new StaticPlacementSource();
    source.set(placement);
    if (encrypt !== 'off') {
      const enc = cluster.placement('bench-enc', Array.from({ length: pgCount }, (_, pg) => ({ replicas: ids, primary: ids[pg % 3] ?? 'n1', epoch: 1 })));
      await cluster.install(enc);
      source.set(enc);
      keys = await benchKeyring(encrypt === 'on' ? ['bench', 'bench-enc'] : ['bench-enc']);
    }
    client = new BlockClient({ placement: source, maxInFlight: inFlight, tls: clientTls, ...(keys === undefined ? {} : { keyring: keys.keyring }) });
    const c = client;
    const big = pattern(1, seqBlockBytes);
    const small = pattern(2, smallBlockBytes);
    // Warm up connections, placements and the JIT (V8 is still compiling the hot paths for the
    // first seconds; a 3 s phase right after start measured the compiler as much as the code).
    await timed(60, 256, (i) => c.writeBlock('bench', 9, i, small, 'durable'));
    await timed(warmUpSeconds, Number.MAX_SAFE_INTEGER, (i) => c.writeBlock('bench', 8, i % 4096, small, writeConcernOrder[i % writeConcernOrder.length] ?? 'durable'));
    if (!onlySmallWrites) await timed(60, 64, (i) => c.writeBlock('bench', 8, 1_000_000 + i, big, 'replicated'));
    const settled = (): Promise<void> => settle(cluster, ids, clientTls);
    await settled();
    const pids = [undefined, ...ids.map((id) => cluster.node(id).proc.pid)];
    /** CPU of this process and each data node over `phase` (replication backlog included), per unit of work. */
    const cpuPer = async (phase: () => Promise<{ opsPerSec: number; ops: number }>, units: (ops: number) => number): Promise<{ opsPerSec: number; ops: number; cpu: string }> => {
      const before = pids.map(cpuMicros);
      const r = await phase();
      await settled();
      const used = pids.map((pid, i) => (cpuMicros(pid) - (before[i] ?? 0)) / Math.max(1, units(r.ops)));
      const total = used.reduce((a, b) => a + b, 0);
      return { ...r, cpu: `${fmt(total)} µs in all: client ${fmt(used[0] ?? 0)}, ${ids.map((id, i) => `${id} ${fmt(used[i + 1] ?? 0)}`).join(', ')}` };
    };
    const seqW = onlySmallWrites
      ? { opsPerSec: 0, ops: 0, cpu: '' }
      : await cpuPer(() => timed(60, seqBlocks, (i) => c.writeBlock('bench', 1, i, big, 'replicated')), (ops) => ops * seqBlockBytes / MiB);
    const seqWMiBs = seqW.opsPerSec * seqBlockBytes / MiB;
    const limit = fio.seqW.bwMiBs / 3;
    if (!onlySmallWrites) {
      rows.push([`seq write 1 MiB, replicated (MiB/s)${tag}`, fmt(seqWMiBs), `${fmt(fio.seqW.bwMiBs)} (fio direct)`, fmt(seqWMiBs / fio.seqW.bwMiBs, 2)]);
      rows.push([`  vs 3-replica limit = fio seq write / 3${tag}`, fmt(seqWMiBs), fmt(limit), `${fmt((100 * seqWMiBs) / limit)}%`]);
    }
    const random: Record<WriteConcern, number> = { acknowledged: 0, durable: 0, replicated: 0, distributed: 0 };
    for (const concern of smallWriteConcerns) {
      await settled();
      // Replication that is still under way belongs to this phase's writes too (cpuPer settles).
      const r = await cpuPer(() => timed(phaseSeconds, Number.MAX_SAFE_INTEGER, () => c.writeBlock('bench', 2, rand(randomSpaceBlocks), small, concern)), (ops) => ops);
      cpuLines.push(`  ${concern.padEnd(12)}${tag} ${r.cpu}`);
      random[concern] = r.opsPerSec;
      rows.push([`rand write 4 KiB, ${concern}, ${inFlight} in flight (IOPS)${tag}`, fmt(r.opsPerSec), `${fmt(fio.randW.iops)} (fio fsync each, QD1)`, fmt(r.opsPerSec / fio.randW.iops, 2)]);
    }
    if (!onlySmallWrites) {
      await settled();
      const seqR = await timed(60, seqW.ops, (i) => c.readBlock('bench', 1, i));
      const seqRMiBs = seqR.opsPerSec * seqBlockBytes / MiB;
      rows.push([`seq read 1 MiB (MiB/s)${tag}`, fmt(seqRMiBs), `${fmt(fio.seqR.bwMiBs)} (fio direct)`, fmt(seqRMiBs / fio.seqR.bwMiBs, 2)]);
      // Random reads over blocks that exist (the random-write phases filled part of the space).
      const written = await timed(phaseSeconds, Number.MAX_SAFE_INTEGER, () => c.readBlock('bench', 1, rand(seqW.ops)));
      rows.push([`rand read 1 MiB, ${inFlight} in flight (MiB/s)${tag}`, fmt(written.opsPerSec * seqBlockBytes / MiB), '', '']);
      const smallReads = await timed(phaseSeconds, Number.MAX_SAFE_INTEGER, (i) => c.readBlock('bench', 9, i % 256));
      rows.push([`rand read 4 KiB, ${inFlight} in flight (IOPS)${tag}`, fmt(smallReads.opsPerSec), `${fmt(fio.randR.iops)} (fio direct QD64)`, fmt(smallReads.opsPerSec / fio.randR.iops, 2)]);
    }
    if (encrypt === 'on') cpuLines.push('BENCH_ENCRYPT=on: every figure above is of an encrypted volume');
    if (encrypt === 'both' && tls === null) printCryptRows(await cryptComparison(c, cluster, ids));
    return { rows, cpuLines, seqWCpu: seqW.cpu, seqWMiBs, durableIops: random.durable };
  } finally {
    await client?.close();
    await keys?.close();
    // Graceful stops, so a node run with --cpu-prof (GALLEON_DATA_NODE_FLAGS) writes its profile.
    for (const id of [...cluster.nodes.keys()]) await cluster.stop(id);
    await cluster.stopAll();
  }
}

/**
 * A CA and node certificates under a temp folder; the bench holds a node certificate too, as it
 * installs placements by hand (a node-only route).
 */
async function benchTls(dir: string): Promise<TestClusterTls> {
  const pki = await makeTestPki(dir, []);
  const client = await issueTestCert(pki.caDir, 'node', 'bench-harness', path.join(dir, 'harness'));
  return { nodeDir: async (id) => { await issueTestCert(pki.caDir, 'node', id, path.join(dir, 'nodes', id)); return path.join(dir, 'nodes', id); }, client };
}

async function main(): Promise<void> {
  if (onlyCrypt) return cryptOnly();
  ensureFio();
  const fioDir = await tempDir('bench-fio');
  const tlsDir = await tempDir('bench-tls');
  const rows: (string | number)[][] = [];
  try {
    // fio reference on the same disk, first, so our nodes' page cache does not disturb it.
    const none: FioResult = { bwMiBs: 0, iops: 0 };
    const fio: FioRefs = {
      seqW: onlySmallWrites ? none : fioRun(fioDir, 'seqwrite', ['--rw=write', '--bs=1M', '--size=1G', '--direct=1', '--end_fsync=1', '--ioengine=libaio', '--iodepth=16']),
      randW: fioRun(fioDir, 'randwrite-fsync', ['--rw=randwrite', '--bs=4k', '--size=256M', '--fsync=1', '--iodepth=1', '--time_based', `--runtime=${phaseSeconds}`]),
      seqR: onlySmallWrites ? none : fioRun(fioDir, 'seqread', ['--rw=read', '--bs=1M', '--size=1G', '--direct=1', '--ioengine=libaio', '--iodepth=16']),
      randR: onlySmallWrites ? none : fioRun(fioDir, 'randread', ['--rw=randread', '--bs=4k', '--size=1G', '--direct=1', '--ioengine=libaio', '--iodepth=64', '--time_based', `--runtime=${phaseSeconds}`]),
    };
    await rm(fioDir, { recursive: true, force: true });

    if (!onlySmallWrites) {
      const inline = await storeOnly('inline', 256);
      const segments = await storeOnly('segments', 256);
      rows.push(['store only: 1 MiB durable, bodies in LevelDB (MiB/s)', fmt(inline), `${fmt(fio.seqW.bwMiBs)} (fio direct)`, fmt(inline / fio.seqW.bwMiBs, 2)]);
      rows.push(['store only: 1 MiB durable, bodies in segments (MiB/s)', fmt(segments), `${fmt(fio.seqW.bwMiBs)} (fio direct)`, fmt(segments / fio.seqW.bwMiBs, 2)]);
    }
    const runs: { mode: 'plain' | 'tls'; run: ClusterRun }[] = [];
    for (const mode of tlsModes) runs.push({ mode, run: await clusterRun(mode === 'tls' ? await benchTls(tlsDir) : null, fio) });
    for (const r of runs) rows.push(...r.run.rows);
    const table = new Table({ head: ['workload', 'GalleonFS', 'reference', 'ratio'] });
    for (const r of rows) table.push(r.map(String));
    console.log(table.toString());
    const plain = runs.find((r) => r.mode === 'plain')?.run;
    const tls = runs.find((r) => r.mode === 'tls')?.run;
    if (plain !== undefined && tls !== undefined) console.log(tlsCostTable(plain, tls));
    console.log(`load average during the run: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
    for (const { mode, run } of runs) {
      if (!onlySmallWrites) console.log(`CPU per MiB of replicated 1 MiB writes${mode === 'tls' ? ' [TLS]' : ''} (user + system, replication backlog included): ${run.seqWCpu}`);
      console.log(`CPU per 4 KiB write${mode === 'tls' ? ' [TLS]' : ''} (user + system, replication backlog included):`);
      for (const l of run.cpuLines) console.log(l);
    }
    const first = runs[0]?.run;
    if (first !== undefined) {
      const limit = fio.seqW.bwMiBs / 3;
      console.log(`targets: replicated seq write ${fmt((100 * first.seqWMiBs) / limit)}% of the 3-replica limit (target >= 70%); ` +
        `durable 4 KiB at ${inFlight} in flight ${fmt(first.durableIops / fio.randW.iops, 1)}x fio's synced QD1 IOPS (target >= 2x)`);
    }
  } finally {
    await rm(fioDir, { recursive: true, force: true });
    await rm(tlsDir, { recursive: true, force: true });
  }
}

/** The same workloads, mutual TLS against plaintext, measured in this run: TLS / plain. */
function tlsCostTable(plain: ClusterRun, tls: ClusterRun): string {
  const table = new Table({ head: ['workload (BENCH_TLS=both)', 'plaintext', 'mutual TLS', 'TLS / plain'] });
  for (const [i, row] of plain.rows.entries()) {
    const other = tls.rows[i];
    if (other === undefined || String(row[0]).startsWith('  ')) continue;
    const a = Number(row[1]);
    const b = Number(other[1]);
    table.push([String(row[0]), String(row[1]), String(other[1]), a > 0 ? fmt(b / a, 2) : '']);
  }
  return table.toString();
}

await main();
