/**
 * The metadata role: this node's member of the Raft quorum (metadata/service/member.ts), and the
 * bootstrap rule: existing state → restart as before; no peers → a new one-member cluster;
 * peers → join that cluster as a learner. A learner that has caught up asks to become a voter
 * while the quorum has fewer voters than its target, and otherwise stays a learner
 * ("Docker Swarm-like" membership: managers up to the target, workers beyond it).
 */
import type { TlsMaterial } from '../../proto/tls.js';
import type { DataKeyWrapper } from '../../metadata/service/volume-key-gate.js';
import { access, readdir, rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { MetadataApi } from '../../proto/metadata-types.js';
import type { MemberAuth, MemberStatus, MetadataMember } from '../../metadata/service/member.js';
import type { AuthApi } from '../../proto/auth-api.js';
import type { RoleState } from './types.js';

export interface MetadataRoleOptions {
  nodeId: string;
  dataDir: string;
  bindAddress: string;
  ipcAddress: string;
  peerAddresses: string[];
  targetVoters: number;
  logger: Logger;
  /** A data node silent this long is marked down by the leader's controllers (see config.ts). */
  dataNodeDownAfterMs?: number;
  /** Issue #12: the API requires tokens (metadata/service/auth-gate.ts). */
  auth?: MemberAuth;
  /** Mutual TLS for Raft and the metadata API (proto/tls.ts); null: plaintext. */
  tls?: TlsMaterial | null;
  /** Wraps data keys for encrypted volumes created through the API without one (metadata/service/volume-key-gate.ts). */
  dataKeys?: DataKeyWrapper;
}

export type Bootstrap = 'restart' | 'new-cluster' | 'join';

/** How often a learner checks whether it should ask for promotion. */
export const promotionCheckIntervalMs = 250;

async function hasState(dir: string): Promise<boolean> {
  try {
    await access(dir);
    return (await readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

export class MetadataRole {
  state: RoleState = 'stopped';
  error: string | null = null;
  bootstrap: Bootstrap | null = null;
  private member: MetadataMember | null = null;
  private promotionTimer: NodeJS.Timeout | null = null;
  private promoting = false;
  /** A fresh registry per start: a restarted member registers its metrics again. */
  registry = new Registry();

  constructor(private readonly opts: MetadataRoleOptions) {}

  api(): MetadataApi & AuthApi {
    if (this.member === null || this.state !== 'running') {
      throw new GalleonError(ErrorCode.UNAVAILABLE, `the metadata role of this node is ${this.state}`, {
        hint: this.state === 'left' ? 'this node left the cluster; ask another member' : 'wait for it to start, or check the daemon log',
      });
    }
    return this.member.api;
  }

  memberStatus(): MemberStatus | null {
    return this.member === null || this.state !== 'running' ? null : this.member.status();
  }

  async start(joinAddresses: string[] = this.opts.peerAddresses): Promise<void> {
    this.state = 'starting';
    this.error = null;
    try {
      // Loaded here so that CLI commands other than `daemon start` never load gRPC and LevelDB.
      const { startMetadataMember } = await import('../../metadata/service/member.js');
      const existing = await hasState(this.opts.dataDir);
      this.registry = new Registry();
      this.bootstrap = existing ? 'restart' : joinAddresses.length === 0 ? 'new-cluster' : 'join';
      this.opts.logger.info({ bootstrap: this.bootstrap, peers: joinAddresses }, 'starting metadata member');
      const base = {
        id: this.opts.nodeId,
        dataDir: this.opts.dataDir,
        bindAddress: this.opts.bindAddress,
        adminAddress: this.opts.ipcAddress,
        autoPromote: false,
        logger: this.opts.logger.child({ role: 'metadata' }),
        registry: this.registry,
        tls: this.opts.tls ?? null,
        ...(this.opts.dataNodeDownAfterMs === undefined ? {} : { timing: { dataNodeHeartbeatTimeoutMs: this.opts.dataNodeDownAfterMs } }),
        ...(this.opts.auth === undefined ? {} : { auth: this.opts.auth }),
        ...(this.opts.dataKeys === undefined ? {} : { dataKeys: this.opts.dataKeys }),
      };
      this.member = await startMetadataMember(
        this.bootstrap === 'new-cluster' ? { ...base, peers: [{ id: this.opts.nodeId, address: this.opts.bindAddress }] }
          : this.bootstrap === 'join' ? { ...base, join: joinAddresses } : base,
      );
      this.state = 'running';
      this.promotionTimer = setInterval(() => void this.maybePromote(), promotionCheckIntervalMs);
      this.promotionTimer.unref();
    } catch (err) {
      this.state = 'failed';
      this.error = (err as Error).message;
      // A first start that failed half-way must not leave a cluster of its own behind: the
      // next start would take it for existing state and never join or bootstrap as asked.
      if (this.bootstrap !== 'restart') await rm(this.opts.dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A caught-up learner asks for a vote while the quorum is below its target size. */
  private async maybePromote(): Promise<void> {
    const member = this.member;
    if (member === null || this.promoting || this.state !== 'running') return;
    const s = member.status();
    const me = this.opts.nodeId;
    if (!s.conf.learners.includes(me) || s.leaderId === null || s.commitIndex === 0 || s.appliedIndex < s.commitIndex) return;
    if (s.conf.voters.length >= this.opts.targetVoters) return;
    this.promoting = true;
    try {
      await member.api.promoteMember(me);
      this.opts.logger.info({ voters: s.conf.voters.length + 1, target: this.opts.targetVoters }, 'promoted to voter');
    } catch (err) {
      this.opts.logger.debug({ err }, 'promotion not done yet; will retry');
    } finally {
      this.promoting = false;
    }
  }

  async stop(): Promise<void> {
    if (this.promotionTimer !== null) clearInterval(this.promotionTimer);
    this.promotionTimer = null;
    const member = this.member;
    this.member = null;
    if (member === null) {
      if (this.state !== 'left') this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    await member.stop();
    this.state = 'stopped';
  }

  /** After leaving, the Raft state under dataDir is for a cluster that no longer counts this node. */
  async discardState(): Promise<void> {
    await this.stop();
    await rm(this.opts.dataDir, { recursive: true, force: true });
  }
}
