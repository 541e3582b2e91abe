/**
 * One mounted volume: its mount lease (taken before the mount, renewed while it lives, released
 * after), its VolumeData, its GalleonFs, its block reaper and the FUSE mount itself.
 * The lease is what enforces the volume's access mode across the cluster (metadata/state
 * logic/leases.ts): a ReadWriteOnce volume held elsewhere is refused here with LEASE_CONFLICT
 * before anything is mounted.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import type { Lease, MetadataApi, Volume } from '../../proto/metadata-types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import { VolumeData } from '../data/index.js';
import { mountFs, type Mounted } from '../fuse/index.js';
import { GalleonFs, type FsCounters } from './galleon-fs.js';
import { BlockReaper } from './block-reaper.js';
import { RawFs } from './raw-fs.js';
import type { WritebackApi } from './writeback.js';

/** A mount lease outlives its holder by at most this long (then its open files are dropped). */
export const mountLeaseTtlMs = 15_000;
/** Renewed this often: two renewals may fail before the lease lapses. */
export const mountLeaseRenewMs = 5_000;
/** How long an unmount waits for the lease release before leaving the lease to expire. */
export const leaseReleaseTimeoutMs = 2_000;
/** Default attribute/entry timeout (seconds) of a mount; 0 = strict (ask every time). */
export const defaultCacheTimeoutSec = 1;
/**
 * How long the FUSE binding answers directory attributes and a path's "no security.capability"
 * itself (MountOptions.attrCacheMs), on top of GalleonFs's own cache: a small-file loop asks the
 * same directory's attributes several times per file (permission checks, attribute timeout 0),
 * all within well under this. What another node changes shows this much later at most.
 */
export const bindingAttrCacheMs = 100;
/**
 * `GALLEON_WRITEBACK=0` in a daemon's environment turns write-back under directory delegations
 * off (every create and close synchronous, as before it existed): the bench's "before" figures
 * and the tests that prove the recall is what keeps close-to-open.
 */
export const writebackEnv = 'GALLEON_WRITEBACK';

/** Unset or 1: on; 0: off; anything else is refused (a typo must not silently leave it on). */
export function writebackEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[writebackEnv];
  if (raw === undefined || raw === '1') return true;
  if (raw === '0') return false;
  throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${writebackEnv}=${JSON.stringify(raw.slice(0, 32))} is neither 0 nor 1`, { hint: `set ${writebackEnv}=0 to turn write-back off, 1 (or unset) for on` });
}

/** `GALLEON_WRITEBACK_MS=N`: the flusher's period (default writeback.ts `defaultWritebackMs`); tests lengthen it so only a recall, fsync or sync commits. */
export const writebackMsEnv = 'GALLEON_WRITEBACK_MS';

/** The longest period a Node timer takes (past it setTimeout fires at once). */
export const maxWritebackMs = 2_147_483_647;

export function writebackMsOf(env: NodeJS.ProcessEnv = process.env): { writebackMs?: number } {
  const raw = env[writebackMsEnv];
  if (raw === undefined) return {};
  const ms = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!(ms >= 1 && ms <= maxWritebackMs)) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${writebackMsEnv}=${JSON.stringify(raw.slice(0, 32))} is not a whole number of milliseconds from 1 to ${maxWritebackMs}`, { hint: `unset it for the default (1000), or give milliseconds, e.g. ${writebackMsEnv}=1000` });
  }
  return { writebackMs: ms };
}

/**
 * Test-only switch (a real one: the daemon's own flusher stops there): with this set to a folder,
 * while `<folder>/<node id>` exists the write-back holds every batch after its block writes and
 * before its fsCommitBatch (it writes `<folder>/<node id>.reached` then), so that a test can kill
 * the holder in that window (writeback.fuse.test.ts: the reclaim of a lost batch's blocks).
 */
export const holdBatchEnv = 'GALLEON_TEST_HOLD_BATCH_DIR';

export interface MountVolumeOptions {
  api: MetadataApi;
  blocks: BlockClient;
  volume: Volume;
  dir: string;
  readOnly: boolean;
  /** Who holds the lease: the node id (so a restarted node takes its own lease back). */
  holder: string;
  cacheTimeoutSec?: number;
  /** Raw mode: one file `data` over inode 0 (raw-fs.ts) instead of the namespace. */
  raw?: boolean;
  /** Write-back of new files under directory delegations (default: `writebackEnabled()`; never in a strict or read-only mount). */
  writeback?: boolean;
  log: Logger;
}

export interface VolumeMount {
  readonly volume: Volume;
  readonly dir: string;
  readonly readOnly: boolean;
  readonly raw: boolean;
  readonly mountedAtMs: number;
  counters(): FsCounters;
  /** The mount lease id (the namespace's session of this mount). */
  session?(): string;
  sync(): Promise<number>;
  unmount(): Promise<void>;
}

export async function mountVolume(o: MountVolumeOptions): Promise<VolumeMount> {
  const mode = o.readOnly ? 'ro' : 'rw';
  const log = o.log.child({ volume: o.volume.name, dir: o.dir });
  let lease: Lease = await o.api.acquireLease('mount', o.volume.id, o.holder, mountLeaseTtlMs, mode);
  const renew = setInterval(() => {
    o.api.renewLease(lease.id, mountLeaseTtlMs).then((l) => { lease = l; }, async (err: unknown) => {
      log.warn({ err }, 'mount lease renewal failed; taking it again');
      if (isGalleonError(err, ErrorCode.LEASE_NOT_FOUND)) lease = await o.api.acquireLease('mount', o.volume.id, o.holder, mountLeaseTtlMs, mode).catch(() => lease);
    });
  }, mountLeaseRenewMs);
  renew.unref();
  const data = new VolumeData({ client: o.blocks, volume: o.volume, log });
  const timeout = o.cacheTimeoutSec ?? defaultCacheTimeoutSec;
  const raw = o.raw === true;
  // The holder learns of recalls through the watch: without one, no delegation is ever asked for.
  const watchable = o.api as Partial<WritebackApi>;
  const holdDir = process.env[holdBatchEnv];
  const hold = holdDir === undefined || holdDir === '' ? {} : { holdCommitFile: join(holdDir, o.holder) };
  const writeback = (o.writeback ?? writebackEnabled()) && typeof watchable.waitForChange === 'function' ? { writeback: { api: o.api as MetadataApi & WritebackApi, ...writebackMsOf(), ...hold } } : {};
  const fs = raw ? new RawFs(o.volume, data, o.readOnly)
    : new GalleonFs({
      api: o.api, volume: o.volume, data, session: () => lease.id, readOnly: o.readOnly, cacheTtlMs: Math.round(timeout * 1000), log, onMaybeDeleted: () => reaper?.kick(), ...writeback,
    });
  // eslint-disable-next-line prefer-const -- the fs's callback reads it; it is made from the fs.
  let reaper: BlockReaper | null;
  reaper = fs instanceof GalleonFs && !o.readOnly ? new BlockReaper({
    api: o.api, client: o.blocks, volume: o.volume, knownSize: (ino) => fs.knownSize(ino), isOpenHere: (ino) => fs.isOpen(ino), log,
  }) : null;
  let mounted: Mounted;
  try {
    // An encrypted volume whose key this node cannot unwrap is not mounted at all (KEY_UNAVAILABLE).
    // Checked under the lease, so the lease race of a ReadWriteOnce volume is what it was.
    await o.blocks.checkKey(o.volume.id);
    mounted = await mountFs(o.dir, fs, {
      fsname: `galleon:${o.volume.name}${raw ? ':raw' : ''}`, readOnly: o.readOnly, allowOther: process.getuid?.() === 0,
      // The kernel holds attributes per path (libfuse 2's high-level API gives each hard link its own
      // kernel inode), so a link or unlink through one name left the others' nlink/ctime stale for the
      // timeout. At 0 it asks every time and GalleonFs answers from its own cache, which a change
      // drops by inode number (pjdfstest link/00, rename/00; the [hard links] test).
      attrTimeoutSec: raw ? timeout : 0, entryTimeoutSec: timeout,
      // A strict mount (timeout 0) asks every time; so does the raw file (no directories to cache).
      attrCacheMs: raw ? 0 : Math.min(bindingAttrCacheMs, Math.round(timeout * 1000)),
    }, { log });
  } catch (err) {
    clearInterval(renew);
    data.shutdown();
    await o.api.releaseLease(lease.id).catch(() => undefined);
    throw err;
  }
  if (!o.readOnly) reaper?.start();
  const mountedAtMs = Date.now();
  let unmounting: Promise<void> | null = null;
  return {
    volume: o.volume, dir: mounted.dir, readOnly: o.readOnly, raw, mountedAtMs,
    counters: () => ({ ...fs.counters(), fuseRequests: mounted.requests() }),
    session: () => lease.id,
    sync: () => fs.syncAll(),
    unmount: () => (unmounting ??= (async () => {
      await mounted.unmount();
      await fs.releaseAll();
      await reaper?.stop();
      data.shutdown();
      clearInterval(renew);
      // Bounded: at `galleon down` every member stops at once and the quorum may be gone; an
      // unreleased lease just expires after mountLeaseTtlMs.
      const released = o.api.releaseLease(lease.id).then(() => true, (err: unknown) => { log.warn({ err }, 'mount lease release failed; it expires by itself'); return false; });
      const timer = new Promise<boolean>((res) => setTimeout(() => res(false), leaseReleaseTimeoutMs).unref());
      await Promise.race([released, timer]);
    })()),
  };
}

export function describeRefusal(err: unknown, volume: string): GalleonError {
  if (isGalleonError(err, ErrorCode.LEASE_CONFLICT)) {
    const holder = (err.details as { holder?: unknown } | undefined)?.holder;
    return new GalleonError(ErrorCode.LEASE_CONFLICT, `volume ${volume} is ReadWriteOnce and mounted on ${typeof holder === 'string' ? `node ${holder}` : 'another node'}`, {
      hint: 'unmount it there first, or create the volume with --access-mode ReadWriteMany', cause: err,
    });
  }
  return isGalleonError(err) ? err : new GalleonError(ErrorCode.INTERNAL, `mount of ${volume} failed: ${(err as Error).message}`, { cause: err });
}
