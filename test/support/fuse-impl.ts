/**
 * Which mount the FUSE tests use: ours (vfs/fuse mountFs over the patched binding) or, with
 * GALLEON_FUSE_IMPL=upstream, fuse-native 2.2.6 as published (its index.js and its own binary)
 * driving the same in-memory file system through a thin callback adapter. The second exists
 * to show that the patch-related tests fail without the patch; it is not used by the product.
 */
import { createRequire } from 'node:module';
import { errnoOf } from '../../vfs/fuse/errno.js';
import { mountFs } from '../../vfs/fuse/mount.js';
import type { FsStat, FuseCaller, FuseOps, MountOptions } from '../../vfs/fuse/types.js';

export interface TestMount { unmount(): Promise<void> }

export function mountForTest(dir: string, ops: FuseOps, opts: MountOptions): Promise<TestMount> {
  return process.env.GALLEON_FUSE_IMPL === 'upstream' ? mountUpstream(dir, ops, opts) : mountFs(dir, ops, opts);
}

type Cb = (...args: unknown[]) => void;
interface UpstreamFuse { mount(cb: (err: Error | null) => void): void; unmount(cb: (err: Error | null) => void): void }
type UpstreamCtor = new (dir: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => UpstreamFuse;

/** Upstream knows no caller: every request looks like root's. */
const root: FuseCaller = { uid: 0, gid: 0, pid: 0 };
const ms = (ns: bigint): number => Number(ns / 1_000_000n);
const upstreamStat = (s: FsStat): Record<string, unknown> =>
  ({ ...s, ino: Number(s.ino), atime: ms(s.atimeNs), mtime: ms(s.mtimeNs), ctime: ms(s.ctimeNs) });

function upstreamOps(ops: FuseOps): Record<string, unknown> {
  const c = root;
  const run = (p: () => Promise<unknown>, cb: Cb, ok: (v: unknown) => unknown[] = () => [0]): void => {
    Promise.resolve().then(p).then((v) => cb(...ok(v)), (err: unknown) => cb(errnoOf(err).errno));
  };
  const o = ops as Required<FuseOps>;
  return {
    getattr: (p: string, cb: Cb) => run(() => o.getattr(c, p), cb, (s) => [0, upstreamStat(s as FsStat)]),
    readdir: (p: string, cb: Cb) => run(() => o.readdir(c, p), cb, (e) => [0, (e as { name: string }[]).map((x) => x.name)]),
    create: (p: string, mode: number, cb: Cb) => run(() => o.create(c, p, mode, 0), cb, (fd) => [0, fd]),
    open: (p: string, flags: number, cb: Cb) => run(() => o.open(c, p, flags), cb, (fd) => [0, fd]),
    read: (p: string, fd: number, buf: Buffer, _len: number, pos: number, cb: Cb) => run(() => o.read(c, p, fd, buf, pos), cb, (n) => [n]),
    write: (p: string, fd: number, buf: Buffer, _len: number, pos: number, cb: Cb) => run(() => o.write(c, p, fd, buf, pos), cb, (n) => [n]),
    truncate: (p: string, size: number, cb: Cb) => run(() => o.truncate(c, p, size), cb),
    ftruncate: (p: string, fd: number, size: number, cb: Cb) => run(() => o.ftruncate(c, p, fd, size), cb),
    utimens: (p: string, a: number, m: number, cb: Cb) => run(() => o.utimens(c, p, BigInt(a) * 1_000_000n, BigInt(m) * 1_000_000n), cb),
    chmod: (p: string, mode: number, cb: Cb) => run(() => o.chmod(c, p, mode), cb),
    chown: (p: string, uid: number, gid: number, cb: Cb) => run(() => o.chown(c, p, uid, gid), cb),
    mkdir: (p: string, mode: number, cb: Cb) => run(() => o.mkdir(c, p, mode), cb),
    rmdir: (p: string, cb: Cb) => run(() => o.rmdir(c, p), cb),
    unlink: (p: string, cb: Cb) => run(() => o.unlink(c, p), cb),
    rename: (a: string, b: string, cb: Cb) => run(() => o.rename(c, a, b), cb),
    release: (p: string, fd: number, cb: Cb) => run(() => o.release(c, p, fd), cb),
  };
}

function mountUpstream(dir: string, ops: FuseOps, opts: MountOptions): Promise<TestMount> {
  const Fuse = createRequire(import.meta.url)('fuse-native') as UpstreamCtor;
  const fuse = new Fuse(dir, upstreamOps(ops), {
    fsname: opts.fsname, subtype: opts.subtype ?? 'galleon', allowOther: opts.allowOther ?? false,
    defaultPermissions: opts.defaultPermissions ?? true,
    attrTimeout: opts.attrTimeoutSec ?? 1, entryTimeout: opts.entryTimeoutSec ?? 1,
  });
  const unmount = (): Promise<void> => new Promise((res, rej) => fuse.unmount((e) => (e ? rej(e) : res())));
  return new Promise((res, rej) => fuse.mount((e) => (e ? rej(e) : res({ unmount }))));
}
