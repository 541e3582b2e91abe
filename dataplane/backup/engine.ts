/**
 * The backup engine: create, verify and delete backups on one target (restore is restore.ts).
 * Decisions are pure (logic/plan.ts); this file reads, hashes, uploads and keeps the order that
 * makes a crash safe: `running/<id>` first, block objects next, the manifest LAST (its presence
 * is the completion flag), then `running/<id>` goes. A crash at any point leaves either no
 * manifest (the backup is incomplete, and its objects are trusted by nobody) or a whole one.
 */
import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, invariant } from '../../proto/errors.js';
import type { ObjectStore } from './object-store.js';
import type { BackupSource } from './source.js';
import { readCatalog, readJson, readManifest, type Progress, type VerifyRecord } from './catalog.js';
import { blockKey, blockObjectKey, isSha256, manifestFormat, manifestKey, runningKey, verifiedKey, verifyingKey, type BlockEntry, type Manifest, type NamespaceDump, type RunningRecord, type SnapshotRef, type Strategy } from './logic/manifest.js';
import { blockVerdict, chooseParent, sampleKeys, trustedHashes, unreferencedObjects, type PriorBackup } from './logic/plan.js';

/** How often a running backup rewrites its `running/` record with its progress. */
export const progressFlushIntervalMs = 1_000;
/** A `running/` record older than this with no manifest is a crashed run: GC no longer waits for it. */
export const staleRunningMs = 24 * 60 * 60 * 1000;

export interface JobHooks {
  onProgress(p: Progress): void;
  signal: AbortSignal;
  nowMs(): number;
  logger: Logger;
}

export interface BackupResult {
  id: string;
  target: string;
  volume: string;
  requestedStrategy: Strategy;
  strategy: Strategy;
  parent: string | null;
  blocks: number;
  changedBlocks: number;
  uploadedBlocks: number;
  uploadedBytes: number;
  createdAtMs: number;
  completedAtMs: number;
}

export function sha256Of(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function entryOf(data: Uint8Array): BlockEntry {
  return { sha256: sha256Of(data), crc32c: crc32c(data), bytes: data.length };
}

function progressReporter(h: JobHooks, startedAtMs: number, flush: (p: Progress) => Promise<void>): { set(p: Partial<Progress>): Promise<void>; now(): Progress } {
  let p: Progress = { phase: 'starting', blocksDone: 0, blocksTotal: 0, bytesDone: 0, startedAtMs, updatedAtMs: startedAtMs };
  let flushedAt = 0;
  return {
    async set(change) {
      p = { ...p, ...change, updatedAtMs: h.nowMs() };
      h.onProgress(p);
      if (p.updatedAtMs - flushedAt >= progressFlushIntervalMs || change.phase !== undefined) {
        flushedAt = p.updatedAtMs;
        await flush(p);
      }
    },
    now: () => p,
  };
}

export interface BackupOptions {
  id: string;
  target: string;
  strategy: Strategy;
  /** The daemon that runs it (the one that resumes it after a restart). */
  nodeId?: string;
  scheduled?: { policyId: string; dueMs: number };
  /**
   * A run taken up again after its daemon died: an object it finds on the target that no complete
   * manifest names is read back and kept when its SHA-256 matches (re-verified), else uploaded.
   */
  resume?: boolean;
  /** The snapshot the source reads (recorded, so a resumed run reads the same one). */
  snapshot?: SnapshotRef;
}

interface BlockPass {
  blocks: Record<string, BlockEntry>;
  changed: string[];
  uploaded: Set<string>;
  uploadedBytes: number;
  reused: number;
}

export async function createBackup(store: ObjectStore, source: BackupSource, o: BackupOptions, h: JobHooks): Promise<BackupResult> {
  const startedAtMs = h.nowMs();
  const running: RunningRecord = {
    id: o.id, target: o.target, volume: source.volume.name, volumeId: source.volume.id, strategy: o.strategy, startedAtMs, daemonPid: process.pid,
    ...(o.nodeId === undefined ? {} : { nodeId: o.nodeId }), ...(o.scheduled === undefined ? {} : { scheduled: o.scheduled }),
    ...(o.snapshot === undefined ? {} : { snapshot: o.snapshot }), ...(source.volume.tenant === undefined ? {} : { tenant: source.volume.tenant }),
  };
  const putRunning = (extra: object): Promise<void> => store.put(runningKey(o.id), Buffer.from(JSON.stringify({ ...running, ...extra })));
  await putRunning({});
  const progress = progressReporter(h, startedAtMs, (p) => putRunning({ progress: p }));
  try {
    await progress.set({ phase: 'catalog' });
    const catalog = await readCatalog(store);
    const choice = chooseParent(o.strategy, catalog.complete.filter((m) => m.volume.id === source.volume.id));
    await progress.set({ phase: 'namespace' });
    const namespace = await source.namespace();
    await progress.set({ phase: 'blocks', blocksTotal: await source.probeCount(namespace) });
    const pass = await copyBlocks(store, source, namespace, choice.parent, trustedHashes(catalog.complete), o.resume === true, (p) => progress.set(p), h);
    await progress.set({ phase: 'manifest' });
    const encryption = (await source.encryption?.()) ?? null;
    const count = Object.keys(pass.blocks).length;
    invariant(pass.changed.length <= count && pass.uploaded.size <= count && (choice.parent !== null || pass.changed.length === count),
      `backup ${o.id}: ${pass.changed.length} changed and ${pass.uploaded.size} uploaded of ${count} blocks (parent ${choice.parent?.id ?? 'none'})`);
    const manifest: Manifest = {
      format: manifestFormat, id: o.id, target: o.target, volume: source.volume, strategy: choice.strategy, parent: choice.parent?.id ?? null,
      createdAtMs: startedAtMs, completedAtMs: h.nowMs(), blocks: pass.blocks, changed: pass.changed, uploadedBlocks: pass.uploaded.size, uploadedBytes: pass.uploadedBytes,
      namespace, ...(o.scheduled === undefined ? {} : { scheduled: o.scheduled }), ...(o.snapshot === undefined ? {} : { snapshot: o.snapshot }),
      ...(encryption === null ? {} : { encryption }), complete: true,
    };
    // The manifest is the completion flag: written only after every object it names is stored.
    await store.put(manifestKey(o.id), Buffer.from(JSON.stringify(manifest)));
    await store.delete(runningKey(o.id));
    h.logger.info({ backup: o.id, volume: source.volume.name, strategy: manifest.strategy, uploaded: pass.uploaded.size, reused: pass.reused, changed: pass.changed.length }, 'backup complete');
    return {
      id: o.id, target: o.target, volume: source.volume.name, requestedStrategy: o.strategy, strategy: manifest.strategy, parent: manifest.parent,
      blocks: Object.keys(pass.blocks).length, changedBlocks: pass.changed.length, uploadedBlocks: pass.uploaded.size, uploadedBytes: pass.uploadedBytes,
      createdAtMs: startedAtMs, completedAtMs: manifest.completedAtMs,
    };
  } catch (err) {
    // A run that ends without a crash says how it ended, so it is never resumed; best effort.
    const ended = { state: h.signal.aborted ? 'cancelled' : 'failed', error: err instanceof Error ? err.message : String(err), atMs: h.nowMs() };
    await putRunning({ progress: progress.now(), ended }).catch(() => undefined);
    throw err;
  }
}

async function copyBlocks(
  store: ObjectStore, source: BackupSource, namespace: NamespaceDump | null, parent: PriorBackup | null, trusted: ReadonlySet<string>, resume: boolean,
  report: (p: Partial<Progress>) => Promise<void>, h: JobHooks,
): Promise<BlockPass> {
  const pass: BlockPass = { blocks: {}, changed: [], uploaded: new Set(), uploadedBytes: 0, reused: 0 };
  /** Hashes this run stored or found intact: a later block with the same bytes costs nothing. */
  const seen = new Set<string>();
  let probed = 0;
  let bytesDone = 0;
  for await (const b of source.blocks(namespace, (n) => { probed += n; }, h.signal)) {
    const key = blockKey(b.inode, b.blockNo);
    const entry = entryOf(b.bytes);
    const v = blockVerdict(key, entry, parent, trusted, seen);
    if (v.upload && resume && await storedIntact(store, entry.sha256)) {
      pass.reused += 1;
    } else if (v.upload) {
      await store.put(blockObjectKey(entry.sha256), b.bytes);
      pass.uploaded.add(entry.sha256);
      pass.uploadedBytes += b.bytes.length;
    }
    if (v.upload) seen.add(entry.sha256);
    if (v.changed) pass.changed.push(key);
    pass.blocks[key] = b.sealedBy === undefined ? entry : { ...entry, sealedBy: b.sealedBy };
    bytesDone += b.bytes.length;
    await report({ blocksDone: probed, bytesDone });
  }
  h.signal.throwIfAborted();
  await report({ blocksDone: probed, bytesDone });
  return pass;
}

/** An object left by the interrupted run of a resumed backup: kept only when its bytes hash to its name. */
async function storedIntact(store: ObjectStore, sha256: string): Promise<boolean> {
  const data = await store.get(blockObjectKey(sha256));
  return data !== null && sha256Of(data) === sha256;
}

/** Reads every (or a sample of) block object of a backup back and checks it against the manifest. */
export async function verifyBackup(store: ObjectStore, id: string, samplePercent: number, h: JobHooks, sampleOffset = 0): Promise<VerifyRecord> {
  invariant(samplePercent > 0 && samplePercent <= 100, `sample percent ${samplePercent}`);
  const m = await readManifest(store, id);
  const keys = sampleKeys(Object.keys(m.blocks), samplePercent, sampleOffset);
  const progress = progressReporter(h, h.nowMs(), () => Promise.resolve());
  await progress.set({ phase: 'verify', blocksTotal: keys.length });
  const byHash = new Map<string, string[]>();
  for (const k of keys) {
    const e = m.blocks[k];
    if (e !== undefined) byHash.set(e.sha256, [...(byHash.get(e.sha256) ?? []), k]);
  }
  const missing: string[] = [];
  const corrupt: string[] = [];
  let done = 0;
  let bytes = 0;
  for (const [hash, ks] of byHash) {
    h.signal.throwIfAborted();
    const data = await store.get(blockObjectKey(hash));
    const first = m.blocks[ks[0] ?? ''];
    if (data === null) missing.push(...ks);
    else if (first === undefined || sha256Of(data) !== hash || crc32c(data) !== first.crc32c || data.length !== first.bytes) corrupt.push(...ks);
    done += ks.length;
    bytes += data?.length ?? 0;
    await progress.set({ blocksDone: done, bytesDone: bytes });
  }
  const rec: VerifyRecord = { id, ok: missing.length === 0 && corrupt.length === 0, atMs: h.nowMs(), samplePercent, checkedBlocks: keys.length, missing: missing.sort(), corrupt: corrupt.sort() };
  await store.put(verifiedKey(id), Buffer.from(JSON.stringify(rec)));
  return rec;
}

export interface DeleteResult {
  id: string;
  deletedObjects: number;
  /** True when a backup was running on the target: its objects are not yet named by a manifest, so collection waits. */
  collectionDeferred: boolean;
}

/**
 * Deletes a backup's manifest (first: from then on nothing trusts it), then every block object
 * no remaining complete manifest names, unless another backup is running on the target.
 */
export async function deleteBackup(store: ObjectStore, id: string, nowMs: number): Promise<DeleteResult> {
  const hadManifest = (await readJson(store, manifestKey(id))) !== undefined;
  const hadRunning = await store.exists(runningKey(id));
  if (!hadManifest && !hadRunning) {
    throw new GalleonError(ErrorCode.BACKUP_NOT_FOUND, `backup ${id} not found on ${store.where}`, { hint: 'see the backups with: galleon backup list' });
  }
  await store.delete(manifestKey(id));
  await store.delete(runningKey(id));
  await store.delete(verifiedKey(id));
  await store.delete(verifyingKey(id));
  const catalog = await readCatalog(store);
  const live = catalog.incomplete.filter((r) => nowMs - (r.progress?.updatedAtMs ?? r.startedAtMs) < staleRunningMs);
  if (live.length > 0) return { id, deletedObjects: 0, collectionDeferred: true };
  const kept = trustedHashes(catalog.complete);
  const stored = (await store.list('blocks/')).map((k) => k.slice(k.lastIndexOf('/') + 1)).filter(isSha256);
  const gone = unreferencedObjects(stored, kept);
  for (const hash of gone) await store.delete(blockObjectKey(hash));
  return { id, deletedObjects: gone.length, collectionDeferred: false };
}
