/**
 * Reading what a target holds: complete manifests (the only backups that exist), backups that
 * started and did not finish (a `running/` record without a manifest), verification records.
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { ObjectStore } from './object-store.js';
import { checkManifest, idOfKey, manifestKey, runningKey, verifiedKey, type Manifest, type RunningRecord } from './logic/manifest.js';

/** Manifests read at once while listing a target. */
export const manifestReadsInFlight = 16;

export interface Progress {
  phase: string;
  blocksDone: number;
  blocksTotal: number;
  bytesDone: number;
  startedAtMs: number;
  updatedAtMs: number;
}

export interface VerifyRecord {
  id: string;
  ok: boolean;
  atMs: number;
  samplePercent: number;
  checkedBlocks: number;
  missing: string[];
  corrupt: string[];
}

export interface Catalog {
  complete: Manifest[];
  /** Started, never finished (or still running): never trusted, listed as incomplete. */
  incomplete: (RunningRecord & { progress?: Progress })[];
  verified: Map<string, VerifyRecord>;
  /** Manifests that exist but fail their checks (listed as damaged, never trusted). */
  damaged: { id: string; reason: string }[];
}

async function mapBounded<T, R>(items: readonly T[], fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(manifestReadsInFlight, items.length) }, worker));
  return out;
}

export async function readJson(store: ObjectStore, key: string): Promise<unknown> {
  const buf = await store.get(key);
  if (buf === null) return undefined;
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

export async function readCatalog(store: ObjectStore): Promise<Catalog> {
  const [mKeys, rKeys, vKeys] = await Promise.all([store.list('manifests/'), store.list('running/'), store.list('verified/')]);
  const ids = mKeys.map((k) => idOfKey('manifests', k)).filter((id): id is string => id !== null);
  const complete: Manifest[] = [];
  const damaged: { id: string; reason: string }[] = [];
  for (const [i, raw] of (await mapBounded(ids, (id) => readJson(store, manifestKey(id)))).entries()) {
    const c = checkManifest(raw);
    if (c.ok) complete.push(c.manifest);
    else damaged.push({ id: ids[i] ?? '', reason: c.reason });
  }
  const done = new Set([...complete.map((m) => m.id), ...damaged.map((d) => d.id)]);
  const runIds = rKeys.map((k) => idOfKey('running', k)).filter((id): id is string => id !== null && !done.has(id));
  const incomplete = (await mapBounded(runIds, (id) => readJson(store, runningKey(id))))
    .filter((r): r is RunningRecord & { progress?: Progress } => typeof r === 'object' && r !== null && typeof (r as RunningRecord).id === 'string');
  const verified = new Map<string, VerifyRecord>();
  const vIds = vKeys.map((k) => idOfKey('verified', k)).filter((id): id is string => id !== null);
  for (const r of await mapBounded(vIds, (id) => readJson(store, verifiedKey(id)))) {
    if (typeof r === 'object' && r !== null && typeof (r as VerifyRecord).id === 'string') verified.set((r as VerifyRecord).id, r as VerifyRecord);
  }
  complete.sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
  return { complete, incomplete, verified, damaged };
}

/** One complete manifest, or BACKUP_NOT_FOUND naming what is wrong with it. */
export async function readManifest(store: ObjectStore, id: string): Promise<Manifest> {
  const raw = await readJson(store, manifestKey(id));
  if (raw === undefined) {
    const running = await store.exists(runningKey(id));
    throw new GalleonError(ErrorCode.BACKUP_NOT_FOUND, running ? `backup ${id} did not complete` : `backup ${id} not found on ${store.where}`,
      { hint: running ? 'it never finished; run a new backup (galleon backup create)' : 'see the backups with: galleon backup list', details: { incomplete: running } });
  }
  const c = checkManifest(raw);
  if (!c.ok) throw new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `manifest of backup ${id} is damaged: ${c.reason}`, { hint: 'use another backup; this one cannot be trusted' });
  return c.manifest;
}
