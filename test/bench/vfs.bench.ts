/**
 * `npm run bench:vfs`: GalleonFS mounts of a real `galleon up` cluster (three daemons, each
 * mounting the volume) beside the alternatives, in one run:
 *  - sequential write then read of BENCH_VFS_MIB (default 1024) MiB through node 1's mount
 *    (1 MiB write calls; the kernel splits them into 128 KiB FUSE writes), read back through
 *    node 2's mount (no local cache), beside the same bytes through the BlockClient alone
 *    (128 KiB blocks, 16 MiB batches as a flush sends them) and a local directory (fsync'd);
 *  - small files (create, write 4 KiB, close) per second on one and four workers, beside a local
 *    directory and bindfs over a local directory (Debian `bindfs`, skipped when absent);
 *  - `stat` of every entry and `ls -l` of a BENCH_VFS_DIR_ENTRIES (default 10,000) entry directory,
 *    on the node that made it and on another node.
 * BENCH_VFS_PARTS=seq,small,dir (default all) runs only some parts. Prints figures and ratios.
 * The cluster is torn down at the end, even on failure.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { MetadataClient } from '../../metadata/service/client.js';
import type { Volume } from '../../proto/metadata-types.js';
import { fuseMountPoints, unmountDir } from '../../vfs/fuse/index.js';
import { startMountedCluster, waitMounted } from '../vfs/cluster-mounts.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const totalMiB = Number(process.env.BENCH_VFS_MIB ?? '1024');
const smallFiles = Number(process.env.BENCH_VFS_SMALL_FILES ?? '2000');
const dirEntries = Number(process.env.BENCH_VFS_DIR_ENTRIES ?? '10000');
/** Which parts run: any of seq, small, dir (comma-separated; default all). */
const parts = new Set((process.env.BENCH_VFS_PARTS ?? 'seq,small,dir').split(',').map((p) => p.trim()));
const writeCallBytes = MiB;
const blockBytes = 128 * 1024;
const batchBytes = 16 * MiB;
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

async function seqRead(path: string): Promise<void> {
  const fh = await open(path, 'r');
  const buf = Buffer.alloc(writeCallBytes);
  try {
    for (let at = 0; ; at += buf.length) if ((await fh.read(buf, 0, buf.length, at)).bytesRead === 0) break;
  } finally {
    await fh.close();
  }
}

async function blockClientOnly(bindAddresses: string[], volumeName: string, chunk: Buffer): Promise<{ write: number; read: number }> {
  const api = new MetadataClient({ addresses: bindAddresses });
  const client = new BlockClient({ placement: new MetadataPlacementSource(api), coalesceWrites: false, maxAttempts: 20 });
  try {
    const vol: Volume = await api.getVolume(volumeName);
    const ino = 1_000_000_000;
    const blocks = totalMiB * MiB / blockBytes;
    const perBatch = batchBytes / blockBytes;
    const write = await timed(async () => {
      for (let b = 0; b < blocks; b += perBatch) {
        const batch = Array.from({ length: Math.min(perBatch, blocks - b) }, (_, i) => ({ inode: ino, blockNo: b + i, data: chunk.subarray(0, blockBytes) }));
        await client.writeBlocks(vol.id, batch, vol.writeConcern);
      }
    });
    const read = await timed(async () => {
      for (let b = 0; b < blocks; b += 64) await client.readBlocks(vol.id, Array.from({ length: Math.min(64, blocks - b) }, (_, i) => ({ inode: ino, blockNo: b + i })));
    });
    for (let b = 0; b < blocks; b += 256) await Promise.all(Array.from({ length: Math.min(256, blocks - b) }, (_, i) => client.deleteBlock(vol.id, ino, b + i, vol.writeConcern)));
    return { write, read };
  } finally {
    await client.close();
    api.close();
  }
}

async function smallFilesPerSec(dir: string, workers: number): Promise<number> {
  await mkdir(dir, { recursive: true });
  const body = randomBytes(4096);
  let next = 0;
  const secs = await timed(() => Promise.all(Array.from({ length: workers }, async () => {
    for (let i = next++; i < smallFiles; i = next++) await writeFile(join(dir, `f${i}`), body);
  })));
  return smallFiles / secs;
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
    await mkdir(local, { recursive: true });
    const chunk = randomBytes(writeCallBytes);
    const seq = new Table({ head: ['sequential', 'write MiB/s', 'read MiB/s', 'write vs block client', 'read vs block client'] });
    if (parts.has('seq')) {
      note('sequential: mount');
      const mw = await timed(() => seqWrite(c.path(1, 'bench', 'seq'), chunk));
      const mr = await timed(() => seqRead(c.path(2, 'bench', 'seq')));
      await rm(c.path(1, 'bench', 'seq'));
      note('sequential: block client');
      const bc = await blockClientOnly(c.nodes.map((n) => n.bindAddress), 'bench', chunk);
      note('sequential: local directory');
      const lw = await timed(() => seqWrite(join(local, 'seq'), chunk));
      const lr = await timed(() => seqRead(join(local, 'seq')));
      await rm(join(local, 'seq'));
      const rate = (s: number): number => totalMiB / s;
      seq.push(['GalleonFS mount (write node 1, read node 2)', fmt(rate(mw)), fmt(rate(mr)), ratio(rate(mw), rate(bc.write)), ratio(rate(mr), rate(bc.read))]);
      seq.push(['BlockClient alone', fmt(rate(bc.write)), fmt(rate(bc.read)), '1.00x', '1.00x']);
      seq.push(['local directory (page cache on read)', fmt(rate(lw)), fmt(rate(lr)), ratio(rate(lw), rate(bc.write)), ratio(rate(lr), rate(bc.read))]);
    }

    const small = new Table({ head: ['small files (create, 4 KiB, close)', '1 worker files/s', '4 workers files/s', 'GalleonFS vs this (1 / 4)'] });
    if (parts.has('small')) {
      note('small files');
      const g1 = await smallFilesPerSec(c.path(1, 'bench', 'small1'), 1);
      const g4 = await smallFilesPerSec(c.path(1, 'bench', 'small4'), 4);
      const l1 = await smallFilesPerSec(join(local, 'small1'), 1);
      const l4 = await smallFilesPerSec(join(local, 'small4'), 4);
      small.push(['GalleonFS mount', fmt(g1, 0), fmt(g4, 0), '-']);
      small.push(['local directory', fmt(l1, 0), fmt(l4, 0), `${ratio(g1, l1)} / ${ratio(g4, l4)}`]);
      const haveBindfs = await run('which', ['bindfs']).then(() => true, () => false);
      if (haveBindfs) {
        await mkdir(bindSrc, { recursive: true });
        await mkdir(bindMnt, { recursive: true });
        await run('bindfs', [bindSrc, bindMnt]);
        try {
          const b1 = await smallFilesPerSec(join(bindMnt, 'small1'), 1);
          const b4 = await smallFilesPerSec(join(bindMnt, 'small4'), 4);
          small.push(['bindfs over a local directory', fmt(b1, 0), fmt(b4, 0), `${ratio(g1, b1)} / ${ratio(g4, b4)}`]);
        } finally {
          await unmountDir(bindMnt, true).catch(() => undefined);
        }
      } else {
        small.push(['bindfs (not installed: apt-get install bindfs)', '-', '-', '-']);
      }
    }

    const dir = new Table({ head: [`${dirEntries}-entry directory`, 'stat all (s)', 'ls -l (s)'] });
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
    process.stdout.write(`\nbench:vfs ${new Date().toISOString()} — load average ${load}\n${seq.toString()}\n${small.toString()}\n${dir.toString()}\n`);
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
