/**
 * A galleon node: composes its roles (metadata now; the data plane plugs in beside it), serves
 * the admin endpoint, owns the pid file, and stops gracefully: stop accepting admin requests,
 * let in-flight ones finish, stop roles (which close their stores), remove the pid file.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolder } from '../lib/folder.js';
import type { Logger } from 'pino';
import { collectDefaultMetrics, register, Registry } from 'prom-client';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { KeyProviderName, Member } from '../../proto/metadata-types.js';
import type { MemberStatus } from '../../metadata/service/member.js';
import { parseHostPort } from '../lib/address.js';
import { startAdminServer, type AdminServer, type DaemonHost } from './admin-server.js';
import { MetadataRole } from './metadata-role.js';
import { DataRole } from './data-role.js';
import { MountManager } from '../../vfs/manager/mount-manager.js';
import { BackupService, type SnapshotOps } from '../../dataplane/backup/service.js';
import { createSnapshot, dropSnapshot, flushApiOf, type SnapshotHost } from './snapshot-ops.js';
import { PruneRunner, pruneExitAtEnv, pruneResumeAfterMsFor } from './prune-runner.js';
import { dataKeyContext, InternalKeyProvider } from '../../dataplane/client/key-providers.js';
import { BackupScheduler } from '../../dataplane/backup/schedule.js';
import type { MetadataClient } from '../../metadata/service/client.js';
import { nodeIdFileName, resolveNodeId } from './node-id.js';
import { assertStorageFree, pidFileName } from './pidfile.js';
import { createDaemonLogger } from './logger.js';
import { parseConfigFile, reloadPlan, type DaemonSettings } from './config.js';
import type { DaemonConfig, DaemonStatus, LeaveResult } from './types.js';
import { DaemonKeys } from './keys.js';
import { defaultStorageClass } from '../../metadata/state/logic/storage-classes.js';
import type { VolumeKeyring } from '../../dataplane/client/keyring.js';
import { staleReadSink, type StaleReadSink } from '../../dataplane/client/freshness.js';
import { AdminAuth, type AdminApi } from './admin-auth.js';
import { AuditLog } from './audit-log.js';
import { loadNodeToken } from './node-token.js';
import { tlsMode, type TlsMaterial } from '../../proto/tls.js';
import { certNodeId, loadNodeTls, nodeTlsDir, type TlsSummary } from '../lib/tls.js';
import { readRevoked, TlsWatcher } from '../lib/tls-watch.js';

export const metadataDirName = 'metadata';
/** How long a leader waits for another voter to take over before `cluster leave` gives up. */
export const leadershipHandoverTimeoutMs = 10_000;
const pollIntervalMs = 100;
/** `cluster join` asks the target for its status first; a dead address fails this fast. */
export const joinProbeTimeoutMs = 3_000;
/** A member whose applied index trails its commit index by more than this many entries is
 *  catching up, not healthy. A few entries behind is the normal state of a member applying a
 *  busy log (a status read between a commit and its apply saw 195/196 and flipped to unhealthy). */
export const healthyApplyLagEntries = 256;

/** Whether a running metadata member is healthy (pure: the daemon's status and `join` use it). */
export function memberHealth(s: MemberStatus | null, me: string): { ok: boolean; reason: string } {
  if (s === null) return { ok: false, reason: 'metadata role not running' };
  if (s.leaderId === null) return { ok: false, reason: 'no leader' };
  if (!s.conf.voters.includes(me) && !s.conf.learners.includes(me)) return { ok: false, reason: 'not yet a member' };
  if (s.commitIndex - s.appliedIndex > healthyApplyLagEntries) return { ok: false, reason: `catching up (${s.appliedIndex}/${s.commitIndex})` };
  return { ok: true, reason: `leader ${s.leaderId}` };
}
/** Block-client attempts of a mount (≤ 500 ms apart: ~75 s, within the FUSE op timeout of 120 s). */
export const mountBlockMaxAttempts = 150;
/** Attempts per block request of a backup or restore (a failed run is resumed or run again). */
export const backupBlockMaxAttempts = 20;
const version = '0.1.0';

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, pollIntervalMs));
  }
  return false;
}

/**
 * grpc-js prints its own lines on stderr (`E No address added out of total 1 resolved` when a
 * port is taken) beside the one clear error the daemon reports for the same failure: send them
 * to the daemon's log instead, at debug level.
 */
async function routeGrpcLogs(logger: Logger): Promise<void> {
  const grpc = await import('@grpc/grpc-js');
  const log = logger.child({ lib: 'grpc-js' });
  grpc.setLogger({ error: (...args: unknown[]) => log.debug(args.map(String).join(' ')) });
}

export class Daemon implements DaemonHost {
  readonly registry = new Registry();
  private admin: AdminServer | null = null;
  private metadataRole: MetadataRole | null = null;
  private dataRole: DataRole | null = null;
  private mountManager: MountManager | null = null;
  private backupService: BackupService | null = null;
  private backupScheduler: BackupScheduler | null = null;
  /** Prune rounds after snapshot deletes and restores, and the resume of pending ones (data role). */
  private pruneRunner: PruneRunner | null = null;
  /** The prune resume loop's own watch client (its long polls must not hold the API client's calls). */
  private pruneWatch: MetadataClient | null = null;
  /** The mount manager's own client (its long polls must not hold the API client's calls). */
  private watchClient: MetadataClient | null = null;
  /** Block client of a node without the data role (its mounts still read and write blocks). */
  private mountBlocks: BlockClient | null = null;
  private backupBlocks: BlockClient | null = null;
  /** A node without the metadata role reaches the cluster through this client. */
  private remoteMetadata: (AdminApi & { close(): void }) | null = null;
  private readonly startedAtMs = Date.now();
  private keys_: DaemonKeys | null = null;
  /** One keyring for every block client of this node: one writer id per volume, one unwrap. */
  private keyring_: VolumeKeyring | null = null;
  private staleReads_: StaleReadSink | null = null;
  private stopping: Promise<void> | null = null;
  private resolveStopped!: () => void;
  /** Resolves once the daemon has fully stopped. */
  readonly stopped = new Promise<void>((resolve) => { this.resolveStopped = resolve; });

  /** Issue #12: the node credential (null: authentication off), the audit log and the admin endpoint's door. */
  private nodeToken: string | null = null;
  private audit: AuditLog | null = null;
  private adminAuth: AdminAuth | null = null;

  /** The config file's settings as read at start: a SIGHUP compares the file with them. */
  private fileSettings: DaemonSettings = {};

  /** This node's TLS material; null only when TLS was turned off explicitly (--insecure-plaintext). */
  private tls: TlsMaterial | null = null;
  private tlsSummary: TlsSummary | null = null;
  /** Re-reads the TLS folder: rotation and revocation without a restart (cli/lib/tls-watch.ts). */
  private tlsWatcher: TlsWatcher | null = null;

  private constructor(private readonly cfg: DaemonConfig & { nodeId: string }, readonly logger: Logger) {}

  private logTls(): void {
    if (this.tls === null) {
      this.logger.warn('TLS is off (--insecure-plaintext / [security] tls = false): every endpoint of this node is plaintext and unauthenticated; for development only');
      return;
    }
    this.logger.info({ tlsDir: this.cfg.tlsDir ?? nodeTlsDir(this.cfg.storagePath), subject: this.tlsSummary?.subject, notAfter: this.tlsSummary?.notAfter }, 'mutual TLS on every endpoint');
  }

  static async start(config: DaemonConfig): Promise<Daemon> {
    // The certificate is read and checked before anything is created: a bad one is one line and no change.
    const tls = await loadNodeTls(config);
    await makeFolder(config.storagePath, 'storage path');
    await assertStorageFree(config.storagePath);
    // A node certificate speaks for the node it names (Raft, the block port): a new node takes that
    // id, and a node whose id (--node-id, or its storage's) is another one's is stopped here, before any change.
    const certNode = tls === null ? null : certNodeId(tls.summary);
    const persisted = (await readFile(join(config.storagePath, nodeIdFileName), 'utf8').catch(() => '')).trim();
    const wanted = config.nodeId ?? (persisted === '' ? null : persisted);
    if (tls !== null && wanted !== null && certNode !== wanted) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `TLS: the certificate in ${tls.dir} is node ${certNode ?? '?'}'s, and this is node ${wanted}`, {
        hint: `issue this node its own certificate: galleon cert issue --node ${wanted} --out ${tls.dir}`,
      });
    }
    const nodeId = await resolveNodeId(config.storagePath, config.nodeId ?? certNode);
    const fileSettings = config.configFile === null ? {} : await readSettings(config.configFile);
    const daemon = new Daemon({ ...config, nodeId }, createDaemonLogger(nodeId, fileSettings.logLevel));
    daemon.fileSettings = fileSettings;
    daemon.tls = tls?.material ?? null;
    daemon.tlsSummary = tls?.summary ?? null;
    if (tls !== null) {
      const revoked = await readRevoked(tls.dir).catch((err: unknown) => {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `TLS: ${join(tls.dir, 'revoked.json')} is unreadable (${(err as Error).message})`, {
          hint: 'copy the CA\'s revoked.json there again (`galleon cert revoke` writes it), or remove it', cause: err,
        });
      });
      daemon.tlsWatcher = new TlsWatcher(tls.dir, tls.material, tls.summary, nodeId, daemon.logger, revoked);
      daemon.tlsWatcher.start();
    }
    if (config.nodeTokenFile !== null) await daemon.initAuth(config.nodeTokenFile);
    daemon.auditCertificates();
    await routeGrpcLogs(daemon.logger);
    collectDefaultMetrics({ register: daemon.registry, prefix: 'galleon_' });
    await writeFile(join(config.storagePath, pidFileName), `${process.pid}\n`);
    // Every exit path, process.exit() included (a fatal error, the last-resort handler), runs
    // 'exit' listeners: the pid file never outlives the process, short of SIGKILL.
    process.on('exit', () => daemon.removePidFileSync());
    try {
      daemon.logTls();
      // A node that starts a new cluster on an empty storage path makes the cluster key file.
      const newCluster = config.roles.includes('metadata') && config.peerAddresses.length === 0 && !existsSync(daemon.metadataDir());
      daemon.keys_ = await DaemonKeys.open(daemon.cfg, newCluster, daemon.logger.child({ role: 'keys' }));
      await daemon.startRoles();
      daemon.admin = await startAdminServer(daemon, parseHostPort(config.ipcAddress, 'IPC address', true), daemon.logger, daemon.tls);
    } catch (err) {
      await daemon.stopRoles().catch(() => undefined);
      await rm(join(config.storagePath, pidFileName), { force: true });
      throw err;
    }
    daemon.logger.info({ roles: config.roles, bind: config.bindAddress, ipc: daemon.admin.address, storage: config.storagePath, pid: process.pid }, 'galleon daemon started');
    return daemon;
  }

  /** Removes the pid file if it is still ours (synchronous: it runs in process 'exit'). */
  removePidFileSync(): void {
    const file = join(this.cfg.storagePath, pidFileName);
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file, { force: true });
    } catch {
      // already gone
    }
  }

  /**
   * SIGHUP: re-reads the config file and applies what can be applied live (the log level); a
   * changed setting that needs a restart is named in the log line, never half-applied. A file
   * that no longer parses changes nothing.
   */
  async reload(): Promise<{ logLevel: string; needsRestart: string[] }> {
    const file = this.cfg.configFile;
    let now: DaemonSettings = {};
    try {
      if (file !== null) now = await readSettings(file);
      await this.tlsWatcher?.check();
      const plan = reloadPlan(this.fileSettings, now, process.env.GALLEON_LOG_LEVEL);
      // The line goes out at the old level, so it shows even when the new level is quieter.
      this.logger.info({ configFile: file, logLevel: plan.logLevel, needsRestart: plan.needsRestart },
        plan.needsRestart.length === 0 ? 'SIGHUP: configuration reloaded' : `SIGHUP: configuration reloaded; ${plan.needsRestart.join(', ')} changed and apply only after a restart`);
      this.logger.level = plan.logLevel;
      return plan;
    } catch (err) {
      this.logger.warn({ configFile: file, err: (err as Error).message }, 'SIGHUP: configuration not reloaded, the running settings stay');
      return { logLevel: this.logger.level, needsRestart: [] };
    }
  }

  /** Reads (or, for a new cluster, makes) the node credential; opens the audit log. */
  private async initAuth(file: string): Promise<void> {
    const newCluster = this.cfg.peerAddresses.length === 0 && this.cfg.roles.includes('metadata');
    this.nodeToken = await loadNodeToken(file, newCluster);
    this.audit = new AuditLog(this.cfg.storagePath, this.cfg.nodeId, this.logger.child({ part: 'audit' }));
    this.adminAuth = new AdminAuth({ nodeToken: this.nodeToken, audit: this.audit, api: () => this.metadata() });
  }

  /**
   * Under TLS the ports refuse by certificate too (revoked, a node certificate speaking for another
   * node): those refusals go to the audit log, which is opened for them even without tokens.
   */
  private auditCertificates(): void {
    if (this.tls === null) return;
    this.audit ??= new AuditLog(this.cfg.storagePath, this.cfg.nodeId, this.logger.child({ part: 'audit' }));
    this.tls.audit = this.audit;
  }

  /** Options of every metadata client this node makes: the node credential when authentication is on. */
  private clientAuth(): { token?: string } {
    return this.nodeToken === null ? {} : { token: this.nodeToken };
  }

  auth(): AdminAuth | null {
    return this.adminAuth;
  }

  auditLog(): AuditLog | null {
    return this.audit;
  }

  private metadataDir(): string {
    return join(this.cfg.storagePath, metadataDirName);
  }

  private async startRoles(): Promise<void> {
    if (this.cfg.roles.includes('metadata')) {
      this.metadataRole = new MetadataRole({
        nodeId: this.cfg.nodeId, dataDir: this.metadataDir(), bindAddress: this.cfg.bindAddress, ipcAddress: this.cfg.ipcAddress,
        peerAddresses: this.cfg.peerAddresses, targetVoters: this.cfg.targetVoters, logger: this.logger,
        dataNodeDownAfterMs: this.cfg.dataNodeDownAfterMs, tls: this.tls, dataKeys: { wrapNewKey: () => this.keys().wrapNewKey() },
        ...(this.nodeToken === null || this.audit === null ? {} : { auth: { nodeToken: this.nodeToken, audit: this.audit } }),
      });
      await this.metadataRole.start();
    }
    if (this.metadataRole === null && this.remoteMetadata === null) {
      const { MetadataClient } = await import('../../metadata/service/client.js');
      this.remoteMetadata = new MetadataClient({ addresses: this.cfg.peerAddresses, clientId: `daemon:${this.cfg.nodeId}`, ...this.clientAuth(), tls: this.tls });
    }
    if (this.cfg.roles.includes('data')) {
      this.dataRole = new DataRole({
        nodeId: this.cfg.nodeId, dataAddress: this.cfg.dataAddress, zone: this.cfg.zone, storagePath: this.cfg.storagePath,
        metadata: () => this.metadata(), logger: this.logger.child({ role: 'data' }),
        heartbeatIntervalMs: this.cfg.heartbeatIntervalMs, leaseTtlMs: this.cfg.leaseTtlMs, keyring: this.keyring(), staleReads: this.staleReads(), freshness: this.cfg.freshness, tls: this.tls,
        ...(this.nodeToken === null || this.audit === null ? {} : { auth: { nodeToken: this.nodeToken, audit: this.audit } }),
      });
      await this.dataRole.start();
    }
    await this.startPrunes();
    await this.startMounts();
    this.backupService = new BackupService(() => this.metadata(), this.logger.child({ role: 'backup' }), this.cfg.nodeId, process.env, {
      blocks: () => this.backupBlockClient(),
      prepareVolume: (spec) => this.keys().withDataKey(this.metadata(), spec, defaultStorageClass),
      // A backup made on another cluster: its key file (a path on this node) opens the keys; this cluster's provider never sees them.
      unwrapKey: (w, what, sourceKeyFile) => (sourceKeyFile === undefined ? this.keys().provider : new InternalKeyProvider(sourceKeyFile))
        .unwrap(dataKeyContext, { ...w, provider: w.provider as KeyProviderName }, what),
      snapshots: this.backupSnapshots(),
    });
    void this.backupService.resumeInterrupted();
    if (this.metadataRole !== null) {
      this.backupScheduler = new BackupScheduler({
        api: () => this.metadata(), backups: () => this.backups(), logger: this.logger.child({ role: 'backup-scheduler' }),
        leadership: () => this.leadership(),
      });
      this.backupScheduler.start();
    }
  }

  /** `<node>:<term>` while this node's metadata member leads, else null (the backup scheduler's identity). */
  private leadership(): string | null {
    const s = this.metadataRole?.memberStatus() ?? null;
    return s !== null && s.leaderId === this.cfg.nodeId ? `${this.cfg.nodeId}:${s.term}` : null;
  }

  backups(): BackupService {
    if (this.backupService === null) throw new GalleonError(ErrorCode.UNAVAILABLE, 'the backup service of this node is not running', { hint: 'wait for the daemon to start' });
    return this.backupService;
  }

  /**
   * The prune runner posts with the data role's block client (a node without it posts with the
   * backup client's); only a data-role daemon resumes pending prunes (prune-runner.ts says why).
   */
  private async startPrunes(): Promise<void> {
    const runner = new PruneRunner({
      api: () => this.metadata(), log: this.logger.child({ role: 'prune' }),
      post: () => { const c = this.dataRole === null ? this.backupBlockClient() : this.dataRole.blocks(); return (a, p, b, t) => c.nodePost(a, p, b, t); },
      exitAt: process.env[pruneExitAtEnv], resumeAfterMs: pruneResumeAfterMsFor(this.cfg.dataNodeDownAfterMs),
    });
    this.pruneRunner = runner;
    if (this.dataRole === null) return;
    const { MetadataClient } = await import('../../metadata/service/client.js');
    const addresses = [...(this.metadataRole === null ? [] : [this.cfg.bindAddress]), ...this.cfg.peerAddresses];
    const watch = new MetadataClient({ addresses, clientId: `prunes:${this.cfg.nodeId}`, ...this.clientAuth(), tls: this.tls });
    this.pruneWatch = watch;
    void runner.resumeLoop(this.cfg.nodeId, () => watch);
  }

  prunes(): PruneRunner | null {
    return this.pruneRunner;
  }

  private async startMounts(): Promise<void> {
    const { MetadataClient } = await import('../../metadata/service/client.js');
    const addresses = [...(this.metadataRole === null ? [] : [this.cfg.bindAddress]), ...this.cfg.peerAddresses];
    const watch = new MetadataClient({ addresses, clientId: `mounts:${this.cfg.nodeId}`, ...this.clientAuth(), tls: this.tls });
    this.watchClient = watch;
    this.mountManager = new MountManager({
      nodeId: this.cfg.nodeId, mountPoint: this.cfg.mountPoint, api: () => this.metadata(), watch: () => watch,
      blocks: () => this.mountBlockClient(), log: this.logger.child({ role: 'vfs' }),
    });
    await this.mountManager.start();
  }

  /** A backup's snapshot: taken as `snapshot create` takes one (every mount of the volume flushed first), deleted with its versions freed. */
  private backupSnapshots(): SnapshotOps {
    const host = (): SnapshotHost => ({
      api: this.metadata(), log: this.logger.child({ role: 'backup' }), flush: () => flushApiOf(this.metadata()),
      post: (address, path, body, timeoutMs) => this.backupBlockClient().nodePost(address, path, body, timeoutMs),
      ...(this.pruneRunner === null ? {} : { prunes: this.pruneRunner }),
    });
    return {
      take: (volumeId, name) => createSnapshot(host(), { volume: volumeId, name }),
      // No dry-run estimate first (a down data node would fail it): delete, then free in the background.
      drop: async (id) => { await dropSnapshot(host(), id); },
    };
  }

  /** The backup service's client: this node's keyring, credential and TLS, a backup's own retry bound. */
  private backupBlockClient(): BlockClient {
    this.backupBlocks ??= new BlockClient({
      placement: new MetadataPlacementSource(this.metadata()), coalesceWrites: false, maxAttempts: backupBlockMaxAttempts, retryBaseDelayMs: 50,
      ...this.clientAuth(), tls: this.tls, keyring: this.keyring(), staleReads: this.staleReads(), freshness: this.cfg.freshness,
    });
    return this.backupBlocks;
  }

  private mountBlockClient(): BlockClient {
    if (this.mountBlocks === null) {
      // Its own client: a mount rides out a data node's failover (down detection, then a new
      // primary: ~15 s with the default timings) instead of failing the program's write with EIO.
      this.mountBlocks = new BlockClient({
        placement: new MetadataPlacementSource(this.metadata()), coalesceWrites: false, maxAttempts: mountBlockMaxAttempts, retryBaseDelayMs: 50, ...this.clientAuth(), tls: this.tls,
        keyring: this.keyring(), staleReads: this.staleReads(), freshness: this.cfg.freshness,
      });
    }
    return this.mountBlocks;
  }

  keys(): DaemonKeys {
    if (this.keys_ === null) throw new GalleonError(ErrorCode.UNAVAILABLE, 'the keys of this node are not loaded yet', { hint: 'wait for the daemon to start' });
    return this.keys_;
  }

  /** One sink for every block client of this daemon: a warning, `galleon_client_stale_reads_total`, an audit event. */
  private staleReads(): StaleReadSink {
    this.staleReads_ ??= staleReadSink(this.logger.child({ part: 'stale-reads' }), this.registry, this.audit);
    return this.staleReads_;
  }

  private keyring(): VolumeKeyring {
    if (this.keyring_ === null) {
      // Late-bound: the metadata member may restart under the same daemon.
      this.keyring_ = this.keys().keyring({
        getVolume: (...a) => this.metadata().getVolume(...a),
        getVolumeKey: (...a) => this.metadata().getVolumeKey(...a),
        allocateKeyWriter: (...a) => this.metadata().allocateKeyWriter(...a),
      });
    }
    return this.keyring_;
  }

  mounts(): MountManager {
    if (this.mountManager === null) throw new GalleonError(ErrorCode.UNAVAILABLE, 'the mount manager of this node is not running', { hint: 'wait for the daemon to start' });
    return this.mountManager;
  }

  private async stopRoles(): Promise<void> {
    this.tlsWatcher?.stop();
    this.backupScheduler?.stop();
    this.backupScheduler = null;
    await this.backupService?.close();
    this.backupService = null;
    this.pruneRunner?.stop();
    this.pruneWatch?.close();
    this.pruneWatch = null;
    // Mounts first: their last flushes need the data plane and the metadata service.
    await this.mountManager?.stop();
    this.mountManager = null;
    this.watchClient?.close();
    this.watchClient = null;
    await this.mountBlocks?.close();
    this.mountBlocks = null;
    await this.backupBlocks?.close();
    this.backupBlocks = null;
    await this.dataRole?.stop();
    await this.metadataRole?.stop();
    this.remoteMetadata?.close();
    this.remoteMetadata = null;
  }

  async metrics(): Promise<{ contentType: string; text: string }> {
    const registries = [this.registry];
    // The data plane counts into prom-client's default registry (dataplane/metrics.ts).
    if (this.dataRole !== null) registries.push(register);
    if (this.metadataRole !== null) registries.push(this.metadataRole.registry);
    const merged = Registry.merge(registries);
    return { contentType: merged.contentType, text: await merged.metrics() };
  }

  metadata(): AdminApi {
    if (this.metadataRole !== null) return this.metadataRole.api();
    if (this.remoteMetadata !== null) return this.remoteMetadata;
    throw new GalleonError(ErrorCode.UNAVAILABLE, 'this node is not connected to a metadata service', { hint: 'start it with --roles metadata, or with --peer-addresses of the cluster' });
  }

  blocks(): BlockClient {
    if (this.dataRole === null) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this node does not run the data role', { hint: 'send block commands to a node started with --roles data' });
    return this.dataRole.blocks();
  }

  config(): DaemonConfig {
    return { ...this.cfg };
  }

  async status(): Promise<DaemonStatus> {
    let metadata: DaemonStatus['metadata'] = null;
    if (this.metadataRole !== null) {
      metadata = { state: this.metadataRole.state, error: this.metadataRole.error, raftRole: 'unknown', leaderId: null, term: null, commitIndex: null, appliedIndex: null };
      const s = this.metadataRole.memberStatus();
      if (s !== null) {
        metadata = {
          ...metadata, leaderId: s.leaderId, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex,
          raftRole: s.leaderId === this.cfg.nodeId ? 'leader' : s.conf.voters.includes(this.cfg.nodeId) ? 'voter' : s.conf.learners.includes(this.cfg.nodeId) ? 'learner' : 'unknown',
        };
      }
    }
    return {
      nodeId: this.cfg.nodeId, pid: process.pid, version, startedAtMs: this.startedAtMs, uptimeMs: Date.now() - this.startedAtMs,
      roles: this.cfg.roles, storagePath: this.cfg.storagePath, bindAddress: this.cfg.bindAddress,
      ipcAddress: this.admin?.address ?? this.cfg.ipcAddress, healthy: (await this.health()).ok,
      security: {
        mode: tlsMode(this.tls), tlsDir: this.tls === null ? null : this.cfg.tlsDir ?? nodeTlsDir(this.cfg.storagePath),
        certSubject: this.tlsSummary?.subject ?? null, certNotAfter: this.tlsWatcher?.current.notAfter ?? this.tlsSummary?.notAfter ?? null,
        certSerial: this.tlsWatcher?.current.serial ?? null, revokedCertificates: this.tlsWatcher?.live.revokedCount ?? 0, freshness: this.cfg.freshness,
      },
      metadata,
      data: this.dataRole === null ? null : { state: this.dataRole.state, registered: this.dataRole.registered, address: this.cfg.dataAddress },
    };
  }

  health(): Promise<{ ok: boolean; reason: string }> {
    return Promise.resolve(this.healthNow());
  }

  private healthNow(): { ok: boolean; reason: string } {
    if (this.stopping !== null) return { ok: false, reason: 'stopping' };
    if (this.metadataRole === null) {
      const registered = this.dataRole?.registered ?? false;
      return registered ? { ok: true, reason: 'data node registered' } : { ok: false, reason: 'data node not registered yet' };
    }
    if (this.metadataRole.state !== 'running') return { ok: false, reason: `metadata role ${this.metadataRole.state}` };
    return memberHealth(this.metadataRole.memberStatus(), this.cfg.nodeId);
  }

  async restart(): Promise<DaemonStatus> {
    this.logger.info('restarting roles');
    await this.stopRoles();
    await this.startRoles();
    return this.status();
  }

  async join(address: string): Promise<Member[]> {
    const role = this.metadataRole;
    if (role === null) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this node does not run the metadata role', { hint: 'start it with --roles metadata,data' });
    const api = role.api();
    const s = await api.clusterStatus();
    if (s.members.some((m) => m.address === address)) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `this node is already in the cluster of ${address}`, { hint: 'see `galleon cluster peers`' });
    }
    const [volumes, classes] = await Promise.all([api.listVolumes(), api.listStorageClasses()]);
    if (s.members.length > 1 || volumes.length > 0 || classes.some((c) => !c.builtIn)) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this node already belongs to a cluster with members or data of its own', {
        hint: 'only a fresh single-node daemon can join another cluster; start a new one with --peer-addresses instead',
      });
    }
    await this.probeMember(address);
    this.logger.info({ address }, 'dropping the local one-member cluster to join another');
    await this.dataRole?.stop();
    await role.discardState();
    try {
      await role.start([address]);
    } catch (err) {
      await this.rollBackJoin(role, address, err);
    }
    await this.dataRole?.start();
    const joined = await waitFor(async () => (await this.health()).ok, 30_000);
    if (!joined) throw new GalleonError(ErrorCode.TIMEOUT, `joined ${address} but did not catch up in time`, { hint: 'check `galleon cluster status` and the daemon log' });
    return (await role.api().clusterStatus()).members;
  }

  /** Before anything is dropped: a metadata member must answer at `address`, within seconds. */
  private async probeMember(address: string): Promise<void> {
    const { MetadataClient } = await import('../../metadata/service/client.js');
    const client = new MetadataClient({ addresses: [address], clientId: `join-probe:${this.cfg.nodeId}`, callDeadlineMs: joinProbeTimeoutMs, ...this.clientAuth(), tls: this.tls });
    try {
      await client.clusterStatus({ stale: true });
    } catch (err) {
      throw new GalleonError(ErrorCode.UNAVAILABLE, `no metadata member answered at ${address} within ${joinProbeTimeoutMs / 1000} s; nothing changed`, {
        hint: 'give the --bind-address of a running member (`galleon cluster peers` on it lists them)',
        cause: err,
      });
    } finally {
      client.close();
    }
  }

  /** A join that failed after the local cluster was dropped: start a fresh one-member cluster again. */
  private async rollBackJoin(role: MetadataRole, address: string, cause: unknown): Promise<never> {
    this.logger.warn({ err: cause, address }, 'join failed; starting a one-member cluster again');
    await role.stop().catch(() => undefined);
    await role.start([]);
    await this.dataRole?.start();
    throw new GalleonError(ErrorCode.UNAVAILABLE, `could not join ${address} (${(cause as Error).message}); this node runs a one-member cluster of its own again`, {
      hint: 'check that the address is a running member\'s --bind-address, then retry `galleon cluster join`',
      cause,
    });
  }

  async leave(force: boolean): Promise<LeaveResult> {
    const role = this.metadataRole;
    const me = this.cfg.nodeId;
    const result: LeaveResult = { nodeId: me, removed: false, transferredLeadershipTo: null };
    if (role === null) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this node does not run the metadata role', { hint: 'stop it with `galleon daemon stop`' });
    try {
      const api = role.api();
      const s = await api.clusterStatus();
      const others = s.members.filter((m) => m.id !== me);
      if (others.filter((m) => m.role === 'voter').length === 0) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this node is the only voter of its cluster', { hint: 'stop it with `galleon daemon stop` instead, or add members first' });
      }
      if (s.leaderId === me) {
        const target = others.find((m) => m.role === 'voter' && m.healthy !== false) ?? others.find((m) => m.role === 'voter');
        if (target !== undefined) {
          await api.transferLeadership(target.id);
          const moved = await waitFor(async () => { const now = await api.clusterStatus({ stale: true }); return now.leaderId !== null && now.leaderId !== me; }, leadershipHandoverTimeoutMs);
          if (!moved) throw new GalleonError(ErrorCode.TIMEOUT, `leadership did not move to ${target.id}`, { hint: 'retry, or use --force' });
          result.transferredLeadershipTo = target.id;
        }
      }
      await api.removeMember(me);
      result.removed = true;
    } catch (err) {
      if (!force) throw err;
      this.logger.warn({ err }, 'leave --force: stopping without a confirmed removal');
    }
    if (result.removed) {
      await role.discardState();
      role.state = 'left';
    }
    this.requestStop();
    return result;
  }

  requestStop(): void {
    // Let the response that asked for it go out first.
    setImmediate(() => void this.stop());
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info('stopping');
      try {
        await this.admin?.close();
        await this.stopRoles();
      } catch (err) {
        this.logger.error({ err }, 'error while stopping');
      }
      this.removePidFileSync();
      this.logger.info('stopped');
      this.logger.flush();
      this.resolveStopped();
    })();
    return this.stopping;
  }
}

async function readSettings(file: string): Promise<DaemonSettings> {
  return parseConfigFile(await readFile(file, 'utf8'), file);
}
