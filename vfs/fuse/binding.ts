/**
 * Loads the patched fuse-native binding that `npm ci` built (vfs/fuse/native/install.ts) —
 * never the package's prebuilt binary, whose ABI differs (no caller context, 32-bit inodes,
 * millisecond times). A missing or stale build is one clear error naming the command to run.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

/** Must equal `galleon_patch_level` in native/fuse-native-2.2.6.patch. */
export const expectedPatchLevel = 6;

export const builtBindingPath = join(dirname(fileURLToPath(import.meta.url)), 'native', 'out', 'build', 'Release', 'fuse.node');

type NativeFn = (...args: unknown[]) => unknown;

export interface FuseBinding {
  readonly galleon_patch_level: number;
  readonly sizeof_fuse_thread_t: number;
  fuse_native_mount(mnt: string, opts: string, thread: Buffer, ctx: object,
    malloc: (size: number) => Buffer, handlers: unknown[], implemented: Uint32Array): void;
  fuse_native_unmount(mnt: string, thread: Buffer): void;
  /** umount2(2) in-process (root): 0 or -errno. */
  galleon_umount(mnt: string, lazy: number): number;
  /** Sets the fast-path bits (GALLEON_FAST_*) of a mounted thread. */
  galleon_set_flags(thread: Buffer, flags: number, attrCacheMs: number): void;
  /** The fast-path bits now; fills `out` (35 slots, by opcode) with requests answered in C. */
  galleon_native_counts(thread: Buffer, out: Uint32Array): number;
  readonly GALLEON_FAST_NO_CAPS: number;
  readonly GALLEON_FAST_CREATE_ATTR: number;
  readonly GALLEON_FAST_ATTR_CACHE: number;
  readonly GALLEON_FAST_RELEASE_QUEUE: number;
  /** The function queued releases go to: (path, fh, uid, gid, pid). */
  galleon_set_release_handler(thread: Buffer, fn: (path: string, fh: number, uid: number, gid: number, pid: number) => void): void;
  /** Runs the queued releases now. */
  galleon_drain(thread: Buffer): void;
  readonly [name: string]: unknown;
}

let cached: FuseBinding | undefined;

/** The binding if it loads, else undefined (callers with a fallback, e.g. unmounting). */
export function tryLoadFuseBinding(): FuseBinding | undefined {
  try { return loadFuseBinding(); } catch { return undefined; }
}

export function loadFuseBinding(): FuseBinding {
  if (cached !== undefined) return cached;
  const hint = 'run `npm run fuse:install` (as root it also installs Debian fuse + libfuse2)';
  if (!existsSync(builtBindingPath)) {
    throw new GalleonError(ErrorCode.UNAVAILABLE, `the patched fuse-native binding is not built (${builtBindingPath})`, { hint });
  }
  let b: FuseBinding;
  try {
    b = createRequire(import.meta.url)(builtBindingPath) as FuseBinding;
  } catch (cause) {
    throw new GalleonError(ErrorCode.UNAVAILABLE, `cannot load ${builtBindingPath}: ${(cause as Error).message}`, { hint, cause });
  }
  if (b.galleon_patch_level !== expectedPatchLevel) {
    throw new GalleonError(ErrorCode.UNAVAILABLE,
      `fuse binding has patch level ${String(b.galleon_patch_level)}, expected ${expectedPatchLevel}`, { hint });
  }
  cached = b;
  return b;
}

export function opCode(b: FuseBinding, name: string): number {
  const v = b[`op_${name}`];
  if (typeof v !== 'number') throw new Error(`fuse binding has no op_${name}`);
  return v;
}

export function signalFn(b: FuseBinding, name: string): NativeFn {
  const v = b[`fuse_native_signal_${name}`];
  if (typeof v !== 'function') throw new Error(`fuse binding has no fuse_native_signal_${name}`);
  return v as NativeFn;
}
