/**
 * The daemon's backup service: runs backups, restores and verifications as jobs (progress,
 * cancel), finds backups across every recorded target, and applies retention. The admin endpoint
 * (cli/daemon/admin-server.ts) calls it; it holds nothing a restart must keep: a backup that was
 * running when the daemon died stays `incomplete` on its target (its `running/` record names this
 * node) until this daemon starts again and resumes it (`resumeInterrupted`); so is a verification
 * (its `verifying/` record), run again from the start, and so is a restore (its `restoring/`
 * record; the partly written volume, marked as such, is deleted first).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import { markDenied } from '../../proto/auth.js';
import type { BackupPolicy, BackupTarget, BackupTargetSpec, MetadataApi, Snapshot, Volume, VolumeSpec } from '../../proto/metadata-types.js';
import { buildTarget } from '../../metadata/state/logic/backups.js';
import { stat } from 'node:fs/promises';
import { BlockClient } from '../client/block-client.js';
import { MetadataPlacementSource } from '../placement.js';
import { openObjectStore, type ObjectStore } from './object-store.js';
import { readCatalog, readJson, readManifest, type Progress, type VerifyRecord } from './catalog.js';
import { createBackup, deleteBackup, verifyBackup, type BackupOptions, type BackupResult, type DeleteResult, type JobHooks } from './engine.js';
import { restoreBackup, type RestoreResult } from './restore.js';
import { SnapshotSource } from './source.js';
import { takeSnapshot } from '../client/snapshot-reads.js';
import {
  checkRestoring, checkVerifying, isBackupId, restoringKey, restoringLabel, runKey, strategies, verifyingKey, type Manifest, type RestoringRecord, type RunningRecord,
  type SnapshotRef, type Strategy, type VerifyingRecord, type WrappedKey,
} from './logic/manifest.js';
import { planRetention, type RetentionPlan, type RetentionRule } from './logic/retention.js';
import { backupSnapshotPrefix, orphanBackupSnapshots } from './logic/orphans.js';

/** Finished jobs kept for `backup job` / the CLI's last poll. */
export const maxFinishedJobs = 100;
/** Resuming interrupted backups after a restart waits for the metadata service this many times, this far apart. */
export const resumeAttempts = 60;
export const resumeRetryMs = 2_000;
/** Default of `GALLEON_BACKUP_ORPHAN_GRACE_MS`: a backup snapshot younger than this is never cleaned up at start (logic/orphans.ts). */
export const defaultOrphanGraceMs = 120_000;
export const maxOrphanGraceMs = 24 * 3_600_000;

export type JobKind = 'backup' | 'restore' | 'verify';
export interface JobView {
  id: string;
  kind: JobKind;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  backupId: string;
  target: string;
  volume: string;
  /** The tenant whose backup (or restored volume) it works on (issue #12); absent: none. */
  tenant?: string;
  progress: Progress;
  result: unknown;
  error: { code: string; message: string; hint?: string } | null;
}

export interface BackupSummary {
  id: string;
  target: string;
  volume: string;
  volumeId: string;
  strategy: Strategy;
  parent: string | null;
  /** incomplete: its daemon died mid-way (resumed when that daemon starts again); failed / cancelled: ended so, never resumed. */
  state: 'complete' | 'running' | 'incomplete' | 'failed' | 'cancelled' | 'damaged';
  createdAtMs: number;
  completedAtMs: number | null;
  blocks: number;
  bytes: number;
  uploadedBlocks: number;
  verified: { ok: boolean; atMs: number; samplePercent: number } | null;
  progress: Progress | null;
  /** Made by a policy's scheduled run. */
  scheduled: { policyId: string; dueMs: number } | null;
  /** The source volume's tenant (issue #12); null: none (or not known: a damaged manifest). */
  tenant: string | null;
}

interface Job extends JobView { abort: AbortController }

/** Taking and deleting the snapshot a backup reads (the daemon's: a mount flush first; a delete frees versions). */
export interface SnapshotOps {
  take(volumeId: string, name: string): Promise<Snapshot>;
  drop(snapshotId: string): Promise<void>;
}

/**
 * What the daemon lends the service: its block client (the node's keyring, credential and TLS:
 * a backup reads an encrypted volume's bodies sealed, a restore seals them again with the new
 * volume's key), the step that gives a new volume its data key (`DaemonKeys.withDataKey`), the
 * key provider's unwrap (a backup's wrapped data keys), and its snapshot operations.
 */
export interface BackupIo {
  blocks?: () => BlockClient;
  prepareVolume?: (spec: VolumeSpec) => Promise<VolumeSpec>;
  /** `sourceKeyFile`: another cluster's key file wrapped the key (a backup made there); else this cluster's provider. */
  unwrapKey?: (w: WrappedKey, what: string, sourceKeyFile?: string) => Promise<Buffer>;
  snapshots?: SnapshotOps;
}

export class BackupService {
  private readonly jobs = new Map<string, Job>();
  /** Ids of the restores running here (their `restoring/` records are theirs, not to resume). */
  private readonly restoring = new Set<string>();
  private client: BlockClient | null = null;

  private closed = false;

  constructor(private readonly api: () => MetadataApi, private readonly logger: Logger, private readonly nodeId: string,
    private readonly env: NodeJS.ProcessEnv = process.env, private readonly io: BackupIo = {}) {}

  private blocks(): BlockClient {
    if (this.io.blocks !== undefined) return this.io.blocks();
    this.client ??= new BlockClient({ placement: new MetadataPlacementSource(this.api()), coalesceWrites: false, maxAttempts: 20, retryBaseDelayMs: 50 });
    return this.client;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.jobs.values()) j.abort.abort();
    await this.client?.close();
    this.client = null;
  }

  /**
   * `backup-target add`: the spec checked as the state machine will check it, then the place
   * itself — a directory must exist and take a file, a bucket must take an object — before the
   * target is recorded; a duplicate name is refused before anything is touched.
   */
  async addTarget(spec: BackupTargetSpec): Promise<BackupTarget> {
    const t = buildTarget(spec, 0);
    if ((await this.api().listBackupTargets()).some((x) => x.name === t.name)) return this.api().addBackupTarget(spec); // refused there, with its error
    if (t.kind === 'dir') {
      const st = await stat(t.path).catch(() => null);
      if (st === null || !st.isDirectory()) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `--dir ${t.path} is not a directory on this node`, { hint: `create it first (mkdir -p ${t.path}) on every node that runs backups, or mount the network file system there` });
      }
    }
    const s = openObjectStore(t, this.env);
    try {
      const probe = `running/probe-${randomBytes(6).toString('hex')}.json`;
      await s.put(probe, Buffer.from('{}'));
      await s.delete(probe);
    } finally {
      s.close();
    }
    return this.api().addBackupTarget(spec);
  }

  /** Targets as listed to users: secrets never leave the daemon. */
  static redact(t: BackupTarget): BackupTarget & { credentials?: string } {
    if (t.kind !== 's3') return t;
    const { secretAccessKey: _s, accessKeyId, ...rest } = t;
    return { ...rest, ...(accessKeyId === undefined ? { credentials: 'environment' } : { accessKeyId, credentials: 'recorded' }) };
  }

  private async store(name: string): Promise<{ t: BackupTarget; s: ObjectStore }> {
    const t = await this.api().getBackupTarget(name);
    return { t, s: openObjectStore(t, this.env) };
  }

  private async withStore<T>(name: string, fn: (s: ObjectStore, t: BackupTarget) => Promise<T>): Promise<T> {
    const { t, s } = await this.store(name);
    try {
      return await fn(s, t);
    } finally {
      s.close();
    }
  }

  private snapshotOps(): SnapshotOps {
    return this.io.snapshots ?? {
      take: (volumeId, name) => takeSnapshot(this.api(), volumeId, name, (...a) => this.blocks().nodePost(...a)),
      drop: async (id) => { await this.api().deleteSnapshot(id); },
    };
  }

  /**
   * A backup read at a snapshot: `snap` given (`--snapshot`, or the one a resumed run recorded)
   * is used as it is; else one is taken now and deleted when the run ends, however it ends
   * (a kill -9 leaves it for the resumed run, which deletes it).
   */
  private async backupAt(s: ObjectStore, vol: Volume, snap: SnapshotRef | null, o: Omit<BackupOptions, 'snapshot'>, h: JobHooks): Promise<BackupResult> {
    const ops = this.snapshotOps();
    const ref = snap ?? refOf(await ops.take(vol.id, `${backupSnapshotPrefix}${o.id}`), true);
    try {
      const source = new SnapshotSource(this.api(), this.blocks(), vol, await this.api().getSnapshot(ref.id));
      return await createBackup(s, source, { ...o, snapshot: ref }, h);
    } finally {
      if (ref.created) await ops.drop(ref.id).catch((err: unknown) => h.logger.warn({ err, snapshot: ref.name, backup: o.id }, 'the backup\'s snapshot was not deleted; delete it with galleon snapshot delete'));
    }
  }

  /** Starts a backup (at `snapshotRef`, or at a snapshot it takes); the job runs on after the answer (poll `job(id)`). */
  async startBackup(volumeRef: string, target: string, strategyRaw: string | undefined, snapshotRef?: string): Promise<JobView> {
    const strategy = (strategyRaw ?? 'incremental') as Strategy;
    if (!strategies.includes(strategy)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `unknown strategy ${JSON.stringify(strategyRaw)}`, { hint: `use one of ${strategies.join(', ')}` });
    const { t, s } = await this.store(target);
    try {
      const vol = await this.api().getVolume(volumeRef);
      const given = snapshotRef === undefined ? null : await this.api().getSnapshot(snapshotRef);
      if (given !== null && given.volumeId !== vol.id) {
        throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot ${given.name} is of volume ${given.volumeName}, not ${vol.name}`, { hint: `list the snapshots of ${vol.name} with: galleon snapshot list ${vol.name}` });
      }
      const snap = given === null ? null : refOf(given, false);
      const id = newBackupId();
      return this.run('backup', id, t.name, vol.name, s, (h) => this.backupAt(s, vol, snap, { id, target: t.name, strategy, nodeId: this.nodeId }, h), vol.tenant);
    } catch (err) {
      s.close();
      throw err;
    }
  }

  /**
   * After a restart: every backup this node was running when its daemon died (a `running/`
   * record with this node's id, not ended, no manifest) is started again under the same id, as a
   * resume — objects it had stored are read back and kept when they match their hash. Retries
   * until the metadata service answers, at most `resumeAttempts` times.
   */
  async resumeInterrupted(): Promise<JobView[]> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.resumeOnce();
      } catch (err) {
        if (this.closed || attempt >= resumeAttempts) {
          this.logger.warn({ err }, 'interrupted backups not resumed');
          return [];
        }
        // Unref'd: a daemon stopping while no leader answered yet must not wait for it.
        await new Promise((r) => { setTimeout(r, resumeRetryMs).unref(); });
      }
    }
  }

  private async resumeOnce(): Promise<JobView[]> {
    const out: JobView[] = [];
    const records: RunningRecord[] = [];
    for (const t of await this.api().listBackupTargets()) {
      out.push(...await this.resumeVerifications(t));
      out.push(...await this.resumeRestores(t));
      const cat = await this.withStore(t.name, (s) => readCatalog(s));
      records.push(...cat.incomplete);
      for (const r of cat.incomplete) {
        if (r.nodeId !== this.nodeId || r.ended !== undefined || r.scheduled !== undefined || [...this.jobs.values()].some((j) => j.backupId === r.id)) continue;
        const vol = await this.api().getVolume(r.volumeId);
        const { s } = await this.store(t.name);
        const snap = await this.stillThere(r.snapshot);
        this.logger.info({ backup: r.id, volume: vol.name, target: t.name, snapshot: snap?.name ?? null }, 'resuming a backup interrupted by a restart');
        out.push(this.run('backup', r.id, t.name, vol.name, s, (h) => this.backupAt(s, vol, snap, { id: r.id, target: t.name, strategy: r.strategy, nodeId: this.nodeId, resume: true }, h), vol.tenant));
      }
    }
    await this.dropOrphanSnapshots(records);
    return out;
  }

  /**
   * At start, after the resumes: the `backup-bk-…` snapshots of runs that will never delete them
   * (a daemon killed between taking one and recording the run; a scheduled run whose leader died)
   * are deleted, with their versions freed as any snapshot delete frees them.
   */
  private async dropOrphanSnapshots(records: RunningRecord[]): Promise<void> {
    const raw = this.env.GALLEON_BACKUP_ORPHAN_GRACE_MS;
    const graceMs = raw === undefined || raw === '' ? defaultOrphanGraceMs : Number(raw);
    if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > maxOrphanGraceMs) {
      this.logger.error({ value: raw }, `GALLEON_BACKUP_ORPHAN_GRACE_MS must be 0..${maxOrphanGraceMs} ms; left behind backup snapshots are not cleaned up`);
      return;
    }
    const runningHere = new Set([...this.jobs.values()].filter((j) => j.state === 'running').map((j) => j.backupId));
    const orphans = orphanBackupSnapshots({ snapshots: await this.api().listSnapshots(), records, runningHere, nowMs: Date.now(), graceMs });
    for (const o of orphans) {
      this.logger.info({ snapshot: o.name }, 'deleting a snapshot a backup run left behind');
      await this.snapshotOps().drop(o.id).catch((err: unknown) => {
        // Another node starting at the same time may have deleted it first.
        if (!isGalleonError(err, ErrorCode.SNAPSHOT_NOT_FOUND)) this.logger.warn({ err, snapshot: o.name }, 'a snapshot a backup run left behind was not deleted');
      });
    }
  }

  /** The snapshot a resumed run recorded, if it still exists (else the run takes a new one: its objects are re-verified anyway). */
  private async stillThere(ref: SnapshotRef | undefined): Promise<SnapshotRef | null> {
    if (ref === undefined) return null;
    try {
      await this.api().getSnapshot(ref.id);
      return ref;
    } catch (err) {
      if (isGalleonError(err, ErrorCode.SNAPSHOT_NOT_FOUND)) return null;
      throw err;
    }
  }

  /**
   * A policy's run, awaited (the scheduler's): the backup, then a verification of a sample of it,
   * then retention on the policy's volume and target. `signal` aborts it (leadership lost).
   */
  async runScheduled(p: BackupPolicy, dueMs: number, signal: AbortSignal): Promise<{ backup: BackupResult; verify: VerifyRecord | null; deleted: string[] }> {
    const vol = await this.api().getVolume(p.volumeId);
    const hooks: JobHooks = { onProgress: () => undefined, signal, nowMs: () => Date.now(), logger: this.logger };
    return this.withStore(p.target, async (s) => {
      // A run taken over from a scheduler that died after its manifest was written: done already.
      const earlier = (await readCatalog(s)).complete.find((m) => m.scheduled?.policyId === p.id && m.scheduled.dueMs === dueMs);
      const id = earlier?.id ?? newBackupId();
      const backup = earlier !== undefined ? resultOf(earlier, p.strategy)
        : await this.backupAt(s, vol, null, { id, target: p.target, strategy: p.strategy, scheduled: { policyId: p.id, dueMs } }, hooks);
      const verify = p.verifySamplePercent > 0 ? await verifyBackup(s, id, p.verifySamplePercent, hooks, randomBytes(4).readUInt32BE(0)) : null;
      const plan = await this.retentionPlan(p.volumeId, p.target, p);
      const deleted: string[] = [];
      for (const drop of plan.drop) {
        await deleteBackup(s, drop, Date.now());
        deleted.push(drop);
      }
      return { backup, verify, deleted };
    });
  }

  /** The run journal of a policy (`runs/<policy>/<dueMs>-<backup>.json`), written once the run's end is recorded in the cluster. */
  async recordRun(p: BackupPolicy, entry: RunRecord): Promise<void> {
    await this.withStore(p.target, (s) => s.put(runKey(p.id, entry.dueMs, entry.backupId), Buffer.from(JSON.stringify(entry))));
  }

  /** `o.sourceKeyFile`: a backup made on another cluster, whose key file (a path on this node) wraps its data keys. */
  /** `o.tenant`: the caller's, stamped on the new volume (issue #12). */
  async startRestore(id: string, name: string, o: { sourceKeyFile?: string; tenant?: string } = {}): Promise<JobView> {
    const found = await this.find(id);
    const { s } = await this.store(found.target);
    const rec: RestoringRecord = {
      id: `rs-${randomBytes(6).toString('hex')}`, backupId: id, name, nodeId: this.nodeId, startedAtMs: Date.now(),
      ...(o.sourceKeyFile === undefined ? {} : { sourceKeyFile: o.sourceKeyFile }), ...(o.tenant === undefined ? {} : { tenant: o.tenant }),
    };
    return this.restoreJob(s, found.target, found.volume.name, rec);
  }

  /**
   * A restore with its `restoring/` record on the target for as long as it runs (the new volume
   * carries `restoringLabel` meanwhile): a daemon killed mid-way finds the record when it starts
   * again (`resumeRestores`). One that ends — done, failed, cancelled — removes it; a daemon
   * stopping keeps it, to restore again when it starts.
   */
  private async restoreJob(s: ObjectStore, target: string, volume: string, rec: RestoringRecord): Promise<JobView> {
    await s.put(restoringKey(rec.id), Buffer.from(JSON.stringify(rec))).catch((err: unknown) => { s.close(); throw err; });
    const unwrap = this.io.unwrapKey;
    const io = {
      ...(this.io.prepareVolume === undefined ? {} : { prepareVolume: this.io.prepareVolume }), restoreId: rec.id,
      ...(unwrap === undefined ? {} : { unwrapKey: (w: WrappedKey, what: string) => unwrap(w, what, rec.sourceKeyFile) }),
      ...(rec.sourceKeyFile === undefined ? {} : { sourceKeyFile: rec.sourceKeyFile }), ...(rec.tenant === undefined ? {} : { tenant: rec.tenant }),
    };
    this.restoring.add(rec.id);
    return this.run('restore', rec.backupId, target, volume, s, async (h) => {
      try {
        const r = await restoreBackup(this.api(), this.blocks(), s, rec.backupId, rec.name, h, io);
        await s.delete(restoringKey(rec.id));
        return r;
      } catch (err) {
        if (!this.closed) await s.delete(restoringKey(rec.id)).catch(() => undefined);
        throw err;
      } finally {
        this.restoring.delete(rec.id);
      }
    }, rec.tenant);
  }

  /**
   * Restores this node was running when its daemon died: the partly written volume (the one of
   * that name marked with this restore's id, never another) is deleted, and the restore runs
   * again from the start under the same id.
   */
  private async resumeRestores(t: BackupTarget): Promise<JobView[]> {
    const out: JobView[] = [];
    const recs = await this.withStore(t.name, async (s) => Promise.all((await s.list('restoring/')).map(async (k) => checkRestoring(await readJson(s, k)))));
    for (const r of recs) {
      if (r === null || r.nodeId !== this.nodeId || this.restoring.has(r.id)) continue;
      const partial = await this.api().getVolume(r.name).catch((err: unknown) => { if (isGalleonError(err, ErrorCode.VOLUME_NOT_FOUND)) return null; throw err; });
      if (partial !== null) {
        if (partial.labels[restoringLabel] !== r.id) {
          this.logger.error({ restore: r.id, volume: r.name }, 'an interrupted restore was not run again: a volume of its name exists that it did not make; delete the record or the volume');
          continue;
        }
        await this.api().deleteVolume(partial.id);
      }
      this.logger.info({ restore: r.id, backup: r.backupId, volume: r.name, target: t.name }, 'running again a restore interrupted by a restart');
      out.push(await this.restoreJob((await this.store(t.name)).s, t.name, r.name, r));
    }
    return out;
  }

  async startVerify(id: string, samplePercent: number): Promise<JobView> {
    if (!(samplePercent > 0 && samplePercent <= 100)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `--sample ${samplePercent} is not a percentage`, { hint: 'give a number above 0 and at most 100' });
    const found = await this.find(id);
    const { s } = await this.store(found.target);
    const rec: VerifyingRecord = { id, nodeId: this.nodeId, samplePercent, sampleOffset: randomBytes(4).readUInt32BE(0), startedAtMs: Date.now() };
    return this.verifyJob(s, found.target, found.volume.name, rec, found.volume.tenant);
  }

  /**
   * A verification with its `verifying/` record on the target for as long as it runs: a daemon
   * killed meanwhile finds it when it starts again and runs it again (`resumeInterrupted`). A
   * verification that ends, however, removes it (its outcome is `verified/<id>.json`).
   */
  private async verifyJob(s: ObjectStore, target: string, volume: string, rec: VerifyingRecord, tenant: string | undefined): Promise<JobView> {
    await s.put(verifyingKey(rec.id), Buffer.from(JSON.stringify(rec))).catch((err: unknown) => { s.close(); throw err; });
    return this.run('verify', rec.id, target, volume, s, async (h) => {
      try {
        return await verifyBackup(s, rec.id, rec.samplePercent, h, rec.sampleOffset);
      } finally {
        await s.delete(verifyingKey(rec.id)).catch(() => undefined);
      }
    }, tenant);
  }

  /** Verifications this node was running when its daemon died: run again (read-only, so from the start). */
  private async resumeVerifications(t: BackupTarget): Promise<JobView[]> {
    const out: JobView[] = [];
    const recs = await this.withStore(t.name, async (s) => Promise.all((await s.list('verifying/')).map(async (k) => checkVerifying(await readJson(s, k)))));
    for (const r of recs) {
      if (r === null || r.nodeId !== this.nodeId || [...this.jobs.values()].some((j) => j.backupId === r.id && j.kind === 'verify')) continue;
      const m = await this.withStore(t.name, (s) => readManifest(s, r.id)).catch(() => null);
      if (m === null) continue; // its backup was deleted meanwhile
      this.logger.info({ backup: r.id, target: t.name }, 'running again a verification interrupted by a restart');
      out.push(await this.verifyJob((await this.store(t.name)).s, t.name, m.volume.name, r, m.volume.tenant));
    }
    return out;
  }

  private run(kind: JobKind, backupId: string, target: string, volume: string, s: ObjectStore, work: (h: JobHooks) => Promise<BackupResult | RestoreResult | VerifyRecord>,
    tenant: string | undefined): JobView {
    const now = Date.now();
    const job: Job = {
      id: `job-${randomBytes(6).toString('hex')}`, kind, state: 'running', backupId, target, volume, ...(tenant === undefined ? {} : { tenant }),
      progress: { phase: 'starting', blocksDone: 0, blocksTotal: 0, bytesDone: 0, startedAtMs: now, updatedAtMs: now },
      result: null, error: null, abort: new AbortController(),
    };
    this.jobs.set(job.id, job);
    const hooks: JobHooks = { onProgress: (p) => { job.progress = p; }, signal: job.abort.signal, nowMs: () => Date.now(), logger: this.logger };
    void work(hooks).then((r) => {
      job.result = r;
      job.state = 'done';
    }, (err: unknown) => {
      job.state = job.abort.signal.aborted ? 'cancelled' : 'failed';
      const e = isGalleonError(err) ? err : new GalleonError(ErrorCode.INTERNAL, err instanceof Error ? err.message : String(err));
      job.error = { code: e.code, message: job.state === 'cancelled' ? `${kind} ${backupId} cancelled` : e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) };
      if (job.state === 'failed') this.logger.warn({ err, job: job.id, kind, backupId }, 'backup job failed');
    }).finally(() => {
      s.close();
      this.trimJobs();
    });
    return view(job);
  }

  private trimJobs(): void {
    const finished = [...this.jobs.values()].filter((j) => j.state !== 'running');
    for (const j of finished.slice(0, Math.max(0, finished.length - maxFinishedJobs))) this.jobs.delete(j.id);
  }

  /** `tenant` (a tenant user's): another tenant's job answers as one that does not exist. */
  job(id: string, tenant: string | null = null): JobView {
    const j = this.jobs.get(id);
    if (j === undefined || !jobVisible(j, tenant)) {
      throw denyIf(j !== undefined, new GalleonError(ErrorCode.BACKUP_NOT_FOUND, `no job ${id} on this daemon`, { hint: 'jobs are kept by the daemon that runs them, until it restarts' }));
    }
    return view(j);
  }

  /** Cancels a job by its id or by the backup it works on (`tenant`: as for `job`). */
  cancel(ref: string, tenant: string | null = null): JobView {
    const byId = this.jobs.get(ref);
    const j = byId !== undefined && jobVisible(byId, tenant) ? byId : [...this.jobs.values()].find((x) => x.backupId === ref && x.state === 'running' && jobVisible(x, tenant));
    if (j === undefined) {
      const hidden = [...this.jobs.values()].some((x) => (x.id === ref || (x.backupId === ref && x.state === 'running')) && !jobVisible(x, tenant));
      throw denyIf(hidden, new GalleonError(ErrorCode.BACKUP_NOT_FOUND, `no running job ${ref} on this daemon`, { hint: 'see running backups with: galleon backup list (cancel on the daemon that runs it)' }));
    }
    if (j.state !== 'running') throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `job ${j.id} already ${j.state}`, { hint: 'nothing to cancel' });
    j.abort.abort();
    return view(j);
  }

  async list(volume?: string): Promise<BackupSummary[]> {
    const out: BackupSummary[] = [];
    for (const t of await this.api().listBackupTargets()) {
      const cat = await this.withStore(t.name, (s) => readCatalog(s));
      // The manifest names the target as the cluster that wrote it called it; here it is t.name.
      for (const m of cat.complete) out.push(summaryOf({ ...m, target: t.name }, cat.verified.get(m.id) ?? null));
      for (const r of cat.incomplete) {
        const local = [...this.jobs.values()].find((j) => j.backupId === r.id && j.kind === 'backup');
        const state = local?.state === 'running' ? 'running' : r.ended?.state ?? 'incomplete';
        out.push({
          id: r.id, target: t.name, volume: r.volume, volumeId: r.volumeId, strategy: r.strategy, parent: null, state, createdAtMs: r.startedAtMs, completedAtMs: null,
          blocks: 0, bytes: 0, uploadedBlocks: 0, verified: null, progress: local?.progress ?? r.progress ?? null, scheduled: r.scheduled ?? null, tenant: r.tenant ?? null,
        });
      }
      for (const d of cat.damaged) out.push({ id: d.id, target: t.name, volume: '?', volumeId: '?', strategy: 'full', parent: null, state: 'damaged', createdAtMs: 0, completedAtMs: null, blocks: 0, bytes: 0, uploadedBlocks: 0, verified: null, progress: null, scheduled: null, tenant: null });
    }
    const vf = volume === undefined ? out : out.filter((b) => b.volume === volume || b.volumeId === volume);
    return vf.sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
  }

  /** The manifest of a complete backup, wherever it is. */
  async find(id: string): Promise<Manifest> {
    if (!isBackupId(id)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${JSON.stringify(id)} is not a backup id`, { hint: 'backup ids look like bk-…; see them with: galleon backup list' });
    let incomplete: GalleonError | null = null;
    for (const t of await this.api().listBackupTargets()) {
      try {
        // Where it is found, under this cluster's name for the target (a backup made by another
        // cluster names the target as that cluster called it).
        return { ...await this.withStore(t.name, (s) => readManifest(s, id)), target: t.name };
      } catch (err) {
        if (!isGalleonError(err, ErrorCode.BACKUP_NOT_FOUND)) throw err;
        if (err.details.incomplete === true) incomplete = err;
      }
    }
    // "did not complete" says more than "not found" on the other targets.
    throw incomplete ?? backupNotFound(id);
  }

  async get(id: string): Promise<BackupSummary & { changed: number; namespaceEntries: number }> {
    const m = await this.find(id);
    const v = await this.withStore(m.target, async (s) => (await readCatalog(s)).verified.get(id) ?? null);
    return { ...summaryOf(m, v), changed: m.changed.length, namespaceEntries: m.namespace?.entries.length ?? 0 };
  }

  async delete(id: string): Promise<DeleteResult> {
    if (!isBackupId(id)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${JSON.stringify(id)} is not a backup id`, { hint: 'see the ids with: galleon backup list' });
    if ([...this.jobs.values()].some((j) => j.backupId === id && j.state === 'running')) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `backup ${id} has a job running`, { hint: `cancel it first: galleon backup cancel ${id}` });
    }
    for (const t of await this.api().listBackupTargets()) {
      const r = await this.withStore(t.name, (s) => deleteBackup(s, id, Date.now()).catch((err: unknown) => {
        if (isGalleonError(err, ErrorCode.BACKUP_NOT_FOUND)) return null;
        throw err;
      }));
      if (r !== null) return r;
    }
    throw new GalleonError(ErrorCode.BACKUP_NOT_FOUND, `backup ${id} not found`, { hint: 'see the backups with: galleon backup list' });
  }

  /** What retention would keep and delete among the complete backups of a volume on a target. */
  async retentionPlan(volumeRef: string, target: string, rule: RetentionRule): Promise<RetentionPlan & { volume: string; target: string }> {
    const vol = await this.api().getVolume(volumeRef);
    const cat = await this.withStore(target, (s) => readCatalog(s));
    const items = cat.complete.filter((m) => m.volume.id === vol.id).map((m) => ({
      id: m.id, volumeId: m.volume.id, createdAtMs: m.createdAtMs, strategy: m.strategy, parent: m.parent, verified: cat.verified.get(m.id)?.ok === true,
    }));
    return { ...planRetention(items, rule), volume: vol.name, target };
  }
}

function refOf(s: Snapshot, created: boolean): SnapshotRef {
  return { id: s.id, name: s.name, cut: s.cut, created };
}

export interface RunRecord {
  policyId: string;
  dueMs: number;
  backupId: string | null;
  error: string | null;
  claimedBy: string;
  finishedAtMs: number;
}

function resultOf(m: Manifest, requested: Strategy): BackupResult {
  return {
    id: m.id, target: m.target, volume: m.volume.name, requestedStrategy: requested, strategy: m.strategy, parent: m.parent, blocks: Object.keys(m.blocks).length,
    changedBlocks: m.changed.length, uploadedBlocks: m.uploadedBlocks, uploadedBytes: m.uploadedBytes, createdAtMs: m.createdAtMs, completedAtMs: m.completedAtMs,
  };
}

function view(j: Job): JobView {
  const { abort: _a, ...rest } = j;
  return { ...rest, progress: { ...j.progress } };
}

function summaryOf(m: Manifest, v: VerifyRecord | null): BackupSummary {
  const entries = Object.values(m.blocks);
  return {
    id: m.id, target: m.target, volume: m.volume.name, volumeId: m.volume.id, strategy: m.strategy, parent: m.parent, state: 'complete',
    createdAtMs: m.createdAtMs, completedAtMs: m.completedAtMs, blocks: entries.length, bytes: entries.reduce((n, e) => n + e.bytes, 0),
    uploadedBlocks: m.uploadedBlocks, verified: v === null ? null : { ok: v.ok, atMs: v.atMs, samplePercent: v.samplePercent }, progress: null,
    scheduled: m.scheduled ?? null, tenant: m.volume.tenant ?? null,
  };
}

/** The answer for a backup no target holds; a tenant gets the same one for another tenant's backup (issue #12). */
export function backupNotFound(id: string): GalleonError {
  return new GalleonError(ErrorCode.BACKUP_NOT_FOUND, `backup ${id} not found`, { hint: 'see the backups with: galleon backup list (none are listed before a backup-target add)' });
}

/** Whether a caller of `tenant` (null: tenantless, sees every job) sees the job. */
function jobVisible(j: JobView, tenant: string | null): boolean {
  return tenant === null || j.tenant === tenant;
}

/** Marks a not-found a denial (audited) when it hides an object that exists. */
function denyIf(hidden: boolean, err: GalleonError): GalleonError {
  return hidden ? markDenied(err) : err;
}

/** Sortable by time (base36 ms), unique by its random tail. */
export function newBackupId(nowMs = Date.now()): string {
  return `bk-${nowMs.toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
}
