/**
 * Write-back of new files under a directory delegation (issue #14; design and guarantee in
 * vfs/README.md, "Write-back with directory delegation"). While this mount's session holds the
 * delegation of a directory (`fsDelegate`: the namespace then refuses every other session's
 * access to its entries with DELEGATED, and their client recalls and waits), a create there is
 * local: inode from the mount's range, attributes built here, bytes in the file's FileData; its
 * close costs no Raft write and no block write. A flusher writes the files' blocks at the
 * volume's write concern (≤ `maxFlushInFlight` files at once) and then commits all their creates
 * and sizes in ONE `fsCommitBatch` (all or nothing). It runs `writebackMs` after the first
 * buffered close, when the buffer passes its bounds, at fsync of a buffered file, at `vfs sync`,
 * before any other operation of this mount on the directory (`settle`), at unmount, and when
 * another node's access recalls the directory (learnt from the metadata watch: then the
 * delegation is released with the batch).
 *
 * The host file system (GalleonFs) keeps its handles; it asks `isPending`/`lookup`/`fileOf` and
 * calls `create`, `settle`, `flushFile`, `released`; a committed file is handed back to it with
 * `hooks.adopt` (its open handles counted in the batch's `open`), a lost one with `hooks.lost`.
 */
import { access, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import type { FsApi, FsAttr, FsBatchFile, FsCaller } from '../../proto/metadata-types.js';
import type { FileData, VolumeData } from '../data/index.js';
import { fsError } from '../fuse/errno.js';

/** A buffered close is committed at most this long after it returned (unless a bound or a recall comes first). */
export const defaultWritebackMs = 1_000;
/** Bytes the buffered new files hold (the sizes their writes reached: about their buffers' memory) past which the flusher runs at once. */
export const maxWritebackBytes = 64 * 1024 * 1024;
/** New files buffered at most (one fsCommitBatch takes up to 4,096: the namespace's `maxBatchFiles`). */
export const maxWritebackFiles = 4_096;
/** Files whose blocks a flush writes at once. */
export const maxFlushInFlight = 64;
/** Directories this mount holds at once (the namespace grants a session at most 64). */
export const maxHeldDirs = 64;
/** A directory recalled from us (or refused to us) is not asked for again for this long: no ping-pong. */
export const redelegateAfterMs = 5_000;
/** Directories remembered in that back-off. */
export const maxBackoffDirs = 1_024;
/** A name's bytes at most (the namespace's bound: `fsStatfs().maxNameBytes`). */
export const maxNameBytes = 255;
/** A directory with more entries than this is given back at once (its names are held in memory). */
export const maxDelegatedNames = 16_384;
/** Entries per readdir page while learning a granted directory's names. */
export const namesPageEntries = 1_024;
/** One watch call of the recall loop (the member's bound is 60 s). */
export const recallWatchMs = 30_000;
/** Pause after a failed watch call before the next. */
export const watchRetryMs = 1_000;
/** A held directory's reservation of the volume's size (fsReserve) grows by this much at a time. */
export const reserveStepBytes = 4 * 1024 * 1024;

export type WritebackApi = Pick<FsApi, 'fsDelegate' | 'fsReleaseDelegation' | 'fsCommitBatch' | 'fsReserve' | 'fsDelegationsOf' | 'fsReaddir' | 'fsLookup' | 'fsGetattr'> & {
  waitForChange(sinceIndex: number, timeoutMs: number): Promise<{ index: number; changed: boolean }>;
};

/** A new file of a held directory, not in the namespace yet. */
export interface PendingFile {
  dir: number;
  /** Path of its directory when it was made (a rename under it settles every held directory first). */
  dirPath: string;
  name: string;
  ino: number;
  caller: FsCaller;
  base: FsAttr;
  file: FileData;
  /** Set while a batch that carries it is in flight: an open waits for it, then opens the committed file. */
  committing: Promise<void> | null;
  /** The size its writes were allowed to reach under its directory's reservation. */
  claimedBytes: number;
}

interface HeldDir {
  ino: number;
  /** The directory's names in the namespace (learnt at the grant; only this mount changes them while held). */
  names: Set<string>;
  files: Map<string, PendingFile>;
  flushing: Promise<void> | null;
  releasing: boolean;
  /** When this mount last created a file in it (the batch stamps the directory with it), or null. */
  touchedNs: bigint | null;
  /** What the namespace set aside for our buffered files here (fsReserve); their claims never pass it. */
  reservedBytes: number;
  /** The fsReserve in flight (one at a time: a late smaller target must not shrink a grown one). */
  reserving: Promise<void> | null;
  /** The sum of its buffered files' `claimedBytes` (kept as they change: a sum over the files per write was O(files)). */
  claimed: number;
}

export interface WritebackHooks {
  /** Handles this mount has open on `ino`. */
  handlesOf(ino: number): number;
  /** The batch created the file (counting `sentOpen` handles of our session): the host takes it over. */
  adopt(p: PendingFile, attr: FsAttr, parent: FsAttr, sentOpen: number): Promise<void>;
  /** The batch can never commit (the delegation ended: lease expired): the file is gone. */
  lost(p: PendingFile): void;
}

export interface WritebackOptions {
  api: WritebackApi;
  volumeId: string;
  data: VolumeData;
  session: () => string;
  nextIno: () => Promise<number>;
  giveBackIno: (ino: number) => void;
  hooks: WritebackHooks;
  log: Logger;
  writebackMs?: number;
  nowMs?: () => number;
  /** The volume's size (its quota): no reservation asks for more. */
  volumeBytes?: number;
  /** Test-only (mount-volume.ts `holdBatchEnv`): while this file exists, a batch waits between its block writes and its commit. */
  holdCommitFile?: string;
}

/** Why the flusher should run now (pure: the bounds against what is buffered), or null. */
export function flushReason(files: number, dirtyBytes: number, limits = { maxFiles: maxWritebackFiles, maxBytes: maxWritebackBytes }): string | null {
  if (files >= limits.maxFiles) return 'files';
  if (dirtyBytes >= limits.maxBytes) return 'bytes';
  return null;
}

/** The ctime a new file gets here: the mount's clock (the namespace's leader stamps its own for synchronous creates). */
function nowNsOf(ms: number): bigint {
  return BigInt(ms) * 1_000_000n;
}

export class WriteBack {
  private readonly held = new Map<number, HeldDir>();
  private readonly byIno = new Map<number, PendingFile>();
  private readonly asking = new Map<number, Promise<HeldDir | null>>();
  private readonly backoff = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private watching = false;
  private closed = false;
  private readonly now: () => number;
  private readonly writebackMs: number;
  /** Batches committed (tests, `vfs status`). */
  batches = 0;

  constructor(private readonly o: WritebackOptions) {
    this.now = o.nowMs ?? Date.now;
    this.writebackMs = o.writebackMs ?? defaultWritebackMs;
  }

  isPending(ino: number): boolean {
    return this.byIno.has(ino);
  }

  /** A buffered file's attributes as they stand (size and mtime from its buffer). */
  attrOf(ino: number): FsAttr | undefined {
    const p = this.byIno.get(ino);
    if (p === undefined) return undefined;
    const mtimeNs = p.file.mtime.toString();
    return { ...p.base, size: p.file.size, mtimeNs, ctimeNs: p.base.ctimeNs < mtimeNs ? mtimeNs : p.base.ctimeNs };
  }

  lookup(dir: number, name: string): FsAttr | undefined {
    const p = this.held.get(dir)?.files.get(name);
    return p === undefined ? undefined : this.attrOf(p.ino);
  }

  /**
   * True when `name` is surely not in `dir`: we hold it (nobody else changes its entries, and our
   * own changes other than creates give it back first) and neither the namespace's names we
   * learnt at the grant nor our buffered files have it — the negative lookup of open(O_CREAT)
   * answered without a round trip.
   */
  absent(dir: number, name: string): boolean {
    const h = this.held.get(dir);
    return h !== undefined && !h.releasing && !h.names.has(name) && !h.files.has(name);
  }

  /** The buffered file's FileData for a new handle, or null once it is committed (after any batch in flight). */
  async fileOf(ino: number): Promise<FileData | null> {
    let p = this.byIno.get(ino);
    while (p?.committing != null) {
      await p.committing;
      p = this.byIno.get(ino);
    }
    return p?.file ?? null;
  }

  /** The buffered file's FileData as it is (no wait): for a handle made while it is buffered. */
  fileOfNow(ino: number): FileData | null {
    return this.byIno.get(ino)?.file ?? null;
  }

  get holdsAny(): boolean {
    return this.held.size > 0;
  }

  holds(dir: number): boolean {
    return this.held.has(dir);
  }

  get pendingFiles(): number {
    return this.byIno.size;
  }

  /** Bytes of the buffered files (counted against the quota until their batch commits them). */
  pendingBytes(): number {
    let sum = 0;
    for (const p of this.byIno.values()) sum += p.file.size;
    return sum;
  }

  /**
   * What the buffered files hold: the sizes their writes reached (a dirty block's buffer holds what
   * was written into it, so this is their memory to within 4 KiB per file). Kept as a running sum:
   * a sum over every buffered file at each release took 14 % of the mount's thread at 4 workers.
   */
  private claimedTotal = 0;

  /** `p`'s claim becomes `bytes` (both sums follow). */
  private setClaim(h: HeldDir, p: PendingFile, bytes: number): void {
    h.claimed += bytes - p.claimedBytes;
    this.claimedTotal += bytes - p.claimedBytes;
    p.claimedBytes = bytes;
    invariant(h.claimed >= 0 && this.claimedTotal >= 0, 'write-back claims below zero');
  }

  /**
   * A local create of `name` in `dir` (attributes of `parent`), or null: the directory is not
   * ours (or is being given back), or the name exists in the namespace — the synchronous path
   * decides then. A buffered file of that name is opened again (EEXIST when exclusive).
   */
  async create(dir: number, dirPath: string, parent: FsAttr, name: string, caller: FsCaller, mode: number, exclusive: boolean): Promise<FsAttr | null> {
    // What fsCreate would refuse is refused here: one bad name must never sink a whole batch.
    if (Buffer.byteLength(name) > maxNameBytes) throw fsError('ENAMETOOLONG');
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw fsError('EINVAL');
    const h = await this.hold(dir);
    if (h === null || h.names.has(name)) return null;
    const existing = h.files.get(name);
    if (existing !== undefined) {
      if (exclusive) throw fsError('EEXIST');
      return this.attrOf(existing.ino) ?? null;
    }
    if (flushReason(this.byIno.size, 0) !== null) await this.flushAll(false, false);
    const ino = await this.o.nextIno();
    // Anything may have happened while the number came: look again.
    if (this.held.get(dir) !== h || h.releasing || h.names.has(name) || h.files.has(name) || this.closed) {
      this.o.giveBackIno(ino);
      return null;
    }
    const t = nowNsOf(this.now()).toString();
    const gid = (parent.mode & 0o2000) !== 0 ? parent.gid : caller.gid;
    // As the namespace does for a caller not in the group (it knows no more groups than we send).
    const m = (mode & 0o2000) !== 0 && caller.uid !== 0 && gid !== caller.gid ? mode & ~0o2000 : mode;
    const base: FsAttr = { ino, type: 'file', mode: m, uid: caller.uid, gid, size: 0, nlink: 1, atimeNs: t, mtimeNs: t, ctimeNs: t, rdev: 0, generation: 0, truncEpoch: 0 };
    const file = this.o.data.open(ino, { sizeBytes: 0, mtimeNs: BigInt(t), changeToken: `new:${ino}`, truncEpoch: 0 });
    const p: PendingFile = { dir, dirPath, name, ino, caller, base, file, committing: null, claimedBytes: 0 };
    h.files.set(name, p);
    this.byIno.set(ino, p);
    h.touchedNs = BigInt(t);
    return base;
  }

  /** A held directory as its holder sees it: changed (mtime, ctime) by its buffered creates too. */
  dirAttr(a: FsAttr): FsAttr {
    const t = this.held.get(a.ino)?.touchedNs ?? null;
    if (t === null || BigInt(a.mtimeNs) >= t) return a;
    return { ...a, mtimeNs: t.toString(), ctimeNs: BigInt(a.ctimeNs) >= t ? a.ctimeNs : t.toString() };
  }

  /**
   * A write of buffered file `ino` up to `endBytes`: other nodes count our buffered bytes only as
   * the reservation of their directory (fsReserve, counted as used by fsStatfs), so the claims of
   * its files never pass it; it grows `reserveStepBytes` at a time. ENOSPC when the namespace
   * has no room left for the growth (committed + every holder's reservation = the volume's size).
   */
  async grow(ino: number, endBytes: number): Promise<void> {
    const p = this.byIno.get(ino);
    const h = p === undefined ? undefined : this.held.get(p.dir);
    if (p === undefined || h === undefined) return;
    for (let asked = false; ; asked = true) {
      const need = h.claimed - p.claimedBytes + Math.max(p.claimedBytes, endBytes);
      if (need <= h.reservedBytes) {
        this.setClaim(h, p, Math.max(p.claimedBytes, endBytes));
        return;
      }
      if (asked || need > (this.o.volumeBytes ?? Number.MAX_SAFE_INTEGER)) throw fsError('ENOSPC', 'the volume is full (its size is its quota; other nodes hold reservations for their buffered files)');
      while (h.reserving !== null) await h.reserving.catch(() => undefined);
      const target = Math.min(this.o.volumeBytes ?? Number.MAX_SAFE_INTEGER, Math.ceil((h.claimed - p.claimedBytes + Math.max(p.claimedBytes, endBytes)) / reserveStepBytes) * reserveStepBytes);
      if (target <= h.reservedBytes) continue;
      const run = this.o.api.fsReserve(this.o.volumeId, h.ino, this.o.session(), target).then((r) => { h.reservedBytes = r.reservedBytes; });
      h.reserving = run;
      try {
        await run;
      } finally {
        h.reserving = null;
      }
    }
  }

  /** A synchronous create of ours made `name` in a held directory. */
  noteName(dir: number, name: string): void {
    this.held.get(dir)?.names.add(name);
  }

  /** A handle of a buffered file closed: the flusher's clock starts (or a bound makes it run now). */
  released(): void {
    if (flushReason(this.byIno.size, this.claimedTotal) !== null) {
      void this.flushAll(false, false).catch((err: unknown) => this.o.log.warn({ err }, 'write-back flush at a bound failed; retried'));
      return;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== null || this.closed || this.byIno.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushAll(false, false).catch((err: unknown) => this.o.log.warn({ err }, 'write-back flush failed; retried'))
        .finally(() => this.schedule());
    }, this.writebackMs);
    this.timer.unref();
  }

  /** fsync of a buffered file: its directory's files committed (durable) before it returns. */
  async flushFile(ino: number): Promise<void> {
    const p = this.byIno.get(ino);
    const h = p === undefined ? undefined : this.held.get(p.dir);
    if (h !== undefined) await this.flushDir(h, false, true);
  }

  /**
   * Before another operation of this mount on `dir` (or on a file buffered in it): its files are
   * committed and, when `release`, the delegation given back (the namespace refuses our own
   * commands other than create into a delegated directory), so the operation runs as before.
   */
  async settle(dir: number, release: boolean): Promise<void> {
    const h = this.held.get(dir);
    if (h !== undefined) await this.flushDir(h, release, true);
  }

  /** Every held directory committed and (when `release`) given back: `vfs sync`, rename, rmdir, unmount. */
  async flushAll(release: boolean, force = true): Promise<void> {
    const errors: unknown[] = [];
    await Promise.all([...this.held.values()].map((h) => this.flushDir(h, release, force).catch((err: unknown) => { errors.push(err); })));
    if (errors.length > 0) throw errors[0];
  }

  /** Unmount: everything committed and released; nothing is delegated to this mount afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.flushAll(true);
  }

  // ---- the delegation -----------------------------------------------------------------------

  private async hold(dir: number): Promise<HeldDir | null> {
    const h = this.held.get(dir);
    if (h !== undefined) return h.releasing ? null : h;
    if (this.closed || this.held.size >= maxHeldDirs || (this.backoff.get(dir) ?? 0) > this.now()) return null;
    let asked = this.asking.get(dir);
    if (asked === undefined) {
      asked = this.ask(dir).finally(() => this.asking.delete(dir));
      this.asking.set(dir, asked);
    }
    return asked;
  }

  private async ask(dir: number): Promise<HeldDir | null> {
    const session = this.o.session();
    const r = await this.o.api.fsDelegate(this.o.volumeId, dir, session).catch((err: unknown) => {
      this.o.log.debug({ err, dir }, 'delegation request failed; creating synchronously');
      return null;
    });
    if (r?.granted !== true) {
      this.backOff(dir);
      return null;
    }
    // Frozen for everyone else from now on: the listing is the whole truth, changed only by us.
    const names = await this.listNames(dir, session).catch((err: unknown) => { this.o.log.debug({ err, dir }, 'listing a delegated directory failed'); return null; });
    if (names === null || this.closed) {
      this.backOff(dir);
      await this.o.api.fsReleaseDelegation(this.o.volumeId, dir, session).catch(() => undefined);
      return null;
    }
    const h: HeldDir = { ino: dir, names, files: new Map(), flushing: null, releasing: false, touchedNs: null, reservedBytes: 0, reserving: null, claimed: 0 };
    this.held.set(dir, h);
    this.startWatch();
    return h;
  }

  private async listNames(dir: number, session: string): Promise<Set<string> | null> {
    const names = new Set<string>();
    let cursor: string | null = null;
    do {
      const page = await this.o.api.fsReaddir(this.o.volumeId, dir, cursor, namesPageEntries, { session });
      for (const e of page.entries) names.add(e.name);
      if (names.size > maxDelegatedNames) return null;
      cursor = page.cursor;
    } while (cursor !== null);
    return names;
  }

  private backOff(dir: number): void {
    this.backoff.delete(dir);
    this.backoff.set(dir, this.now() + redelegateAfterMs);
    if (this.backoff.size > maxBackoffDirs) {
      const oldest = this.backoff.keys().next().value;
      if (oldest !== undefined) this.backoff.delete(oldest);
    }
  }

  /**
   * The recall loop: while we hold anything, long-poll the watch (a member answers when it
   * applies a recall) and read our delegations' recall stamps; a recalled directory is flushed
   * and released, one that is no longer ours (the lease lapsed) loses its buffered files.
   */
  private startWatch(): void {
    if (this.watching) return;
    this.watching = true;
    void this.watchLoop().finally(() => { this.watching = false; });
  }

  private async watchLoop(): Promise<void> {
    let since = 0;
    while (!this.closed && this.held.size > 0) {
      try {
        since = (await this.o.api.waitForChange(since, since === 0 ? 0 : recallWatchMs)).index;
        if (this.closed) return;
        await this.checkRecalls();
      } catch (err) {
        this.o.log.debug({ err }, 'write-back recall watch failed; again shortly');
        await new Promise((res) => setTimeout(res, watchRetryMs).unref());
      }
    }
  }

  private async checkRecalls(): Promise<void> {
    // Only directories held before the read: one granted meanwhile may be missing from its answer.
    const before = new Set(this.held.values());
    const mine = await this.o.api.fsDelegationsOf(this.o.volumeId, this.o.session());
    const stamped = new Map(mine.map((d) => [d.dir, d.recallAtMs]));
    for (const h of before) {
      if (this.held.get(h.ino) !== h || (h.flushing !== null && h.releasing)) continue;
      if (!stamped.has(h.ino)) {
        if (h.flushing === null) this.dropLost(h, 'the delegation is no longer ours (mount lease lapsed)');
        continue;
      }
      if (stamped.get(h.ino) === null) continue;
      this.o.log.debug({ dir: h.ino, files: h.files.size }, 'directory recalled by another node; flushing and releasing');
      this.backOff(h.ino);
      void this.flushDir(h, true, true).catch((err: unknown) => this.o.log.warn({ err, dir: h.ino }, 'flush for a recall failed; the other node waits for the next try'));
    }
  }

  private dropLost(h: HeldDir, why: string): void {
    this.held.delete(h.ino);
    if (h.files.size > 0) this.o.log.error({ dir: h.ino, files: [...h.files.keys()].slice(0, 16), count: h.files.size }, `buffered new files lost: ${why}`);
    for (const p of h.files.values()) {
      this.byIno.delete(p.ino);
      this.setClaim(h, p, 0);
      // Blocks a flush (or a full write buffer) already stored for it belong to no file: free them
      // (a buffered file only grows: a truncate of it commits it first, so its size covers them;
      // inode numbers are never reused, so nothing can race the deletes).
      const blocks = Math.ceil(p.file.size / this.o.data.blockSizeBytes);
      this.o.data.freer.enqueue(p.ino, { fromBlock: 0, toBlock: blocks });
      this.o.data.discard(p.file);
      this.o.hooks.lost(p);
    }
    h.files.clear();
  }

  // ---- the flusher --------------------------------------------------------------------------

  /** One flush of a directory at a time; a caller that wants its files in waits for the one in flight and runs again. */
  private async flushDir(h: HeldDir, release: boolean, force: boolean): Promise<void> {
    while (h.flushing !== null) await h.flushing.catch(() => undefined);
    if (this.held.get(h.ino) !== h) return;
    const run = this.runFlush(h, release, force);
    h.flushing = run;
    try {
      await run;
    } finally {
      h.flushing = null;
    }
  }

  private async runFlush(h: HeldDir, release: boolean, force: boolean): Promise<void> {
    if (release) h.releasing = true;
    try {
      for (;;) {
        const batch = [...h.files.values()].filter((p) => force || this.o.hooks.handlesOf(p.ino) === 0).slice(0, maxWritebackFiles);
        const last = batch.length === h.files.size;
        if (batch.length > 0) await this.commitBatch(h, batch, release && last);
        if (!last && force) continue;
        break;
      }
      if (release && this.held.get(h.ino) === h) {
        if (h.files.size === 0) this.held.delete(h.ino);
        await this.o.api.fsReleaseDelegation(this.o.volumeId, h.ino, this.o.session()).catch((err: unknown) => {
          if (!isGalleonError(err, ErrorCode.LEASE_NOT_FOUND)) throw err;
        });
      }
    } catch (err) {
      if (release && this.held.get(h.ino) === h) h.releasing = false;
      throw err;
    }
  }

  /** Blocks durable at the write concern, then one fsCommitBatch; the files then belong to the host. */
  private async commitBatch(h: HeldDir, batch: PendingFile[], release: boolean): Promise<void> {
    let done = (): void => undefined;
    const gate = new Promise<void>((res) => { done = res; });
    for (const p of batch) p.committing = gate;
    try {
      const flushed = await mapLimit(batch, maxFlushInFlight, (p) => p.file.fsync());
      if (this.o.holdCommitFile !== undefined) await holdWhile(this.o.holdCommitFile);
      const files: FsBatchFile[] = batch.map((p, i) => {
        const f = flushed[i];
        invariant(f !== undefined, 'one flush result per batch file');
        return {
          name: p.name, ino: p.ino, caller: p.caller, mode: p.base.mode, size: f.sizeBytes, ctimeNs: p.base.ctimeNs, mtimeNs: f.mtimeNs.toString(), open: this.o.hooks.handlesOf(p.ino),
        };
      });
      const inBatch = new Set(batch);
      // What the directory still buffers outside this batch keeps its reservation; the rest goes back.
      const keep = release ? undefined : [...h.files.values()].reduce((n, p) => n + (inBatch.has(p) ? 0 : p.claimedBytes), 0);
      const r = await this.sendBatch(h, batch, files, release, keep);
      if (r === null) return;
      if (keep !== undefined) h.reservedBytes = Math.min(keep, Math.max(0, h.reservedBytes - files.reduce((n, f) => n + f.size, 0)));
      this.batches++;
      invariant(r.attrs.length === batch.length, 'one attribute record per batch file');
      const adopted = batch.map((p, i) => {
        h.files.delete(p.name);
        this.setClaim(h, p, 0);
        h.names.add(p.name);
        this.byIno.delete(p.ino);
        const attr = r.attrs[i];
        invariant(attr !== undefined, 'one attribute record per batch file');
        return this.o.hooks.adopt(p, attr, r.parent, files[i]?.open ?? 0);
      });
      if (release) this.held.delete(h.ino);
      done();
      await Promise.all(adopted);
    } finally {
      for (const p of batch) p.committing = null;
      done();
    }
  }

  /** The attributes of a batch that an earlier try committed (every file there under its inode), else null. */
  private async landedBefore(h: HeldDir, batch: PendingFile[]): Promise<{ attrs: FsAttr[]; parent: FsAttr } | null> {
    const session = this.o.session();
    const attrs = await Promise.all(batch.map((p) => this.o.api.fsLookup(this.o.volumeId, h.ino, p.name, { session }).catch(() => null)));
    if (attrs.some((a, i) => a?.ino !== batch[i]?.ino)) return null;
    this.o.log.warn({ dir: h.ino, files: batch.length }, 'a write-back batch had landed on an earlier try; taking its files as committed');
    return { attrs: attrs.filter((a): a is FsAttr => a !== null), parent: await this.o.api.fsGetattr(this.o.volumeId, h.ino) };
  }

  private async sendBatch(h: HeldDir, batch: PendingFile[], files: FsBatchFile[], release: boolean, keep: number | undefined): Promise<{ attrs: FsAttr[]; parent: FsAttr } | null> {
    try {
      return await this.o.api.fsCommitBatch(this.o.volumeId, this.o.session(), h.ino, files, release, keep);
    } catch (err) {
      if (err instanceof GalleonError && err.details.errno === 'EEXIST') {
        // Only we change this directory: EEXIST means an earlier try of this very batch landed
        // (its reply was lost after the client's retries). Then its files are ours: read them back.
        const landed = await this.landedBefore(h, batch);
        if (landed !== null) return landed;
      }
      if (!(err instanceof GalleonError) || err.code !== ErrorCode.LEASE_NOT_FOUND) throw err;
      // Our session no longer holds it (lease lapsed): these files can never be created.
      this.o.log.error({ dir: h.ino, files: batch.length }, 'write-back batch refused: the delegation ended; its files are lost');
      this.dropLost(h, 'delegation ended before the batch');
      return null;
    }
  }
}

/** How often the test-only hold looks at its switch file. */
const holdPollMs = 100;

/** The test-only hold: while `file` exists (after saying so in `<file>.reached`). */
async function holdWhile(file: string): Promise<void> {
  const exists = (): Promise<boolean> => access(file).then(() => true, () => false);
  if (!(await exists())) return;
  await writeFile(`${file}.reached`, String(Date.now()));
  while (await exists()) await new Promise((res) => setTimeout(res, holdPollMs));
}


/** `f` over `items` with at most `limit` running at once; results in order. */
async function mapLimit<T, R>(items: T[], limit: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
