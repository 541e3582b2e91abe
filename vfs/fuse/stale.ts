/**
 * Unmounting and dead-mount cleanup. A FUSE mount whose process died (kill -9) stays in the
 * mount table and answers "Transport endpoint is not connected" (ENOTCONN) to everything until
 * someone unmounts it; a daemon restarted on the same directory calls `clearStaleMount` first.
 * Unmounting: umount2(2) in-process as root; otherwise fusermount (Debian fuse), fusermount3 (fuse3).
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { tryLoadFuseBinding } from './binding.js';
import { errnoNumber } from './errno.js';

const run = promisify(execFile);
/** A stat of a mount whose owner is alive but stuck must not hang the caller forever. */
const statProbeTimeoutMs = 5_000;
const unmountToolTimeoutMs = 30_000;

/** Mount points (absolute) of FUSE file systems, from /proc/self/mountinfo. */
export async function fuseMountPoints(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined || !right.startsWith('fuse')) continue;
    const mountPoint = left.split(' ')[4];
    if (mountPoint !== undefined) out.add(mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

export async function isFuseMounted(dir: string): Promise<boolean> {
  return (await fuseMountPoints()).has(resolve(dir));
}

type Probe = 'ok' | 'dead' | 'hung' | 'absent';

async function probe(dir: string): Promise<Probe> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<Probe>((res) => { timer = setTimeout(() => res('hung'), statProbeTimeoutMs); });
  const st = stat(dir).then((): Probe => 'ok', (err: NodeJS.ErrnoException): Probe =>
    err.code === 'ENOTCONN' || err.code === 'ECONNABORTED' ? 'dead' : 'absent');
  try { return await Promise.race([st, hung]); } finally { clearTimeout(timer); }
}

async function tryTool(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    await run(cmd, args, { timeout: unmountToolTimeoutMs });
    return undefined;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; message: string };
    return e.code === 'ENOENT' ? `${cmd}: not installed` : `${cmd}: ${(e.stderr ?? e.message).trim()}`;
  }
}

/**
 * Unmount `dir`; `lazy` detaches it now and lets open files finish (umount -l). As root this is
 * umount2(2) from the binding, in-process: spawning fusermount from a process that serves the
 * mount and has a file open on it deadlocks (see the patch's galleon_umount). Otherwise the
 * tools below, in order. Throws with every answer when the mount stays.
 */
export async function unmountDir(dir: string, lazy: boolean): Promise<void> {
  const abs = resolve(dir);
  const b = process.getuid?.() === 0 ? tryLoadFuseBinding() : undefined;
  if (b !== undefined) {
    const res = b.galleon_umount(abs, lazy ? 1 : 0);
    if (res === 0 || !(await isFuseMounted(abs))) return;
    throw new Error(`cannot unmount ${abs}: umount2 answered errno ${-res}${res === errnoNumber('EBUSY') ? ' (busy: files open)' : ''}`);
  }
  const attempts: [string, string[]][] = [
    ['fusermount', [lazy ? '-uz' : '-u', abs]],
    ['fusermount3', [lazy ? '-uz' : '-u', abs]],
  ];
  const errors: string[] = [];
  for (const [cmd, args] of attempts) {
    const err = await tryTool(cmd, args);
    if (err === undefined) return;
    errors.push(err);
    if (!(await isFuseMounted(abs))) return;
  }
  throw new Error(`cannot unmount ${abs}: ${errors.join('; ')}`);
}

/**
 * If `dir` holds a FUSE mount whose process is gone (ENOTCONN), unmount it lazily and return
 * true. A live mount (ours or another process's) is left alone: false.
 */
export async function clearStaleMount(dir: string): Promise<boolean> {
  const abs = resolve(dir);
  if (!(await isFuseMounted(abs))) return false;
  if ((await probe(abs)) !== 'dead') return false;
  await unmountDir(abs, true);
  return true;
}
