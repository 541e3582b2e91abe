/**
 * The backup manifest and the storage layout of a target, and the checks a manifest read back
 * from a target must pass. Pure: no I/O, clock or randomness (lint-enforced).
 *
 * Layout on a target (a directory or an S3 prefix), every path relative to the target's root:
 *  - `blocks/<aa>/<sha256>`       the bytes of a block, content-addressed (aa: first two hex digits)
 *  - `running/<backupId>.json`    written first: a backup that started (its progress while it runs)
 *  - `manifests/<backupId>.json`  written LAST, with `complete: true`: the only proof a backup finished
 *  - `verified/<backupId>.json`   the outcome of the last `backup verify`
 *  - `verifying/<backupId>.json`  a verification under way (its daemon runs it again after a restart)
 *  - `runs/<policyId>/<dueMs>-<backupId|failed>.json`  a policy's finished runs (the run journal)
 * A block object is trusted (skipped by a later backup) only when a complete manifest names it:
 * objects a crashed backup left behind are uploaded again, never believed.
 */
import { invariant } from '../../../proto/errors.js';

export const manifestFormat = 'galleon-backup/1';
export const strategies = ['full', 'incremental', 'differential'] as const;
export type Strategy = (typeof strategies)[number];

/** One stored block: its content address and its own checksum (what restore and verify check). */
export interface BlockEntry {
  sha256: string;
  crc32c: number;
  bytes: number;
  /**
   * Encrypted volumes: the object is the sealed body as the data nodes held it, sealed by this
   * volume (its data key, its id in the associated data; a clone's parent for a block the clone
   * never wrote). The checksums above are of that sealed body: what is stored.
   */
  sealedBy?: string;
}

/** A data key as the metadata service keeps it: wrapped by the cluster's key provider (never in clear). */
export interface WrappedKey {
  provider: string;
  keyId: string;
  wrapped: string;
}

/**
 * A backup of an encrypted volume: its objects are ciphertext only; the data keys of the volumes
 * that sealed them travel here, wrapped, so a restore works after the source volume (and its key
 * record in the metadata service) is gone, given the cluster's key provider.
 */
export interface ManifestEncryption {
  keys: Record<string, WrappedKey>;
}

/** The snapshot a backup read its blocks at (`created`: the backup took it, and deletes it when done). */
export interface SnapshotRef {
  id: string;
  name: string;
  cut: number;
  created: boolean;
}

/** One name in the file tree, in an order where every directory comes before what it holds. */
export interface NamespaceEntry {
  parent: number;
  name: string;
  ino: number;
  type: 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  rdev: number;
  atimeNs: string;
  mtimeNs: string;
  /** Symlinks only. */
  target?: string;
  /** name -> base64 value, when the inode has any. */
  xattrs?: Record<string, string>;
}

export interface NamespaceDump {
  root: { mode: number; uid: number; gid: number; atimeNs: string; mtimeNs: string };
  entries: NamespaceEntry[];
}

/** What a restore needs to recreate the volume. */
export interface VolumeRecord {
  id: string;
  name: string;
  sizeBytes: number;
  blockSizeBytes: number;
  storageClass: string;
  replicas: number;
  accessMode: string;
  type: string;
  /** The source volume's tenant (issue #12): a user of that tenant sees and restores the backup, no other tenant's does. */
  tenant?: string;
}

export interface Manifest {
  format: typeof manifestFormat;
  id: string;
  target: string;
  volume: VolumeRecord;
  strategy: Strategy;
  /** The backup this one was compared with (incremental: the last one; differential: the last full). */
  parent: string | null;
  createdAtMs: number;
  completedAtMs: number;
  /** Every written block of the volume at this backup, by `blockKey` — restore needs this manifest only. */
  blocks: Record<string, BlockEntry>;
  /** Keys whose content differs from the parent's (all keys for a full): what this backup carried. */
  changed: string[];
  /** Objects this backup had to upload (the rest were already trusted on the target). */
  uploadedBlocks: number;
  uploadedBytes: number;
  namespace: NamespaceDump | null;
  /** Set when a policy's scheduled run made it: which policy, for which due time. */
  scheduled?: { policyId: string; dueMs: number };
  /** The snapshot the blocks were read at. */
  snapshot?: SnapshotRef;
  /** Set for an encrypted volume: every block entry names its sealer, whose wrapped key is here. */
  encryption?: ManifestEncryption;
  complete: true;
}

/** What `running/<id>.json` holds: a backup that started, and its last progress. */
export interface RunningRecord {
  id: string;
  target: string;
  volume: string;
  volumeId: string;
  strategy: Strategy;
  startedAtMs: number;
  daemonPid: number;
  /** The node whose daemon runs it: that daemon takes it up again after a restart. */
  nodeId?: string;
  scheduled?: { policyId: string; dueMs: number };
  /** The snapshot it reads (a resumed run reads the same one, then deletes it if it took it). */
  snapshot?: SnapshotRef;
  /** The source volume's tenant (issue #12), as in the manifest's volume record. */
  tenant?: string;
  /** Set when it ended without a crash (never resumed): how, and why. */
  ended?: { state: 'failed' | 'cancelled'; error: string; atMs: number };
}

export function blockKey(inode: number, blockNo: number): string {
  invariant(Number.isSafeInteger(inode) && inode >= 0 && Number.isSafeInteger(blockNo) && blockNo >= 0, `block address ${inode}/${blockNo}`);
  return `${inode}/${blockNo}`;
}

export function parseBlockKey(key: string): { inode: number; blockNo: number } {
  const m = /^(\d+)\/(\d+)$/.exec(key);
  invariant(m !== null, `block key ${JSON.stringify(key)}`);
  return { inode: Number(m[1]), blockNo: Number(m[2]) };
}

export const isSha256 = (s: string): boolean => /^[0-9a-f]{64}$/.test(s);

export function blockObjectKey(sha256: string): string {
  invariant(isSha256(sha256), `not a sha256: ${sha256}`);
  return `blocks/${sha256.slice(0, 2)}/${sha256}`;
}

/** Backup ids are made by the engine; anything else in a path is refused before it reaches a target. */
export const isBackupId = (s: string): boolean => /^bk-[0-9a-z]{8,40}$/.test(s);

export const manifestKey = (id: string): string => `manifests/${checkedId(id)}.json`;
export const runningKey = (id: string): string => `running/${checkedId(id)}.json`;
export const verifiedKey = (id: string): string => `verified/${checkedId(id)}.json`;
/** A verification under way (deleted when it ends): its daemon runs it again after a restart. */
export const verifyingKey = (id: string): string => `verifying/${checkedId(id)}.json`;

/** What `verifying/<id>.json` holds. */
export interface VerifyingRecord {
  id: string;
  nodeId: string;
  samplePercent: number;
  sampleOffset: number;
  startedAtMs: number;
}

/** A `verifying/` record read back, or null when it is not one. */
export function checkVerifying(raw: unknown): VerifyingRecord | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Partial<VerifyingRecord>;
  const ok = typeof r.id === 'string' && isBackupId(r.id) && typeof r.nodeId === 'string' && typeof r.samplePercent === 'number' && r.samplePercent > 0 && r.samplePercent <= 100
    && Number.isSafeInteger(r.sampleOffset) && Number.isSafeInteger(r.startedAtMs);
  return ok ? r as VerifyingRecord : null;
}

/** A restore under way (deleted when it ends): its daemon runs it again after a restart. */
export const restoringKey = (id: string): string => {
  invariant(isRestoreId(id), `restore id ${JSON.stringify(id)}`);
  return `restoring/${id}.json`;
};
export const isRestoreId = (s: string): boolean => /^rs-[0-9a-f]{12}$/.test(s);
/** The label a volume being restored carries until its last step is done (value: the restore id). */
export const restoringLabel = 'galleon.io/restoring';

/** What `restoring/<id>.json` holds: enough to start the restore again from the beginning. */
export interface RestoringRecord {
  id: string;
  backupId: string;
  /** The new volume's name; a volume of that name carrying `restoringLabel` = id is this restore's own, partly written. */
  name: string;
  nodeId: string;
  startedAtMs: number;
  /**
   * A backup made on another cluster: the path (on this node) of that cluster's key file, which
   * wraps the backup's data keys. The path only, never key material: a resumed restore reads it again.
   */
  sourceKeyFile?: string;
  /** The tenant the new volume is stamped with: the caller's (absent: none). */
  tenant?: string;
}

/** A `restoring/` record read back, or null when it is not one. */
export function checkRestoring(raw: unknown): RestoringRecord | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Partial<RestoringRecord>;
  const ok = typeof r.id === 'string' && isRestoreId(r.id) && typeof r.backupId === 'string' && isBackupId(r.backupId) && typeof r.name === 'string' && r.name.length > 0
    && typeof r.nodeId === 'string' && Number.isSafeInteger(r.startedAtMs) && (r.sourceKeyFile === undefined || (typeof r.sourceKeyFile === 'string' && r.sourceKeyFile.length > 0))
    && (r.tenant === undefined || (typeof r.tenant === 'string' && r.tenant.length > 0));
  return ok ? r as RestoringRecord : null;
}

export function runKey(policyId: string, dueMs: number, backupId: string | null): string {
  invariant(/^[0-9a-z-]{1,64}$/.test(policyId) && Number.isSafeInteger(dueMs) && dueMs >= 0, `run key ${policyId}/${dueMs}`);
  return `runs/${policyId}/${dueMs}-${backupId === null ? 'failed' : checkedId(backupId)}.json`;
}

function checkedId(id: string): string {
  invariant(isBackupId(id), `backup id ${JSON.stringify(id)}`);
  return id;
}

/** The backup id named by a listed key of `dir` (`manifests`, `running`, `verified`), or null. */
export function idOfKey(dir: string, key: string): string | null {
  const prefix = `${dir}/`;
  if (!key.startsWith(prefix) || !key.endsWith('.json')) return null;
  const id = key.slice(prefix.length, -'.json'.length);
  return isBackupId(id) ? id : null;
}

/**
 * A manifest read back from a target: the shape is checked whole, so a truncated or foreign
 * file is "not a complete backup", never half-trusted. Returns a reason when it is not one.
 */
export function checkManifest(raw: unknown): { ok: true; manifest: Manifest } | { ok: false; reason: string } {
  if (typeof raw !== 'object' || raw === null) return { ok: false, reason: 'not a JSON object' };
  const m = raw as Partial<Manifest>;
  if (m.format !== manifestFormat) return { ok: false, reason: `format ${JSON.stringify(m.format)} is not ${manifestFormat}` };
  if (m.complete !== true) return { ok: false, reason: 'not marked complete' };
  if (typeof m.id !== 'string' || !isBackupId(m.id)) return { ok: false, reason: 'bad id' };
  if (!strategies.includes(m.strategy as Strategy)) return { ok: false, reason: 'bad strategy' };
  if (typeof m.blocks !== 'object' || m.blocks === null || !Array.isArray(m.changed)) return { ok: false, reason: 'no block map' };
  if (typeof m.volume !== 'object' || m.volume === null || typeof m.volume.blockSizeBytes !== 'number') return { ok: false, reason: 'no volume record' };
  const keys = checkEncryption(m.encryption);
  if (keys === 'bad') return { ok: false, reason: 'bad encryption record' };
  for (const [key, e] of Object.entries(m.blocks)) {
    if (!/^\d+\/\d+$/.test(key) || typeof e !== 'object' || e === null || !isSha256(e.sha256) || !Number.isInteger(e.crc32c) || !Number.isInteger(e.bytes)) {
      return { ok: false, reason: `bad block entry ${key}` };
    }
    // Sealed bodies without the key that opens them (or plaintext entries naming one) are no backup.
    if (keys === null ? e.sealedBy !== undefined : (typeof e.sealedBy !== 'string' || !keys.has(e.sealedBy))) {
      return { ok: false, reason: `block ${key} names no data key of the backup` };
    }
  }
  return { ok: true, manifest: m as Manifest };
}

/** The volume ids with a wrapped key, null without encryption, 'bad' for a malformed record. */
function checkEncryption(raw: unknown): Set<string> | null | 'bad' {
  if (raw === undefined) return null;
  if (typeof raw !== 'object' || raw === null) return 'bad';
  const keys = (raw as { keys?: unknown }).keys;
  if (typeof keys !== 'object' || keys === null) return 'bad';
  for (const k of Object.values(keys as Record<string, unknown>)) {
    const w = k as Partial<WrappedKey> | null;
    if (typeof w !== 'object' || w === null || typeof w.provider !== 'string' || typeof w.keyId !== 'string' || typeof w.wrapped !== 'string') return 'bad';
  }
  return new Set(Object.keys(keys));
}
