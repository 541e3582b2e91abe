/**
 * The metadata role: this node's member of the Raft quorum (metadata/service/member.ts), and the
 * bootstrap rule: existing state → restart as before; no peers → a new one-member cluster;
 * peers → join that cluster as a learner, then ask for promotion while the quorum has fewer
 * voters than its target ("Docker Swarm-like" membership).
 */
import { access, readdir, rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { MetadataApi } from '../../proto/metadata-types.js';
import type { RoleState } from './types.js';
import { loadMemberModule, type MemberHandle } from './member-loader.js';

export interface MetadataRoleOptions {
  nodeId: string;
  dataDir: string;
  bindAddress: string;
  ipcAddress: string;
  peerAddresses: string[];
  targetVoters: number;
  logger: Logger;
  registry: Registry;
}

export type Bootstrap = 'restart' | 'new-cluster' | 'join';

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
  private member: MemberHandle | null = null;

  constructor(private readonly opts: MetadataRoleOptions) {}

  api(): MetadataApi {
    if (this.member === null || this.state !== 'running') {
      throw new GalleonError(ErrorCode.UNAVAILABLE, `the metadata role of this node is ${this.state}`, {
        hint: this.state === 'left' ? 'this node left the cluster; ask another member' : 'wait for it to start, or check the daemon log',
      });
    }
    return this.member.api;
  }

  async start(joinAddresses: string[] = this.opts.peerAddresses): Promise<void> {
    this.state = 'starting';
    this.error = null;
    try {
      const memberModule = await loadMemberModule();
      const existing = await hasState(this.opts.dataDir);
      this.bootstrap = existing ? 'restart' : joinAddresses.length === 0 ? 'new-cluster' : 'join';
      this.opts.logger.info({ bootstrap: this.bootstrap, peers: joinAddresses }, 'starting metadata member');
      this.member = await memberModule.startMetadataMember({
        id: this.opts.nodeId,
        dataDir: this.opts.dataDir,
        bindAddress: this.opts.bindAddress,
        adminAddress: this.opts.ipcAddress,
        peers: this.bootstrap === 'new-cluster' ? [this.opts.bindAddress] : [],
        join: this.bootstrap === 'join' ? joinAddresses : [],
        targetVoters: this.opts.targetVoters,
        logger: this.opts.logger.child({ role: 'metadata' }),
        registry: this.opts.registry,
      });
      this.state = 'running';
    } catch (err) {
      this.state = 'failed';
      this.error = (err as Error).message;
      throw err;
    }
  }

  async stop(): Promise<void> {
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
