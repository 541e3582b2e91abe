/**
 * `npm run bench:vfs`: GalleonFS mounts of a real `galleon up` cluster (three daemons, each
 * mounting the volume) beside the alternatives, in one run:
 *  - sequential write then read of BENCH_VFS_MIB (default 1024) MiB through node 1's mount
 *    (1 MiB write calls; the kernel splits them into 128 KiB FUSE writes), read back twice,
 *    through node 2's and then node 3's mount (no block of it in their caches), beside the same
 *    bytes through the BlockClient alone (128 KiB blocks, 16 MiB batches as a flush sends them;
 *    reads 64 at a time) and a local directory (fsync'd). Each read alternates mount and block
 *    client in BENCH_VFS_SLICE_MIB (256) slices, so that both see the same machine load (the
 *    mount's read-ahead may fetch ≤ 10 MiB of its next slice meanwhile: ≤ 4 % in its favour);
 *  - small files (create, write 4 KiB, close) per second on one and four workers (a child process
 *    drives every target alike), beside a local directory, the FUSE ceiling (an in-memory file
 *    system served through our FUSE layer and fuse-native, same mount options: what any file
 *    system in our JS layer can reach) and bindfs over a local directory (Debian `bindfs`,
 *    skipped when absent); the gap to bindfs is split into the binding's share and ours;
 *  - `stat` of every entry and `ls -l` of a BENCH_VFS_DIR_ENTRIES (default 10,000) entry directory,
 *    on the node that made it and on another node.
 * BENCH_VFS_PARTS=seq,small,dir picks the parts (default all).
 * Prints figures and ratios. The cluster is torn down at the end, even on failure.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { VolumeKeyring } from '../../dataplane/client/keyring.js';
import { InternalKeyProvider } from '../../dataplane/client/key-providers.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { MetadataClient } from '../../metadata/service/client.js';
import type { Volume } from '../../proto/metadata-types.js';
import { fuseMountPoints, mountFs, unmountDir } from '../../vfs/fuse/index.js';
import { bindingAttrCacheMs } from '../../vfs/fs/mount-volume.js';
import { tempMountPoint } from '../support/fuse.js';
import { MemFs } from '../support/memfs.js';
import { startMountedCluster, waitMounted, type MountedCluster } from '../vfs/cluster-mounts.js';
import { runCli, waitFor } from '../cli/helpers.js';
import { upClientEnv } from '../support/tls.js';
import { loadTlsDir } from '../../cli/lib/tls.js';
import { defaultNodeTokenFileName } from '../../cli/local/cluster.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const totalMiB = Number(process.env.BENCH_VFS_MIB ?? '1024');
const smallFiles = Number(process.env.BENCH_VFS_SMALL_FILES ?? '2000');
const dirEntries = Number(process.env.BENCH_VFS_DIR_ENTRIES ?? '10000');
/** Which parts run: any of seq,small,dir (default all). */
const parts = new Set((process.env.BENCH_VFS_PARTS ?? 'seq,small,dir').split(',').map((p) => p.trim()));
const writeCallBytes = MiB;
/** Sequential reads alternate between the mount and the block client in slices of this size. */
const sliceMiB = Number(process.env.BENCH_VFS_SLICE_MIB ?? '256');
/** The nodes whose mounts read the file, in order (each never cached it): BENCH_VFS_READ_NODES, default 2,3. */
const readNodes = (process.env.BENCH_VFS_READ_NODES ?? '2,3').split(',').map(Number);
const blockBytes = 128 * 1024;
const batchBytes = 16 * MiB;
const smallFileBytes = 4096;
const t0 = performance.now();
const note = (what: string): void => { process.stderr.write(`[bench:vfs] ${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s\n`); };

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const s = performance.now();
  await fn();
  return (performance.now() - s) / 1000;
}

async function seqWrite(path: string, chunk: Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let i = 0; i < totalMiB * MiB / chunk.length; i++) await fh.write(chunk, 0, chunk.length, i * chunk.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Reads the file through the mount from start to end in `sliceMiB` slices on one open handle;
 * after each, the same slice through the block client. Returns each side's total seconds.
 */
async function interleavedRead(path: string, readByClient: ClientSlice, daemonPids: number[], readerIndex: number): Promise<ReadRun> {
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(writeCallBytes);
  const sliceBytes = sliceMiB * MiB;
  let mount = 0;
  let client = 0;
  const cpu = { mount: noCpu(), client: noCpu() };
  try {
    for (let at = 0; at < totalMiB * MiB; at += sliceBytes) {
      const end = Math.min(totalMiB * MiB, at + sliceBytes);
      const c0 = await cpuNow(daemonPids);
      mount += await timed(async () => {
        for (let p = at; p < end; p += buf.length) if ((await fh.read(buf, 0, buf.length, p)).bytesRead !== buf.length) throw new Error(`short read at ${p}`);
      });
      const c1 = await cpuNow(daemonPids);
      client += await readByClient(at / blockBytes, end / blockBytes);
      const c2 = await cpuNow(daemonPids);
      addCpu(cpu.mount, c0, c1, readerIndex);
      addCpu(cpu.client, c1, c2, readerIndex);
    }
  } finally {
    await fh.close();
  }
  return { mount, client, cpu };
}

async function seqRead(path: string): Promise<void> {
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(writeCallBytes);
  try {
    for (let at = 0; ; at += buf.length) if ((await fh.read(buf, 0, buf.length, at)).bytesRead === 0) break;
  } finally {
    await fh.close();
  }
}

type ReadRun = { mount: number; client: number; cpu: { mount: CpuSplit; client: CpuSplit } };
/**
 * CPU seconds spent during one side's slices: the reading node's daemon (all its threads, and its
 * JS thread alone: what a mount's daemon cannot spread over cores), the other daemons, this
 * process (the reader or the block client).
 */
type CpuSplit = { reader: number; readerJs: number; others: number; bench: number };
const noCpu = (): CpuSplit => ({ reader: 0, readerJs: 0, others: 0, bench: 0 });

/** CPU seconds (user + system) from a /proc stat file (USER_HZ = 100 on Linux). */
async function statCpuSec(file: string): Promise<number> {
  const stat = await readFile(file, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

type CpuNow = { proc: number[]; js: number[]; bench: number };
/** The daemons' CPU seconds (whole process; main thread = the JS thread) and this process's. */
async function cpuNow(daemonPids: number[]): Promise<CpuNow> {
  const u = process.cpuUsage();
  return {
    proc: await Promise.all(daemonPids.map((p) => statCpuSec(`/proc/${p}/stat`))),
    js: await Promise.all(daemonPids.map((p) => statCpuSec(`/proc/${p}/task/${p}/stat`))),
    bench: (u.user + u.system) / 1e6,
  };
}

function addCpu(into: CpuSplit, before: CpuNow, after: CpuNow, readerIndex: number): void {
  const d = after.proc.map((a, i) => a - (before.proc[i] ?? 0));
  into.reader += d[readerIndex] ?? 0;
  into.readerJs += (after.js[readerIndex] ?? 0) - (before.js[readerIndex] ?? 0);
  into.others += d.reduce((x, y) => x + y, 0) - (d[readerIndex] ?? 0);
  into.bench += after.bench - before.bench;
}
/** Reads blocks [from, to) of the block client's copy; returns the seconds it took. */
type ClientSlice = (fromBlock: number, toBlock: number) => Promise<number>;

/** Writes the same bytes through the BlockClient alone; `reads` times the mount and the client alternately. */
async function blockClientOnly(bindAddresses: string[], clusterDir: string, volumeName: string, chunk: Buffer, pids: number[], reads: (readByClient: ClientSlice) => Promise<ReadRun[]>): Promise<{ write: number; writeCpu: CpuSplit; reads: ReadRun[] }> {
  // As a mount's own block client talks: the node credential (data keys are for nodes only) over
  // mutual TLS with the operator's certificate (block reads and writes are client routes).
  const { GALLEON_TLS_DIR: tlsDir } = upClientEnv(clusterDir);
  const tls = tlsDir === '' ? null : await loadTlsDir(tlsDir, 'cli');
  const token = (await readFile(join(clusterDir, defaultNodeTokenFileName), 'utf8').catch(() => '')).trim();
  const auth = { tls, ...(token === '' ? {} : { token }) };
  const api = new MetadataClient({ addresses: bindAddresses, ...auth });
  // Seals as the mounts do (the bench volume's class encrypts), so the ratio compares like with like.
  const keyring = new VolumeKeyring(api, new InternalKeyProvider(join(clusterDir, 'cluster.key')));
  const client = new BlockClient({ placement: new MetadataPlacementSource(api), coalesceWrites: false, maxAttempts: 20, keyring, ...auth });
  try {
    const vol: Volume = await api.getVolume(volumeName);
    const ino = 1_000_000_000;
    const blocks = totalMiB * MiB / blockBytes;
    const perBatch = batchBytes / blockBytes;
    note('sequential: block client write');
    const writeCpu = noCpu();
    const w0 = await cpuNow(pids);
    const write = await timed(async () => {
      for (let b = 0; b < blocks; b += perBatch) {
        const batch = Array.from({ length: Math.min(perBatch, blocks - b) }, (_, i) => ({ inode: ino, blockNo: b + i, data: chunk.subarray(0, blockBytes) }));
        await client.writeBlocks(vol.id, batch, vol.writeConcern);
      }
    });
    addCpu(writeCpu, w0, await cpuNow(pids), 0);
    const runs = await reads((fromBlock, toBlock) => timed(async () => {
      for (let b = fromBlock; b < toBlock; b += 64) await client.readBlocks(vol.id, Array.from({ length: Math.min(64, toBlock - b) }, (_, i) => ({ inode: ino, blockNo: b + i })));
    }));
    for (let b = 0; b < blocks; b += 256) await Promise.all(Array.from({ length: Math.min(256, blocks - b) }, (_, i) => client.deleteBlock(vol.id, ino, b + i, vol.writeConcern)));
    return { write, writeCpu, reads: runs };
  } finally {
    await client.close();
    api.close();
  }
}

/**
 * create + write 4 KiB + close, `smallFiles` times, by `workers` async workers in a child node
 * process (the same load for every target: a mount served by this process's event loop — the
 * FUSE ceiling — must not share it with the load).
 */
async function smallFilesPerSec(dir: string, workers: number): Promise<number> {
  await mkdir(dir, { recursive: true });
  const js = `const fs=require('fs/promises');const b=require('crypto').randomBytes(${smallFileBytes});let next=0;` +
    `const t=process.hrtime.bigint();Promise.all(Array.from({length:${workers}},async()=>{` +
    `for(let i=next++;i<${smallFiles};i=next++)await fs.writeFile(${JSON.stringify(dir)}+'/f'+i,b)}))` +
    `.then(()=>console.log(Number(process.hrtime.bigint()-t)/1e9))`;
  const { stdout } = await run(process.execPath, ['-e', js], { maxBuffer: MiB });
  return smallFiles / Number(stdout.trim());
}

/**
 * The FUSE ceiling: the same small-file load through a mount of an in-memory file system that
 * discards data (test/support/memfs.ts), served by this process through our FUSE layer and
 * fuse-native with a GalleonFS mount's options — what any file system in our JS layer can reach.
 */
async function fuseCeiling(workers: number, requests?: (perFile: string) => void): Promise<number> {
  const mp = tempMountPoint();
  const m = await mountFs(mp.dir, new MemFs({ discardData: true }), {
    fsname: 'galleon:ceiling', allowOther: process.getuid?.() === 0, attrTimeoutSec: 0, entryTimeoutSec: 1, attrCacheMs: bindingAttrCacheMs, // as mount-volume.ts
  });
  try {
    const before = m.requests();
    const rate = await smallFilesPerSec(join(mp.dir, `small${workers}`), workers);
    requests?.(perFileRequests(before, m.requests()));
    return rate;
  } finally {
    await m.unmount();
    await mp.cleanup();
  }
}

async function bigDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = next++; i < dirEntries; i = next++) await writeFile(join(dir, `e${i}`), '');
  }));
}

async function statAll(dir: string): Promise<number> {
  let next = 0;
  return timed(() => Promise.all(Array.from({ length: 8 }, async () => {
    for (let i = next++; i < dirEntries; i = next++) await stat(join(dir, `e${i}`));
  })));
}

/** Node 1's count of namespace writes (`vfs status --json`), once every released handle's close was sent. */
/** FUSE requests per small file by op, JS and (native.*) answered in the binding: "getattr 2.00, …". */
function perFileRequests(before: Record<string, number>, after: Record<string, number>): string {
  const rows = Object.entries(after).map(([k, v]) => [k, (v - (before[k] ?? 0)) / smallFiles] as const).filter(([, v]) => v >= 0.01);
  const js = rows.filter(([k]) => !k.startsWith('native.')).reduce((t, [, v]) => t + v, 0);
  return `${rows.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')} (${js.toFixed(2)} crossings to JS per file)`;
}

async function fuseRequestCounts(c: MountedCluster, node = 1): Promise<Record<string, number>> {
  const r = await c.cli(node, ['vfs', 'status', 'bench', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { fuseRequests?: Record<string, number> }).fuseRequests ?? {};
}

async function namespaceWrites(c: MountedCluster, node = 1): Promise<number> {
  const s = await waitFor(`node ${node} sent every pending close`, 30_000, async () => {
    const r = await c.cli(node, ['vfs', 'status', 'bench', '--json']);
    if (r.code !== 0) throw new Error(r.stderr);
    const st = JSON.parse(r.stdout) as { namespaceWrites: number; pendingCloses: number };
    return st.pendingCloses === 0 ? st : null;
  });
  return s.namespaceWrites;
}

/**
 * Node 2's daemon again, with GALLEON_WRITEBACK=0 (vfs/fs/mount-volume.ts): its mount creates and
 * closes synchronously, as before write-back existed — the "before" of the small-file figures, in
 * the same run and on the same cluster as node 1's "after".
 */
async function restartWithoutWriteback(c: MountedCluster): Promise<void> {
  const node = c.nodes[1];
  if (node === undefined) throw new Error('no node 2');
  const stopped = await c.cli(2, ['daemon', 'stop']);
  if (stopped.code !== 0) throw new Error(`daemon stop: ${stopped.stderr}`);
  const started = await runCli(['daemon', 'start', '-d', '--node-id', node.id, '--storage-path', node.storagePath, '--bind-address', node.bindAddress,
    '--ipc-address', node.ipcAddress, '--data-address', node.dataAddress, '--target-voters', '3', '--mount-point', node.mountPoint,
    '--auth', '--node-token-file', `${c.dir}/node-token`, '--daemon-address', node.ipcAddress], { ...upClientEnv(c.dir), GALLEON_WRITEBACK: '0' });
  if (started.code !== 0) throw new Error(`daemon start: ${started.stderr}`);
  await waitMounted(c.path(2, 'bench'));
  await waitFor('node 2 serves bench', 60_000, async () => { try { await readdir(c.path(2, 'bench')); return true; } catch { return false; } });
}

/** The daemons' pids, in node order (cluster.json, written by `galleon up`). */
async function daemonPids(c: MountedCluster): Promise<number[]> {
  const cluster = JSON.parse(await readFile(join(c.dir, 'cluster.json'), 'utf8')) as { nodes: { pid: number }[] };
  return cluster.nodes.map((n) => n.pid);
}

/** The reading mount's block cache after a pass (`vfs status --json`): hits, misses served by a fetch in flight, fetches. */
async function cacheLine(c: MountedCluster, node: number): Promise<string> {
  const r = await c.cli(node, ['vfs', 'status', 'bench', '--json']);
  if (r.code !== 0) return `vfs status failed: ${r.stderr.trim()}`;
  return `block cache ${JSON.stringify((JSON.parse(r.stdout) as { readCache?: unknown }).readCache ?? null)}`;
}

/** The mount's block-cache counters (`vfs status --json`). */
async function readCacheOf(c: MountedCluster, node: number): Promise<Record<string, number>> {
  const r = await c.cli(node, ['vfs', 'status', 'bench', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { readCache?: Record<string, number> }).readCache ?? {};
}

/** Block-cache lookups and data-plane fetches per file between two counter readings. */
function perFileReads(before: Record<string, number>, after: Record<string, number>, files: number): string {
  const d = (k: string): string => (((after[k] ?? 0) - (before[k] ?? 0)) / files).toFixed(3);
  return `fetches ${d('fetches')}, cache misses ${d('misses')}, hits ${d('hits')}`;
}

const fmt = (x: number, d = 1): string => x.toFixed(d);
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');

async function main(): Promise<void> {
  note(`starting a 3-node cluster (${totalMiB} MiB sequential, ${smallFiles} small files, ${dirEntries}-entry dir)`);
  const c = await startMountedCluster('galleon-bench-vfs-');
  const local = join(c.dir, 'local');
  const bindSrc = join(c.dir, 'bind-src');
  const bindMnt = join(c.dir, 'bind-mnt');
  try {
    const created = await c.cli(1, ['volume', 'create', '--name', 'bench', '--size', `${Math.max(4, Math.ceil(totalMiB * 3 / 1024))}G`, '--access-mode', 'ReadWriteMany']);
    if (created.code !== 0) throw new Error(created.stderr);
    await waitMounted(c.path(1, 'bench'));
    await waitMounted(c.path(2, 'bench'));
    await waitMounted(c.path(3, 'bench'));
    await mkdir(local, { recursive: true });
    const chunk = randomBytes(writeCallBytes);
    const seq = new Table({ head: ['sequential', 'write MiB/s', 'read MiB/s (run 1 / run 2 …)', 'write vs block client', 'read vs block client (run 1 / run 2 …)'] });
    const rate = (s: number): number => totalMiB / s;
    const gap: string[] = [];
    if (parts.has('seq')) {
      note('sequential: mount write');
      const pids = await daemonPids(c);
      // CPU of the write: node 1's daemon (the mount's, and a data node like the others) against the same daemon when the block client writes.
      const mountWriteCpu = noCpu();
      const mw0 = await cpuNow(pids);
      const mw = await timed(() => seqWrite(c.path(1, 'bench', 'seq'), chunk));
      addCpu(mountWriteCpu, mw0, await cpuNow(pids), 0);
      const bc = await blockClientOnly(c.nodes.map((n) => n.bindAddress), c.dir, 'bench', chunk, pids, async (readByClient) => {
        // Each mount read goes through a node whose block cache never held the file (node 2,
        // then node 3), in slices alternating with the same slices through the block client, so
        // that both see the same load (on this shared machine it swings 2x within seconds).
        const runs: ReadRun[] = [];
        for (const node of readNodes) {
          note(`sequential: read through node ${node}'s mount and the block client, alternating ${sliceMiB} MiB slices`);
          runs.push(await interleavedRead(c.path(node, 'bench', 'seq'), readByClient, pids, node - 1));
          gap.push(`sequential read through node ${node}: ${await cacheLine(c, node)}`);
        }
        return runs;
      });
      await rm(c.path(1, 'bench', 'seq'));
      note('sequential: local directory');
      const lw = await timed(() => seqWrite(join(local, 'seq'), chunk));
      const lr = await timed(() => seqRead(join(local, 'seq')));
      await rm(join(local, 'seq'));
      const r1 = bc.reads[0];
      if (r1 === undefined) throw new Error('no read run (BENCH_VFS_READ_NODES)');
      const both = (f: (r: ReadRun) => string): string => bc.reads.map(f).join(' / ');
      seq.push([`GalleonFS mount (write node 1, read nodes ${readNodes.join(' / ')})`, fmt(rate(mw)), both((r) => fmt(rate(r.mount))), ratio(rate(mw), rate(bc.write)), both((r) => ratio(rate(r.mount), rate(r.client)))]);
      seq.push(['BlockClient alone', fmt(rate(bc.write)), both((r) => fmt(rate(r.client))), '1.00x', '1.00x']);
      const perGiB = (x: CpuSplit): string => `reading daemon ${fmt(x.reader * 1024 / totalMiB, 2)} (its JS thread ${fmt(x.readerJs * 1024 / totalMiB, 2)}) + other daemons ${fmt(x.others * 1024 / totalMiB, 2)} + bench process ${fmt(x.bench * 1024 / totalMiB, 2)}`;
      gap.push(`sequential write, CPU s per GiB (node 1's daemon in the first column): mount ${perGiB(mountWriteCpu)}; block client ${perGiB(bc.writeCpu)}`);
      for (const [i, r] of bc.reads.entries()) {
        gap.push(`sequential read run ${i + 1} (node ${readNodes[i] ?? '?'}), CPU s per GiB: mount slices ${perGiB(r.cpu.mount)}; block-client slices ${perGiB(r.cpu.client)}`);
      }
      seq.push(['local directory (page cache on read)', fmt(rate(lw)), fmt(rate(lr)), ratio(rate(lw), rate(bc.write)), ratio(rate(lr), rate(r1.client))]);
    }

    const small = new Table({ head: ['small files (create, 4 KiB, close)', '1 worker files/s', '4 workers files/s', 'GalleonFS vs this (1 / 4)'] });
    const dir = new Table({ head: [`${dirEntries}-entry directory`, 'stat all (s)', 'ls -l (s)'] });
    if (parts.has('small')) {
      note('small files');
      const writesBefore = await namespaceWrites(c);
      const requestsBefore = await fuseRequestCounts(c);
      const cacheBefore = await readCacheOf(c, 1);
      const g1 = await smallFilesPerSec(c.path(1, 'bench', 'small1'), 1);
      gap.push(`small files, FUSE requests per file on node 1's mount (1 worker): ${perFileRequests(requestsBefore, await fuseRequestCounts(c))}`);
      const g4 = await smallFilesPerSec(c.path(1, 'bench', 'small4'), 4);
      // Then durable: what the close left buffered (write-back) committed by `vfs sync`.
      const syncSec = await timed(async () => { const r = await c.cli(1, ['vfs', 'sync', 'bench']); if (r.code !== 0) throw new Error(r.stderr); });
      gap.push(`small files, block reads per file on node 1's mount (both runs and the sync; each an encrypted read with its replica heads): ${perFileReads(cacheBefore, await readCacheOf(c, 1), 2 * smallFiles)}`);
      const perFile = (await namespaceWrites(c) - writesBefore) / (2 * smallFiles);
      gap.push(`small files, namespace (Raft) writes per file on node 1's mount: ${perFile.toFixed(3)} (delegations, inode ranges, batches and closes included)`);
      gap.push(`small files, node 1: the ${2 * smallFiles} files closed, then \`vfs sync\` made them durable in ${syncSec.toFixed(2)} s ` +
        `(${fmt(2 * smallFiles / (smallFiles / g1 + smallFiles / g4 + syncSec), 0)} files/s over both runs with the sync)`);
      note('small files: node 2 restarted with GALLEON_WRITEBACK=0 (synchronous creates and closes, the code before write-back)');
      await restartWithoutWriteback(c);
      const syncBefore = await namespaceWrites(c, 2);
      const s1 = await smallFilesPerSec(c.path(2, 'bench', 'sync1'), 1);
      const s4 = await smallFilesPerSec(c.path(2, 'bench', 'sync4'), 4);
      const syncPerFile = (await namespaceWrites(c, 2) - syncBefore) / (2 * smallFiles);
      gap.push(`small files, namespace (Raft) writes per file without write-back (node 2): ${syncPerFile.toFixed(3)}`);
      small.push(['GalleonFS mount, write-back off (before; node 2)', fmt(s1, 0), fmt(s4, 0), `${ratio(g1, s1)} / ${ratio(g4, s4)}`]);
      const l1 = await smallFilesPerSec(join(local, 'small1'), 1);
      const l4 = await smallFilesPerSec(join(local, 'small4'), 4);
      small.unshift(['GalleonFS mount, write-back (after; node 1)', fmt(g1, 0), fmt(g4, 0), '-']);
      small.push(['local directory', fmt(l1, 0), fmt(l4, 0), `${ratio(g1, l1)} / ${ratio(g4, l4)}`]);
      note('small files: FUSE ceiling (in-memory file system in our FUSE layer)');
      const c1 = await fuseCeiling(1, (perFile) => gap.push(`small files, FUSE requests per file in the ceiling (1 worker): ${perFile}`));
      const c4 = await fuseCeiling(4);
      small.push(['FUSE ceiling: in-memory fs in our FUSE layer', fmt(c1, 0), fmt(c4, 0), `${ratio(g1, c1)} / ${ratio(g4, c4)}`]);
      const haveBindfs = await run('which', ['bindfs']).then(() => true, () => false);
      if (haveBindfs) {
        note('small files: bindfs');
        await mkdir(bindSrc, { recursive: true });
        await mkdir(bindMnt, { recursive: true });
        await run('bindfs', [bindSrc, bindMnt]);
        try {
          const b1 = await smallFilesPerSec(join(bindMnt, 'small1'), 1);
          const b4 = await smallFilesPerSec(join(bindMnt, 'small4'), 4);
          small.push(['bindfs over a local directory', fmt(b1, 0), fmt(b4, 0), `${ratio(g1, b1)} / ${ratio(g4, b4)}`]);
          // How much of the gap to bindfs is the binding's (ceiling ÷ bindfs) and how much ours (GalleonFS ÷ ceiling).
          gap.push(`small files, GalleonFS ÷ bindfs ${ratio(g1, b1)} / ${ratio(g4, b4)} (1 / 4 workers) = ` +
            `the binding's share (FUSE ceiling ÷ bindfs) ${ratio(c1, b1)} / ${ratio(c4, b4)} × ours (GalleonFS ÷ ceiling) ${ratio(g1, c1)} / ${ratio(g4, c4)}`);
        } finally {
          await unmountDir(bindMnt, true).catch(() => undefined);
        }
      } else {
        small.push(['bindfs (not installed: apt-get install bindfs)', '-', '-', '-']);
      }
    }

    if (parts.has('dir')) {
      note(`${dirEntries}-entry directory`);
      await bigDir(c.path(1, 'bench', 'big'));
      await bigDir(join(local, 'big'));
      const ls = (d: string): Promise<number> => timed(() => run('ls', ['-l', d], { maxBuffer: 64 * MiB }));
      dir.push(['GalleonFS, node that made it', fmt(await statAll(c.path(1, 'bench', 'big')), 2), fmt(await ls(c.path(1, 'bench', 'big')), 2)]);
      dir.push(['GalleonFS, another node', fmt(await statAll(c.path(3, 'bench', 'big')), 2), fmt(await ls(c.path(3, 'bench', 'big')), 2)]);
      dir.push(['local directory', fmt(await statAll(join(local, 'big')), 2), fmt(await ls(join(local, 'big')), 2)]);
    }

    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    const shown = [parts.has('seq') ? seq : null, parts.has('small') ? small : null, parts.has('dir') ? dir : null].filter((t) => t !== null).map((t) => t.toString());
    process.stdout.write(`\nbench:vfs ${new Date().toISOString()} — ${totalMiB} MiB, load average ${load}\n${[...shown, ...gap].join('\n')}\n`);
  } finally {
    note('tearing down');
    for (const mp of await fuseMountPoints()) if (mp === bindMnt) await unmountDir(mp, true).catch(() => undefined);
    await c.teardown();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:vfs failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
