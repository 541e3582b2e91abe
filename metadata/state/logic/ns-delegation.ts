/**
 * Directory delegations (issue #14, write-back of small files; design in vfs/README.md, "Write-back
 * with directory delegation"): the state-machine half. A mount session that holds the delegation
 * of a directory may create files in it locally and commit them later, many at once, with
 * `fsCommitBatch`; while it holds it, every command or lookup/readdir of another session that reads
 * or changes the directory's entries is refused with DELEGATED (nothing changes), so that a
 * reader is made to recall (`fsRecall`) and wait for the holder's release instead of missing files
 * the holder already closed. A session's delegations end with its mount lease (`deleteLease`).
 *
 * Used by the mounts' write-back (vfs/fs/writeback.ts; the recall wait is MetadataClient's):
 * with no record in `ng/` (a strict mount, or GALLEON_WRITEBACK=0), every check here passes.
 */
import { ErrorCode, GalleonError, invariant, posixError } from '../../../proto/errors.js';
import type { FsAttr, FsInodeRange, Lease, Volume } from '../../../proto/metadata-types.js';
import type { CommandContext } from './commands.js';
import { isLive } from './leases.js';
import {
  attrOf, checkCaller, checkFsName, checkIno, checkMode, checkTimeNs, entryId, findEntry, hex16, inGroup, maxFileBytes, queueFree, requireDir, saveInode,
  touchDir, type DirEntry, type Inode,
} from './ns-store.js';
import { Table, type StateReader, type Tx } from './tx.js';
import { checkInt, checkKeys, checkString, invalidArgument, isRecord } from './validate.js';

/** Directories one mount session may hold at once (the record table is hot: bounded by sessions × this). */
export const maxDelegationsPerSession = 64;
/** Files one fsCommitBatch creates at most (the mount's write-back buffer is bounded the same). */
export const maxBatchFiles = 4_096;

/** `ng/<volumeId>/<dir hex16>`: who holds the directory, and since when a recall is asked. */
export interface Delegation {
  session: string;
  recallAtMs: number | null;
  /**
   * Bytes of the volume's size set aside for the holder's buffered new files in this directory
   * (fsReserve; absent: 0): counted as used by fsStatfs, so that committed + reserved never passes
   * the volume's size. A batch turns what it commits into file sizes; release and the lease's end return the rest.
   */
  reservedBytes?: number;
}

export interface DelegateReply {
  granted: boolean;
  /** The holder (this session when granted). */
  session: string | null;
  /** Set once someone asked for the directory: the holder must flush and release. */
  recallAtMs: number | null;
  /** fsRecall: whether the holder's mount lease is live (it renews it: alive, maybe slow). */
  holderLive?: boolean;
}

export const delegationId = (volumeId: string, dir: number): string => `${volumeId}/${hex16(dir)}`;

export function findDelegation(r: StateReader, vol: Volume, dir: number): Delegation | undefined {
  return r.get<Delegation>(Table.NsDelegation, delegationId(vol.id, dir));
}

/**
 * Refuses (DELEGATED) an access to the entries of `dir` by anyone but its holder. `session` is the
 * caller's mount session, null when the caller did not say (then only an undelegated directory passes).
 */
export function checkNotDelegated(r: StateReader, vol: Volume, dir: number, session: string | null): void {
  const d = findDelegation(r, vol, dir);
  if (d === undefined || d.session === session) return;
  throw new GalleonError(ErrorCode.DELEGATED, `directory ${dir} of volume ${vol.name} is delegated to mount session ${d.session}`, {
    hint: 'recall it with fsRecall and run the request again once the holder has released it', details: { volume: vol.id, dir, session: d.session },
  });
}

/** The optional session argument of a query or command: a string, or absent/null. */
export function optSession(raw: unknown): string | null {
  return raw === undefined || raw === null ? null : checkString('session', raw, 'pass the id of the mount lease this mount holds');
}

function liveMountLease(tx: Tx, ctx: CommandContext, vol: Volume, id: string): boolean {
  const lease = tx.get<Lease>(Table.Lease, id);
  return lease !== undefined && isLive(lease, ctx.stampMs) && lease.kind === 'mount' && lease.resource === vol.id;
}

function requireMountLease(tx: Tx, ctx: CommandContext, vol: Volume, raw: unknown): string {
  const session = checkString('session', raw, 'pass the id of the mount lease this mount holds on the volume');
  if (!liveMountLease(tx, ctx, vol, session)) {
    throw new GalleonError(ErrorCode.LEASE_NOT_FOUND, `no live mount lease ${session} on volume ${vol.name}`, { hint: 'acquire (or renew) the mount lease first' });
  }
  return session;
}

function heldBy(r: StateReader, vol: Volume, session: string): number {
  const prefix = `${vol.id}/`;
  return r.ids(Table.NsDelegation).filter((id) => id.startsWith(prefix) && r.get<Delegation>(Table.NsDelegation, id)?.session === session).length;
}

/**
 * fsDelegate(volume, dir, session): granted when no live session holds `dir` (a holder whose lease
 * is no longer live loses it). Refused, without a recall, when another live session holds it or
 * this one holds `maxDelegationsPerSession` already: the mount then creates synchronously.
 */
export function delegate(tx: Tx, ctx: CommandContext, vol: Volume, dirRaw: unknown, sessionRaw: unknown): DelegateReply {
  const session = requireMountLease(tx, ctx, vol, sessionRaw);
  const dir = requireDir(tx, vol, checkIno('dir', dirRaw));
  const held = findDelegation(tx, vol, dir.ino);
  if (held !== undefined && (held.session === session || liveMountLease(tx, ctx, vol, held.session))) {
    return { granted: held.session === session, session: held.session, recallAtMs: held.recallAtMs };
  }
  if (heldBy(tx, vol, session) >= maxDelegationsPerSession) return { granted: false, session: null, recallAtMs: null };
  tx.put(Table.NsDelegation, delegationId(vol.id, dir.ino), { session, recallAtMs: null } satisfies Delegation);
  return { granted: true, session, recallAtMs: null };
}

/** Bytes reserved for buffered new files in `vol`, over every delegation (few records: a hot table). */
export function reservedOf(r: StateReader, vol: Volume): number {
  const prefix = `${vol.id}/`;
  let sum = 0;
  for (const id of r.ids(Table.NsDelegation)) if (id.startsWith(prefix)) sum += r.get<Delegation>(Table.NsDelegation, id)?.reservedBytes ?? 0;
  return sum;
}

/** What a reservation of `held` may become when its holder asks for `target` bytes (pure): less is given back, more only from what is free. */
export function reservationAfter(heldBytes: number, target: number, sizeBytes: number, usedBytes: number, reservedBytes: number): number {
  if (target <= heldBytes) return target;
  const free = Math.max(0, sizeBytes - usedBytes - reservedBytes);
  return heldBytes + Math.min(target - heldBytes, free);
}

/**
 * fsReserve(volume, dir, session, bytes): sets the holder's reservation for `dir` to `bytes` — a
 * shrink always, a growth only as far as the volume has room (committed + every reservation ≤ its
 * size); the answer is what it holds now (less than asked: the mount answers ENOSPC). The session
 * must hold the delegation (else LEASE_NOT_FOUND, as fsCommitBatch).
 */
export function reserve(tx: Tx, ctx: CommandContext, vol: Volume, args: unknown[], usedBytes: number): { reservedBytes: number } {
  const [dirRaw, sessionRaw, bytesRaw] = args;
  const session = requireMountLease(tx, ctx, vol, sessionRaw);
  const dir = checkIno('dir', dirRaw);
  const target = checkInt('bytes', bytesRaw, 0, vol.sizeBytes);
  const held = requireHeld(tx, vol, dir, session);
  const before = held.reservedBytes ?? 0;
  const after = reservationAfter(before, target, vol.sizeBytes, usedBytes, reservedOf(tx, vol));
  if (after !== before) tx.put(Table.NsDelegation, delegationId(vol.id, dir), { ...held, reservedBytes: after } satisfies Delegation);
  invariant(after >= 0 && after <= vol.sizeBytes, 'a reservation within the volume');
  return { reservedBytes: after };
}

function requireHeld(r: StateReader, vol: Volume, dir: number, session: string): Delegation {
  const held = findDelegation(r, vol, dir);
  if (held?.session !== session) {
    throw new GalleonError(ErrorCode.LEASE_NOT_FOUND, `mount session ${session} holds no delegation of directory ${dir} in volume ${vol.name}`, {
      hint: 'the delegation ended (session expired or released): create the files again',
    });
  }
  return held;
}

/** fsRecall(volume, dir): asks the holder to flush and release (idempotent; the first stamp stays). */
export function recall(tx: Tx, ctx: CommandContext, vol: Volume, dirRaw: unknown): DelegateReply {
  const dir = checkIno('dir', dirRaw);
  const held = findDelegation(tx, vol, dir);
  if (held === undefined) return { granted: false, session: null, recallAtMs: null };
  const recallAtMs = held.recallAtMs ?? ctx.stampMs;
  if (held.recallAtMs === null) tx.put(Table.NsDelegation, delegationId(vol.id, dir), { ...held, recallAtMs } satisfies Delegation);
  return { granted: false, session: held.session, recallAtMs, holderLive: liveMountLease(tx, ctx, vol, held.session) };
}

/** One file of a batch: what fsCreate and fsCommitWrite would have been told, with the mount's own times. */
interface BatchFile {
  name: string;
  ino: number;
  caller: ReturnType<typeof checkCaller>;
  mode: number;
  size: number;
  ctimeNs: string;
  mtimeNs: string;
  open: number;
}

/** Handles one batch file may count open for its session (a mount's own bound on handles). */
export const maxBatchFileHandles = 65_536;

const batchFileKeys = ['name', 'ino', 'caller', 'mode', 'size', 'ctimeNs', 'mtimeNs', 'open'];

function checkBatchFile(raw: unknown): BatchFile {
  if (!isRecord(raw)) throw invalidArgument('a batch file must be {name, ino, caller, mode, size, ctimeNs, mtimeNs}', 'pass one object per new file');
  checkKeys('batch file', raw, batchFileKeys);
  return {
    name: checkFsName(raw.name), ino: checkIno('ino', raw.ino), caller: checkCaller(raw.caller), mode: checkMode(raw.mode),
    size: checkInt('size', raw.size, 0, maxFileBytes), ctimeNs: checkTimeNs('ctimeNs', raw.ctimeNs), mtimeNs: checkTimeNs('mtimeNs', raw.mtimeNs),
    open: raw.open === undefined ? 0 : checkInt('open', raw.open, 0, maxBatchFileHandles),
  };
}

function checkBatch(raw: unknown): BatchFile[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > maxBatchFiles) {
    throw invalidArgument(`files must be a list of 1 to ${maxBatchFiles} new files`, 'flush the write-back buffer in batches');
  }
  const files = raw.map(checkBatchFile);
  const names = new Set(files.map((f) => f.name));
  const inos = new Set(files.map((f) => f.ino));
  if (names.size !== files.length || inos.size !== files.length) throw invalidArgument('a batch names a file or an inode number twice', 'send each new file once');
  return files;
}

/**
 * fsCommitBatch(volume, session, dir, files, release): creates every file of the batch in `dir`
 * with its size and times, as fsCreate + fsCommitWrite would (owner from its caller, group and
 * set-gid from a set-gid directory, inode numbers allocated and unused, names absent), all or
 * nothing; a file's `open` handles are counted open for the session (still open on the mount). The session must hold the delegation (else LEASE_NOT_FOUND: the files are lost, as a
 * crashed local disk loses unsynced files); `release` ends it in the same command (its reservation
 * with it); otherwise the reservation shrinks by the batch's bytes, and to `keepReservedBytes` when given.
 */
export function commitBatch(
  tx: Tx, ctx: CommandContext, vol: Volume, args: unknown[], checkAllocated: (ino: number) => void, addOpen: (ino: number, session: string, count: number) => void,
): { attrs: FsAttr[]; parent: FsAttr } {
  const [sessionRaw, dirRaw, filesRaw, releaseRaw, keepRaw] = args;
  const session = requireMountLease(tx, ctx, vol, sessionRaw);
  const parent = requireDir(tx, vol, checkIno('dir', dirRaw));
  if (releaseRaw !== undefined && typeof releaseRaw !== 'boolean') throw invalidArgument('release must be true or false', 'pass true to end the delegation with this batch');
  const keep = keepRaw === undefined ? null : checkInt('keepReservedBytes', keepRaw, 0, vol.sizeBytes);
  const files = checkBatch(filesRaw);
  const held = requireHeld(tx, vol, parent.ino, session);
  const attrs = files.map((f) => {
    if (findEntry(tx, vol, parent.ino, f.name) !== undefined) throw posixError('EEXIST', `${JSON.stringify(f.name)} exists in directory ${parent.ino}`, 'a delegated directory cannot change under its holder: report this');
    checkAllocated(f.ino);
    const gid = (parent.mode & 0o2000) !== 0 ? parent.gid : f.caller.gid;
    const mode = (f.mode & 0o2000) !== 0 && f.caller.uid !== 0 && !inGroup(f.caller, gid) ? f.mode & ~0o2000 : f.mode;
    const inode: Inode = {
      ino: f.ino, type: 'file', mode, uid: f.caller.uid, gid, size: f.size, nlink: 1, atimeNs: f.ctimeNs, mtimeNs: f.mtimeNs, ctimeNs: f.ctimeNs, rdev: 0, generation: 0,
    };
    tx.put(Table.NsEntry, entryId(vol.id, parent.ino, f.name), { ino: f.ino, type: 'file' } satisfies DirEntry);
    const saved = attrOf(saveInode(tx, vol, undefined, inode));
    if (f.open > 0) addOpen(f.ino, session, f.open);
    return saved;
  });
  // The directory changed when its holder made the last of these files (what the holder's own stat
  // of it showed, writeback.ts `dirAttr`), never earlier than it last changed here.
  const lastCreate = files.reduce((m, f) => (BigInt(f.ctimeNs) > m ? BigInt(f.ctimeNs) : m), BigInt(parent.mtimeNs));
  const parentAfter = touchDir(tx, vol, parent, ctx, files.length, 0, lastCreate.toString());
  if (releaseRaw === true) tx.del(Table.NsDelegation, delegationId(vol.id, parent.ino));
  else if ((held.reservedBytes ?? 0) > 0) {
    // The batch's bytes were reserved: they are file sizes now. `keep`: what the holder still buffers there.
    const left = Math.max(0, (held.reservedBytes ?? 0) - files.reduce((n, f) => n + f.size, 0));
    tx.put(Table.NsDelegation, delegationId(vol.id, parent.ino), { ...held, reservedBytes: keep === null ? left : Math.min(left, keep) } satisfies Delegation);
  }
  invariant(attrs.length === files.length, 'one attribute record per batch file');
  return { attrs, parent: attrOf(parentAfter) };
}

/** fsReleaseDelegation(volume, dir, session): idempotent; only the holder's release counts. */
export function release(tx: Tx, vol: Volume, dirRaw: unknown, sessionRaw: unknown): { released: boolean } {
  const dir = checkIno('dir', dirRaw);
  const session = checkString('session', sessionRaw, 'pass the mount lease id that holds the delegation');
  if (findDelegation(tx, vol, dir)?.session !== session) return { released: false };
  tx.del(Table.NsDelegation, delegationId(vol.id, dir));
  return { released: true };
}

/**
 * fsDelegationsOf(volume, session): the directories a mount session holds, each with its recall
 * stamp — what a holder reads when its watch wakes, to flush and release the recalled ones.
 */
export function delegationsOf(r: StateReader, vol: Volume, sessionRaw: unknown): { dir: number; recallAtMs: number | null }[] {
  const session = checkString('session', sessionRaw, 'pass the id of the mount lease this mount holds');
  const prefix = `${vol.id}/`;
  return r.ids(Table.NsDelegation).filter((id) => id.startsWith(prefix)).flatMap((id) => {
    const d = r.get<Delegation>(Table.NsDelegation, id);
    return d?.session === session ? [{ dir: parseInt(id.slice(prefix.length), 16), recallAtMs: d.recallAtMs }] : [];
  });
}

/** Inode ranges remembered per session (the newest; a mount's buffered files take numbers from its latest range). */
export const maxRangesPerSession = 16;

interface SessionRanges {
  ranges: FsInodeRange[];
}

/** fsAllocateInodes with a session: the range is remembered for the reclaim at the session's end. */
export function recordRange(tx: Tx, ctx: CommandContext, vol: Volume, sessionRaw: unknown, range: FsInodeRange): void {
  const session = requireMountLease(tx, ctx, vol, sessionRaw);
  const id = `${vol.id}/${session}`;
  const ranges = [...(tx.get<SessionRanges>(Table.NsInodeRanges, id)?.ranges ?? []), range].slice(-maxRangesPerSession);
  tx.put(Table.NsInodeRanges, id, { ranges } satisfies SessionRanges);
}

/**
 * A mount lease ended (released, expired, or its volume deleted): its delegations go with it. One
 * that ended holding delegations may have died between its block writes and its fsCommitBatch:
 * the blocks of its inode ranges that no inode owns are queued for the reapers (one entry per range).
 */
export function dropSessionDelegations(tx: Tx, lease: Lease): void {
  if (lease.kind !== 'mount') return;
  const prefix = `${lease.resource}/`;
  let held = 0;
  for (const id of tx.ids(Table.NsDelegation)) {
    if (id.startsWith(prefix) && tx.get<Delegation>(Table.NsDelegation, id)?.session === lease.id) {
      tx.del(Table.NsDelegation, id);
      held++;
    }
  }
  const rangesId = `${lease.resource}/${lease.id}`;
  const ranges = tx.get<SessionRanges>(Table.NsInodeRanges, rangesId)?.ranges ?? [];
  if (ranges.length > 0) tx.del(Table.NsInodeRanges, rangesId);
  const vol = tx.get<Volume>(Table.Volume, lease.resource);
  const ns = tx.get<{ deleted?: boolean }>(Table.NsVolume, lease.resource);
  if (held === 0 || vol === undefined || ns === undefined || ns.deleted === true) return;
  for (const r of ranges) queueFree(tx, vol, r.start, 0, { inoEnd: r.end });
}
