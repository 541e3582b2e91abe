/**
 * The kernel's read-ahead for a FUSE mount. Reads reach a FUSE file system as requests of at
 * most 128 KiB (libfuse 2 cannot negotiate FUSE_MAX_PAGES, so the kernel keeps its 32-page
 * default), and the kernel sends as many at once as its read-ahead window covers: 128 KiB by
 * default (the backing device's `read_ahead_kb`, which the FUSE INIT reply can only lower). So a
 * sequential reader has one or two requests in flight and waits a full round trip through our
 * JS thread for each. Raising the mount's `read_ahead_kb` (sysfs, root only; no mount option
 * of libfuse 2 can) lets the kernel keep a window of requests in flight. Measured in vfs/README.md.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Logger } from 'pino';

/** What mounts ask for unless told otherwise (vfs/README.md, "Speed"). */
export const defaultReadAheadKiB = 8192;
/** The kernel refuses more than this for a backing device's read-ahead in practice; we never ask it. */
export const maxReadAheadKiB = 65_536;

/** The `major:minor` of the file system mounted at `dir`, from /proc/self/mountinfo (no request to the mount itself). */
export async function mountDeviceOf(dir: string): Promise<string | null> {
  const want = resolve(dir);
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  let found: string | null = null;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const mountPoint = f[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    // The last entry wins: a mount stacked on the same directory hides the ones before it.
    if (mountPoint === want && f[2] !== undefined) found = f[2];
  }
  return found;
}

/** The sysfs file holding the read-ahead of the device `major:minor`. */
export function readAheadPath(device: string): string {
  return `/sys/class/bdi/${device}/read_ahead_kb`;
}

/**
 * Sets the kernel's read-ahead of the mount at `dir` to `kib`; returns whether it took. Best
 * effort: without root (or without sysfs) the kernel's default stays and the mount still works,
 * only slower for sequential reads, so a failure is logged, not thrown.
 */
export async function setMountReadAhead(dir: string, kib: number, log: Logger): Promise<boolean> {
  if (!Number.isInteger(kib) || kib < 0 || kib > maxReadAheadKiB) throw new RangeError(`readAheadKiB must be an integer in 0..${maxReadAheadKiB}, got ${kib}`);
  const device = await mountDeviceOf(dir);
  if (device === null) {
    log.warn({ dir }, 'mount not found in /proc/self/mountinfo; kernel read-ahead left as it is');
    return false;
  }
  try {
    await writeFile(readAheadPath(device), `${kib}\n`);
    return true;
  } catch (err) {
    log.info({ dir, device, kib, err }, 'could not raise the kernel read-ahead of the mount (needs root); sequential reads keep the 128 KiB default');
    return false;
  }
}
