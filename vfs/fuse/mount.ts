/**
 * `mountFs(dir, ops, options)`: mounts a typed `FuseOps` file system with the patched
 * fuse-native binding and returns a handle whose `unmount()` always leaves the directory free.
 * Every kernel request is answered exactly once: the op's result, its mapped errno (errno.ts),
 * EIO for an exception (logged), or ETIMEDOUT after `opTimeoutMs` (logged; a late answer is
 * dropped). libfuse runs a thread per concurrent request; JS sees them as concurrent promises.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { loadFuseBinding, opCode, signalFn } from './binding.js';
import type { FuseBinding } from './binding.js';
import { fuseOptionString } from './encode.js';
import { EIO, errnoNumber, errnoOf } from './errno.js';
import { implementedOps, opTable } from './op-table.js';
import type { AdapterContext } from './op-table.js';
import { defaultReadAheadKiB, maxReadAheadKiB, setMountReadAhead } from './read-ahead.js';
import { clearStaleMount, isFuseMounted, unmountDir } from './stale.js';
import type { FuseCaller, FuseOpName, FuseOps, MountOptions } from './types.js';

export const defaultOpTimeoutMs = 120_000;
/** Longest `attrCacheMs`: the binding's cache adds this much to what a change elsewhere takes to show. */
export const maxAttrCacheMs = 1_000;
/** The kernel's init request arrives right after mount(2); longer means something is wrong. */
const initTimeoutMs = 15_000;
/** Size of the binding's handler and "implemented" tables (fuse-native's opcode count + 1). */
const opSlots = 35;
/** Bounds of the op-timeout sweep period (a quarter of the timeout, within these). */
const maxSweepPeriodMs = 1_000;
const minSweepPeriodMs = 10;

export interface Mounted {
  readonly dir: string;
  /**
   * Kernel requests served since mount, by op: the ones that crossed to JS, and (`native.*`) the
   * ones the binding answered in C without a crossing (FUSE fast paths, vfs/README.md).
   */
  requests(): Record<string, number>;
  /** Whether the binding still answers getxattr("security.capability") itself (MountOptions). */
  noCapabilityXattr(): boolean;
  /** Unmounts; falls back to a lazy unmount (detach now, finish open files) when busy. */
  unmount(): Promise<void>;
}

export interface MountDeps {
  log?: Logger;
}

type NativeSignal = (...args: unknown[]) => unknown;

/**
 * Answers ETIMEDOUT to ops still pending after `timeoutMs`: one interval timer per mount that
 * sweeps the (few: one per libfuse thread) pending ops, instead of a timer armed and cleared per
 * request on the hot path. An op times out between `timeoutMs` and `timeoutMs + periodMs`.
 */
class OpDeadlines {
  private readonly pending = new Set<{ deadline: number; expire(): void }>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {
    const periodMs = Math.min(maxSweepPeriodMs, Math.max(minSweepPeriodMs, Math.floor(timeoutMs / 4)));
    this.timer = timeoutMs > 0 ? setInterval(() => this.sweep(), periodMs) : undefined;
    this.timer?.unref();
  }

  add(expire: () => void): (() => void) | undefined {
    if (this.timer === undefined) return undefined;
    const entry = { deadline: performance.now() + this.timeoutMs, expire };
    this.pending.add(entry);
    return () => this.pending.delete(entry);
  }

  private sweep(): void {
    const now = performance.now();
    for (const e of this.pending) {
      if (e.deadline > now) continue;
      this.pending.delete(e);
      e.expire();
    }
  }

  stop(): void { clearInterval(this.timer); this.pending.clear(); }
}

interface HandlerEnv {
  ops: FuseOps;
  deadlines: OpDeadlines;
  log: Logger;
  counts: Map<string, number>;
  ctx: AdapterContext;
}

function makeHandler(name: FuseOpName, signal: NativeSignal, env: HandlerEnv) {
  const adapter = opTable[name];
  const { ops, deadlines, log, counts, ctx } = env;
  return (locals: unknown, _op: number, ...rest: unknown[]): void => {
    counts.set(name, (counts.get(name) ?? 0) + 1);
    const args = rest.slice(0, -3);
    const caller: FuseCaller = { uid: rest[rest.length - 3] as number, gid: rest[rest.length - 2] as number, pid: rest[rest.length - 1] as number };
    let answered = false;
    // eslint-disable-next-line prefer-const -- answer() clears it and is made before it
    let done: (() => void) | undefined;
    const answer = (values: unknown[]): void => {
      if (answered) return;
      answered = true;
      done?.();
      signal(locals, ...values);
    };
    const failWith = (errno: number): void => answer([errno, ...adapter.fail(args)]);
    done = deadlines.add(() => {
      log.warn({ op: name, path: args[0], timeoutMs: deadlines.timeoutMs }, 'fuse op timed out; answering ETIMEDOUT');
      failWith(errnoNumber('ETIMEDOUT'));
    });
    (async () => adapter.call(ops, caller, args, ctx))().then(answer, (err: unknown) => {
      const v = errnoOf(err);
      if (v.unexpected) log.error({ err, op: name, path: args[0] }, 'fuse op failed unexpectedly; answering EIO');
      if (answered) log.warn({ op: name, path: args[0] }, 'fuse op answered after its timeout; dropped');
      failWith(v.errno);
    });
  };
}

function handlerTable(b: FuseBinding, env: HandlerEnv, onInit: () => void) {
  const { ops, log } = env;
  const handlers: unknown[] = new Array(opSlots);
  const implemented = new Uint32Array(opSlots);
  const initCode = opCode(b, 'init');
  const initSignal = signalFn(b, 'init');
  handlers[initCode] = (locals: unknown): void => {
    const init = ops.init ? ops.init() : Promise.resolve();
    init.then(() => { initSignal(locals, 0); onInit(); }, (err: unknown) => {
      log.error({ err }, 'file system init failed');
      initSignal(locals, EIO);
      onInit();
    });
  };
  implemented[initCode] = 1;
  for (const name of implementedOps(ops)) {
    const code = opCode(b, name);
    handlers[code] = makeHandler(name, signalFn(b, name), env);
    implemented[code] = 1;
  }
  return { handlers, implemented };
}

async function checkMountPoint(dir: string, clearStale: boolean, log: Logger): Promise<void> {
  if (clearStale && (await clearStaleMount(dir))) log.warn({ dir }, 'cleared a dead FUSE mount left by a killed process');
  const st = await stat(dir).catch((cause: unknown) => {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `mount point ${dir} is not accessible`, { cause, hint: 'create the directory first' });
  });
  if (!st.isDirectory()) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `mount point ${dir} is not a directory`, { hint: 'pass a directory' });
  if (await isFuseMounted(dir)) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `${dir} is already a FUSE mount`, { hint: `unmount it first: fusermount -u ${dir}` });
  }
  const parent = await stat(dirname(dir));
  if (parent.dev !== st.dev && dir !== '/') {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `${dir} is already a mount point`, { hint: 'pick an empty directory that is not mounted' });
  }
}

export async function mountFs(dir: string, ops: FuseOps, options: MountOptions, deps: MountDeps = {}): Promise<Mounted> {
  const log = deps.log ?? pino({ level: 'silent' });
  const abs = resolve(dir);
  const optString = fuseOptionString(options);
  const ra = options.readAheadKiB;
  if (ra !== undefined && (!Number.isInteger(ra) || ra < 0 || ra > maxReadAheadKiB)) throw new RangeError(`readAheadKiB must be an integer in 0..${maxReadAheadKiB}, got ${ra}`);
  const timeoutMs = options.opTimeoutMs ?? defaultOpTimeoutMs;
  const b = loadFuseBinding();
  await checkMountPoint(abs, options.clearStale ?? true, log);
  const keep = new Set<Buffer>();
  const thread = Buffer.alloc(b.sizeof_fuse_thread_t);
  let initDone!: () => void;
  const initialised = new Promise<void>((res) => { initDone = res; });
  const counts = new Map<string, number>();
  const deadlines = new OpDeadlines(timeoutMs);
  const attrCacheMs = options.attrCacheMs ?? 0;
  if (!Number.isInteger(attrCacheMs) || attrCacheMs < 0 || attrCacheMs > maxAttrCacheMs) throw new RangeError(`attrCacheMs must be an integer in 0..${maxAttrCacheMs}, got ${attrCacheMs}`);
  const ctx: AdapterContext = { createAttr: options.createAttr ?? true, attrCache: attrCacheMs > 0 };
  const { handlers, implemented } = handlerTable(b, { ops, deadlines, log, counts, ctx }, () => initDone());
  const malloc = (size: number): Buffer => { const buf = Buffer.alloc(size); keep.add(buf); return buf; };
  try {
    b.fuse_native_mount(abs, optString, thread, {}, malloc, handlers, implemented);
    b.galleon_set_release_handler(thread, queuedRelease(ops, log));
    b.galleon_set_flags(thread, (options.noCapabilityXattr === true ? b.GALLEON_FAST_NO_CAPS : 0) | (ctx.createAttr ? b.GALLEON_FAST_CREATE_ATTR : 0) |
      (ctx.attrCache ? b.GALLEON_FAST_ATTR_CACHE : 0) | ((options.queueReleases ?? true) ? b.GALLEON_FAST_RELEASE_QUEUE : 0), attrCacheMs);
  } catch (cause) {
    deadlines.stop();
    throw new GalleonError(ErrorCode.UNAVAILABLE, `FUSE mount of ${abs} failed`, {
      cause, hint: 'check that /dev/fuse exists, that FUSE is installed (npm run fuse:install) and that you may mount (root or fusermount)',
    });
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((res) => { timer = setTimeout(() => res('timeout'), initTimeoutMs); });
  const first = await Promise.race([initialised, timedOut]);
  clearTimeout(timer);
  let unmounted: Promise<void> | undefined;
  const mounted: Mounted = {
    dir: abs,
    requests: () => requestCounts(b, thread, counts),
    noCapabilityXattr: () => (b.galleon_native_counts(thread, new Uint32Array(opSlots)) & b.GALLEON_FAST_NO_CAPS) !== 0,
    unmount: () => (unmounted ??= unmountMounted(b, abs, thread, keep, log).finally(() => deadlines.stop())),
  };
  if (first === 'timeout') {
    await mounted.unmount().catch(() => undefined);
    throw new GalleonError(ErrorCode.TIMEOUT, `FUSE mount of ${abs} got no init from the kernel in ${initTimeoutMs} ms`, { hint: 'check dmesg' });
  }
  const readAheadKiB = options.readAheadKiB ?? defaultReadAheadKiB;
  const readAhead = readAheadKiB > 0 && (await setMountReadAhead(abs, readAheadKiB, log)) ? readAheadKiB : null;
  log.info({ dir: abs, options: optString, readAheadKiB: readAhead }, 'mounted');
  return mounted;
}

/** Runs a release the binding already answered (RELEASE_QUEUE): nobody waits, errors are logged. */
function queuedRelease(ops: FuseOps, log: Logger) {
  return (path: string, fh: number, uid: number, gid: number, pid: number): void => {
    if (ops.release === undefined) return;
    (async () => ops.release?.({ uid, gid, pid }, path, fh))().catch((err: unknown) => {
      const v = errnoOf(err);
      if (v.unexpected) log.error({ err, op: 'release', path }, 'queued release failed unexpectedly');
      else log.warn({ err, op: 'release', path }, 'queued release failed');
    });
  };
}

function requestCounts(b: FuseBinding, thread: Buffer, counts: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(counts);
  const native = new Uint32Array(opSlots);
  b.galleon_native_counts(thread, native);
  for (const [name, code] of Object.entries(opTable).map(([k]) => [k, opCode(b, k)] as const)) {
    const v = native[code] ?? 0;
    if (v > 0) out[`native.${name}`] = v;
  }
  return out;
}

async function unmountMounted(b: FuseBinding, dir: string, thread: Buffer, keep: Set<Buffer>, log: Logger): Promise<void> {
  if (await isFuseMounted(dir)) {
    try {
      await unmountDir(dir, false);
    } catch (err) {
      log.warn({ dir, err }, 'unmount refused (files open?); unmounting lazily');
      await unmountDir(dir, true);
    }
  }
  b.galleon_drain(thread);
  b.fuse_native_unmount(dir, thread);
  // The native side holds references to the per-thread buffers until its loop ends; dropping
  // ours only lets them be collected once it is done.
  keep.clear();
  log.info({ dir }, 'unmounted');
}
