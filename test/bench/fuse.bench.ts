/**
 * The FUSE layer's ceiling (`npm run bench:fuse`): sequential write and read through a mount of
 * an in-memory file system that discards data (so only FUSE and our JS layer are measured),
 * with and without big_writes, beside the same dd on a local directory; and small files
 * (create, write 4 KiB, close) per second beside a local directory. The load runs in child
 * processes: the mount is served by this process's event loop.
 *
 * BENCH_FUSE_BYTES (default 1 GiB) and BENCH_FUSE_FILES (default 2000) size the runs.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountFs } from '../../vfs/fuse/mount.js';
import type { MountOptions } from '../../vfs/fuse/types.js';
import { tempMountPoint } from '../support/fuse.js';
import { MemFs } from '../support/memfs.js';

const run = promisify(execFile);
const totalBytes = Number(process.env.BENCH_FUSE_BYTES ?? 1 << 30);
const smallFiles = Number(process.env.BENCH_FUSE_FILES ?? 2000);
const ddBlockBytes = 1 << 20;
const smallFileBytes = 4096;

async function timed(script: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await run('bash', ['-c', script], { maxBuffer: 1 << 20 });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function sequential(dir: string): Promise<{ writeMBs: number; readMBs: number }> {
  const count = Math.max(1, Math.floor(totalBytes / ddBlockBytes));
  const f = join(dir, 'seq');
  const w = await timed(`dd if=/dev/zero of=${f} bs=${ddBlockBytes} count=${count} conv=fsync status=none`);
  const r = await timed(`dd if=${f} of=/dev/null bs=${ddBlockBytes} status=none`);
  const mb = (count * ddBlockBytes) / 1e6;
  return { writeMBs: mb / w, readMBs: mb / r };
}

/** create + write 4 KiB + close, N times, from a separate node process. */
async function smallFilesPerSec(dir: string): Promise<number> {
  const js = `const fs=require('fs');const b=Buffer.alloc(${smallFileBytes},7);const t=process.hrtime.bigint();` +
    `for(let i=0;i<${smallFiles};i++){fs.writeFileSync(${JSON.stringify(dir)}+'/f'+i,b)}` +
    `console.log(Number(process.hrtime.bigint()-t)/1e9)`;
  const { stdout } = await run(process.execPath, ['-e', js]);
  return smallFiles / Number(stdout.trim());
}

async function throughMount<T>(opts: Partial<MountOptions>, fn: (dir: string) => Promise<T>): Promise<T> {
  const mp = tempMountPoint();
  const m = await mountFs(mp.dir, new MemFs({ discardData: true }), { fsname: 'galleon:bench', ...opts });
  try { return await fn(mp.dir); } finally { await m.unmount(); await mp.cleanup(); }
}

async function main(): Promise<void> {
  const local = mkdtempSync(join(tmpdir(), 'galleon-vfuse-bench-'));
  try {
    const loc = await sequential(local);
    const big = await throughMount({ bigWrites: true }, sequential);
    const small = await throughMount({ bigWrites: false }, sequential);
    const locFiles = await smallFilesPerSec(local);
    const fuseFiles = await throughMount({}, smallFilesPerSec);
    const f = (x: number): string => x.toFixed(0).padStart(7);
    const ratio = (a: number, b: number): string => (a / b).toFixed(2) + '×';
    console.log(`sequential, ${(totalBytes / 2 ** 20).toFixed(0)} MiB, dd bs=1M (MB/s)   write     read`);
    console.log(`  local directory (${tmpdir()})        ${f(loc.writeMBs)}  ${f(loc.readMBs)}`);
    console.log(`  FUSE, big_writes max_write=128K     ${f(big.writeMBs)}  ${f(big.readMBs)}   (${ratio(big.writeMBs, loc.writeMBs)} / ${ratio(big.readMBs, loc.readMBs)} of local)`);
    console.log(`  FUSE, no big_writes                 ${f(small.writeMBs)}  ${f(small.readMBs)}   (big_writes gains ${ratio(big.writeMBs, small.writeMBs)} on writes)`);
    console.log(`small files (create + 4 KiB + close), ${smallFiles} files, one process`);
    console.log(`  local directory ${f(locFiles)} files/s`);
    console.log(`  FUSE (memory)   ${f(fuseFiles)} files/s   (${ratio(fuseFiles, locFiles)} of local)`);
  } finally {
    rmSync(local, { recursive: true, force: true });
  }
}

await main();
