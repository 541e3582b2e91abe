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
import { blockKey, blockObjectKey, isSha256, manifestFormat, manifestKey, runningKey, verifiedKey, type BlockEntry, type Manifest, type RunningRecord, type Strategy } from './logic/manifest.js';
import { blockVerdict, chooseParent, sampleKeys, trustedHashes, unreferencedObjects } from './logic/plan.js';

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

export async function createBackup(store: ObjectStore, source: BackupSource, o: { id: string; target: string; strategy: Strategy; scheduled?: { policyId: string; dueMs: number } }, h: JobHooks): Promise<BackupResult> {
  const startedAtMs = h.nowMs();
  const running: RunningRecord = { id: o.id, target: o.target, volume: source.volume.name, volumeId: source.volume.id, strategy: o.strategy, startedAtMs, daemonPid: process.pid, ...(o.scheduled === undefined ? {} : { scheduled: o.scheduled }) };
  await store.put(runningKey(o.id), Buffer.from(JSON.stringify(running)));
  const progress = progressReporter(h, startedAtMs, (p) => store.put(runningKey(o.id), Buffer.from(JSON.stringify({ ...running, progress: p }))));
  await progress.set({ phase: 'catalog' });
  const catalog = await readCatalog(store);
  const prior = catalog.complete.filter((m) => m.volume.id === source.volume.id);
  const choice = chooseParent(o.strategy, prior);
  const trusted = trustedHashes(catalog.complete);
  await progress.set({ phase: 'namespace' });
  const namespace = await source.namespace();
  await progress.set({ phase: 'blocks', blocksTotal: source.probeCount(namespace) });
  const blocks: Record<string, BlockEntry> = {};
  const changed: string[] = [];
  const uploaded = new Set<string>();
  let uploadedBytes = 0;
  let probed = 0;
  let bytesDone = 0;
  for await (const b of source.blocks(namespace, (n) => { probed += n; }, h.signal)) {
    const key = blockKey(b.inode, b.blockNo);
    const entry = entryOf(b.bytes);
    const v = blockVerdict(key, entry, choice.parent, trusted, uploaded);
    if (v.upload) {
      await store.put(blockObjectKey(entry.sha256), b.bytes);
      uploaded.add(entry.sha256);
      uploadedBytes += b.bytes.length;
    }
    if (v.changed) changed.push(key);
    blocks[key] = entry;
    bytesDone += b.bytes.length;
    await progress.set({ blocksDone: probed, bytesDone });
  }
  h.signal.throwIfAborted();
  await progress.set({ phase: 'manifest', blocksDone: probed, bytesDone });
  const manifest: Manifest = {
    format: manifestFormat, id: o.id, target: o.target, volume: source.volume, strategy: choice.strategy, parent: choice.parent?.id ?? null,
    createdAtMs: startedAtMs, completedAtMs: h.nowMs(), blocks, changed, uploadedBlocks: uploaded.size, uploadedBytes, namespace,
    ...(o.scheduled === undefined ? {} : { scheduled: o.scheduled }), complete: true,
  };
  // The manifest is the completion flag: written only after every object it names is stored.
  await store.put(manifestKey(o.id), Buffer.from(JSON.stringify(manifest)));
  await store.delete(runningKey(o.id));
  h.logger.info({ backup: o.id, volume: source.volume.name, strategy: manifest.strategy, uploaded: uploaded.size, changed: changed.length }, 'backup complete');
  return {
    id: o.id, target: o.target, volume: source.volume.name, requestedStrategy: o.strategy, strategy: manifest.strategy, parent: manifest.parent,
    blocks: Object.keys(blocks).length, changedBlocks: changed.length, uploadedBlocks: uploaded.size, uploadedBytes, createdAtMs: startedAtMs, completedAtMs: manifest.completedAtMs,
  };
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
  const catalog = await readCatalog(store);
  const live = catalog.incomplete.filter((r) => nowMs - (r.progress?.updatedAtMs ?? r.startedAtMs) < staleRunningMs);
  if (live.length > 0) return { id, deletedObjects: 0, collectionDeferred: true };
  const kept = trustedHashes(catalog.complete);
  const stored = (await store.list('blocks/')).map((k) => k.slice(k.lastIndexOf('/') + 1)).filter(isSha256);
  const gone = unreferencedObjects(stored, kept);
  for (const hash of gone) await store.delete(blockObjectKey(hash));
  return { id, deletedObjects: gone.length, collectionDeferred: false };
}
