/**
 * One adapter per FUSE op between the patched binding's positional arguments and our typed
 * `FuseOps`: `call` runs the op and returns what to signal on success (result, then the extra
 * values the C side reads); `fail` gives the extras to send with an errno — the C side reads
 * them even on error (a missing buffer would leave the kernel request unanswered).
 * Argument order per op is the C side's (native/fuse-native-2.2.6.patch, FUSE_METHOD blocks).
 */
import { errnoNumber, errnoOf, fsError } from './errno.js';
import { decodeTime, encodeStat, encodeStatfs, u64 } from './encode.js';
import type { FsStat, FuseCaller, FuseOpName, FuseOps } from './types.js';

type Args = readonly unknown[];
export interface OpAdapter {
  call(ops: FuseOps, c: FuseCaller, a: Args, ctx: AdapterContext): Promise<unknown[]>;
  fail(a: Args): unknown[];
}

/** Per-mount switches the adapters follow (MountOptions). */
export interface AdapterContext {
  /** create also answers the getattr libfuse sends next (the binding's CREATE_ATTR fast path). */
  createAttr: boolean;
  /** The binding's answer cache is on: create also says whether the new file has no file capability. */
  attrCache: boolean;
}

/** No attributes with a create answer: the binding asks getattr as usual. */
const noStat = new Uint32Array(0);

/**
 * libfuse follows every successful create with fgetattr(path, fh) on the same thread; with the
 * fast path on, it is computed here and handed back with the create (a failure just leaves it to
 * libfuse's own request).
 */
async function createOp(o: FuseOps, c: FuseCaller, a: Args, ctx: AdapterContext): Promise<unknown[]> {
  const [res, fh] = handle(await must(o, 'create')(c, s(a, 0), n(a, 1), n(a, 2)));
  if (!ctx.createAttr) return [res, fh, noStat];
  const st = await (o.fgetattr ? o.fgetattr(c, s(a, 0), fh as number) : o.getattr(c, s(a, 0))).then(encodeStat, () => noStat);
  if (!ctx.attrCache || st.length === 0) return [res, fh, st];
  // With the answer cache: a flags word (bit 0: no file capability), then the directory's
  // attributes after the create (the kernel's next permission check of the path asks them).
  const parent = await o.getattr(c, parentPath(s(a, 0))).then(encodeStat, () => noStat);
  const words = new Uint32Array(st.length + 1 + parent.length);
  words.set(st);
  words[st.length] = (await hasNoCapability(o, c, s(a, 0))) ? 1 : 0;
  words.set(parent, st.length + 1);
  return [res, fh, words];
}

function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** True only when the file system says the file has no `security.capability` (ENODATA). */
async function hasNoCapability(o: FuseOps, c: FuseCaller, path: string): Promise<boolean> {
  if (o.getxattr === undefined) return false;
  try {
    return (await o.getxattr(c, path, 'security.capability')) === undefined;
  } catch (err) {
    return errnoOf(err).errno === errnoNumber('ENODATA');
  }
}

const s = (a: Args, i: number): string => a[i] as string;
const n = (a: Args, i: number): number => a[i] as number;
const b = (a: Args, i: number): Buffer => a[i] as Buffer;
/** The C side ignores what it does not read; "no extras". */
const none = (): unknown[] => [];
/** chown(2)'s "leave unchanged" arrives as (uid_t)-1. */
const id = (v: number): number => (v === 0xffffffff ? -1 : v);

function must<K extends FuseOpName>(ops: FuseOps, k: K): NonNullable<FuseOps[K]> {
  const f = ops[k];
  if (f === undefined) throw fsError('ENOSYS');
  return (f as (...args: unknown[]) => unknown).bind(ops) as NonNullable<FuseOps[K]>;
}

async function voidOp(p: Promise<void>): Promise<unknown[]> { await p; return [0]; }

function handle(fh: number): unknown[] {
  if (!Number.isInteger(fh) || fh < 0 || fh > 0x7fffffff) throw new RangeError(`file handle ${fh} is not an int32 >= 0`);
  return [0, fh];
}

function countBytes(got: number, max: number): unknown[] {
  if (!Number.isInteger(got) || got < 0 || got > max) throw new RangeError(`op returned ${got} bytes for a ${max}-byte request`);
  return [got];
}

/** Size query (buffer of length 0), ERANGE when too small, else copy: getxattr(2)/listxattr(2). */
function intoSizedBuffer(value: Buffer, dest: Buffer): unknown[] {
  if (dest.length === 0) return [value.length, dest.buffer];
  if (value.length > dest.length) return [errnoNumber('ERANGE'), dest.buffer];
  value.copy(dest);
  return [value.length, dest.buffer];
}

/** The C side cannot answer a request whose values have the wrong type: check before signalling. */
function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string, got ${typeof v}`);
  return v;
}

function listing(entries: { name: string; stat?: FsStat }[]): unknown[] {
  const names = entries.map((e) => text(e.name, 'readdir entry name'));
  const all = entries.every((e) => e.stat !== undefined);
  return [0, names, all ? entries.map((e) => encodeStat(e.stat)) : []];
}

export const opTable: Record<FuseOpName, OpAdapter> = {
  getattr: { call: async (o, c, a) => [0, encodeStat(await o.getattr(c, s(a, 0)))], fail: () => [encodeStat(undefined)] },
  fgetattr: {
    call: async (o, c, a) => [0, encodeStat(await (o.fgetattr ? o.fgetattr(c, s(a, 0), n(a, 1)) : o.getattr(c, s(a, 0))))],
    fail: () => [encodeStat(undefined)],
  },
  access: { call: (o, c, a) => voidOp(must(o, 'access')(c, s(a, 0), n(a, 1))), fail: none },
  statfs: { call: async (o, c, a) => [0, encodeStatfs(await must(o, 'statfs')(c, s(a, 0)))], fail: () => [encodeStatfs(undefined)] },
  opendir: { call: async (o, c, a) => handle(await must(o, 'opendir')(c, s(a, 0), n(a, 2))), fail: () => [0] },
  readdir: { call: async (o, c, a) => listing(await o.readdir(c, s(a, 0))), fail: () => [[], []] },
  releasedir: { call: (o, c, a) => voidOp(must(o, 'releasedir')(c, s(a, 0), n(a, 1))), fail: none },
  fsyncdir: { call: (o, c, a) => voidOp(must(o, 'fsyncdir')(c, s(a, 0), n(a, 1) !== 0, n(a, 2))), fail: none },
  create: { call: createOp, fail: () => [0, noStat] },
  open: { call: async (o, c, a) => handle(await must(o, 'open')(c, s(a, 0), n(a, 1))), fail: () => [0] },
  read: {
    call: async (o, c, a) => [...countBytes(await o.read(c, s(a, 0), n(a, 1), b(a, 2), u64(n(a, 4), n(a, 5))), n(a, 3)), 0, b(a, 2).buffer],
    fail: (a) => [0, b(a, 2).buffer],
  },
  write: {
    call: async (o, c, a) => [...countBytes(await must(o, 'write')(c, s(a, 0), n(a, 1), b(a, 2), u64(n(a, 4), n(a, 5))), n(a, 3)), 0, b(a, 2).buffer],
    fail: (a) => [0, b(a, 2).buffer],
  },
  truncate: { call: (o, c, a) => voidOp(must(o, 'truncate')(c, s(a, 0), u64(n(a, 1), n(a, 2)))), fail: none },
  ftruncate: { call: (o, c, a) => voidOp(must(o, 'ftruncate')(c, s(a, 0), n(a, 1), u64(n(a, 2), n(a, 3)))), fail: none },
  flush: { call: (o, c, a) => voidOp(must(o, 'flush')(c, s(a, 0), n(a, 1))), fail: none },
  fsync: { call: (o, c, a) => voidOp(must(o, 'fsync')(c, s(a, 0), n(a, 1) !== 0, n(a, 2))), fail: none },
  release: { call: (o, c, a) => voidOp(must(o, 'release')(c, s(a, 0), n(a, 1))), fail: none },
  unlink: { call: (o, c, a) => voidOp(must(o, 'unlink')(c, s(a, 0))), fail: none },
  mkdir: { call: (o, c, a) => voidOp(must(o, 'mkdir')(c, s(a, 0), n(a, 1))), fail: none },
  rmdir: { call: (o, c, a) => voidOp(must(o, 'rmdir')(c, s(a, 0))), fail: none },
  mknod: { call: (o, c, a) => voidOp(must(o, 'mknod')(c, s(a, 0), n(a, 1), n(a, 2))), fail: none },
  rename: { call: (o, c, a) => voidOp(must(o, 'rename')(c, s(a, 0), s(a, 1))), fail: none },
  link: { call: (o, c, a) => voidOp(must(o, 'link')(c, s(a, 0), s(a, 1))), fail: none },
  symlink: { call: (o, c, a) => voidOp(must(o, 'symlink')(c, s(a, 0), s(a, 1))), fail: none },
  readlink: { call: async (o, c, a) => [0, text(await must(o, 'readlink')(c, s(a, 0)), 'readlink target')], fail: () => [''] },
  chmod: { call: (o, c, a) => voidOp(must(o, 'chmod')(c, s(a, 0), n(a, 1))), fail: none },
  chown: { call: (o, c, a) => voidOp(must(o, 'chown')(c, s(a, 0), id(n(a, 1)), id(n(a, 2)))), fail: none },
  utimens: {
    call: (o, c, a) => voidOp(must(o, 'utimens')(c, s(a, 0), decodeTime(n(a, 1), n(a, 2)), decodeTime(n(a, 3), n(a, 4)))),
    fail: none,
  },
  setxattr: {
    call: async (o, c, a) => { await must(o, 'setxattr')(c, s(a, 0), s(a, 1), b(a, 2), n(a, 4)); return [0, b(a, 2).buffer]; },
    fail: (a) => [b(a, 2).buffer],
  },
  getxattr: {
    call: async (o, c, a) => {
      const v = await must(o, 'getxattr')(c, s(a, 0), s(a, 1));
      if (v === undefined) throw fsError('ENODATA');
      return intoSizedBuffer(v, b(a, 2));
    },
    fail: (a) => [b(a, 2).buffer],
  },
  listxattr: {
    call: async (o, c, a) => {
      const names = await must(o, 'listxattr')(c, s(a, 0));
      return intoSizedBuffer(Buffer.from(names.map((x) => `${x}\0`).join('')), b(a, 1));
    },
    fail: (a) => [b(a, 1).buffer],
  },
  removexattr: { call: (o, c, a) => voidOp(must(o, 'removexattr')(c, s(a, 0), s(a, 1))), fail: none },
};

/** Ops the kernel should see as implemented: the ones the file system has (getattr always). */
export function implementedOps(ops: FuseOps): FuseOpName[] {
  return (Object.keys(opTable) as FuseOpName[]).filter((k) => k === 'getattr' || ops[k] !== undefined);
}
