/**
 * Server side of the metadata API, free of gRPC: one `call()` per MetadataApi method.
 *  - mutations (commandMethods) are proposed as Commands on the leader and answered with their
 *    applied result;
 *  - queries wait for a ReadIndex round (linearizable) on the leader, or read local state when
 *    `stale` is set;
 *  - cluster operations drive Raft membership and leadership.
 * A member that is not the leader answers NOT_LEADER with the leader's id and address.
 */
import type { Logger } from 'pino';
import type { ConfChange, RaftStatus } from '../raft/core/types.js';
import type { RaftNodeDriver } from '../raft/node/raft-node-driver.js';
import type { MemberMetrics } from '../raft/node/metrics.js';
import { commandMethods, queryMethods, type ClusterSummary, type CommandMethod, type QueryMethod, type StateMachine } from '../state/contract.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { ClusterStatus, Member } from '../../proto/metadata-types.js';
import type { AddressBook } from './address-book.js';
import { checkCallArgs } from './call-args.js';
import { keyedArgs, type KeyGatePolicy } from './volume-key-gate.js';
import { lookupsOver } from './auth-guard.js';
import { maxWatchTimeoutMs, type VolumeWatch } from './volume-watch.js';

export interface CallInput {
  method: string;
  args: unknown[];
  clientId: string;
  seq: number;
  stale: boolean;
}

export const clusterMethods = ['clusterStatus', 'addMember', 'promoteMember', 'removeMember', 'transferLeadership', 'waitForChange'] as const;
export type ClusterMethod = (typeof clusterMethods)[number];

export interface ServiceLimits {
  /** How long a leadership transfer (or a removed leader's hand-over) may take. */
  transferTimeoutMs: number;
  /** A learner is promoted only when it is at most this many entries behind the leader's log. */
  promoteMaxLagEntries: number;
}

export const serviceDefaults: ServiceLimits = { transferTimeoutMs: 5_000, promoteMaxLagEntries: 1_000 };

const commandSet = new Set<string>(commandMethods);
const querySet = new Set<string>(queryMethods);
const clusterSet = new Set<string>(clusterMethods);

export interface ServiceDeps {
  id: string;
  driver: RaftNodeDriver;
  stateMachine: StateMachine;
  addressBook: AddressBook;
  logger: Logger;
  metrics: MemberMetrics;
  limits: ServiceLimits;
  /** Long polls on the volume table (volume-watch.ts); absent: waitForChange is refused. */
  watch?: VolumeWatch;
  /** Encrypted volumes get their data key here or are refused (volume-key-gate.ts); absent: refused. */
  keys?: KeyGatePolicy;
}

export class MetadataService {
  constructor(private readonly d: ServiceDeps) {}

  async call(input: CallInput): Promise<unknown> {
    const { method } = input;
    try {
      const value = await this.dispatch(input);
      this.d.metrics.rpcs.inc({ method, code: 'OK' });
      return value;
    } catch (err) {
      const code = err instanceof GalleonError ? err.code : 'INTERNAL';
      this.d.metrics.rpcs.inc({ method: commandSet.has(method) || querySet.has(method) || clusterSet.has(method) ? method : 'unknown', code });
      throw err;
    }
  }

  private async dispatch(input: CallInput): Promise<unknown> {
    const { method, args } = input;
    if (!Array.isArray(args)) throw invalid('arguments must be a JSON array');
    checkCallArgs(method, args);
    if (commandSet.has(method)) return this.mutate(method as CommandMethod, input);
    if (querySet.has(method)) return this.query(method as QueryMethod, args, input.stale);
    switch (method) {
      case 'clusterStatus': return this.clusterStatus(input.stale);
      case 'addMember': return this.addMember(str(args[0], 'member id'), str(args[1], 'member address'), args[2] === null || args[2] === undefined ? null : str(args[2], 'admin address'));
      case 'promoteMember': return this.promoteMember(str(args[0], 'member id'));
      case 'removeMember': return this.removeMember(str(args[0], 'member id'));
      case 'transferLeadership': return this.transferLeadership(str(args[0], 'member id'));
      case 'waitForChange': return this.waitForChange(args[0], args[1]);
      default:
        throw invalid(`unknown metadata method "${method}"`);
    }
  }

  // ---- mutations and queries ------------------------------------------------------------------

  private async mutate(method: CommandMethod, input: CallInput): Promise<unknown> {
    if (input.clientId === '' || !Number.isSafeInteger(input.seq) || input.seq < 1) {
      throw invalid(`${method} needs a client id and a sequence number`, 'use MetadataClient, which stamps every mutating call');
    }
    this.requireLeader();
    const args = await keyedArgs(method, input.args, lookupsOver((m, a) => this.d.stateMachine.query(m as QueryMethod, a)), this.d.keys ?? { wrapper: null, allowUnkeyed: false });
    const result = await this.d.driver.propose({ clientId: input.clientId, seq: input.seq, stampMs: Date.now(), method, args });
    if (result.ok) return result.value ?? null;
    throw GalleonError.fromJSON(result.error);
  }

  private async query(method: QueryMethod, args: unknown[], stale: boolean): Promise<unknown> {
    if (!stale) {
      this.requireLeader();
      await this.d.driver.readIndex();
    }
    return this.d.stateMachine.query(method, args);
  }

  private waitForChange(since: unknown, timeoutMs: unknown): Promise<unknown> {
    if (this.d.watch === undefined) throw invalid('this member does not serve waitForChange');
    if (!Number.isSafeInteger(since) || (since as number) < 0 || !Number.isSafeInteger(timeoutMs) || (timeoutMs as number) < 0 || (timeoutMs as number) > maxWatchTimeoutMs) {
      throw invalid('waitForChange needs (sinceIndex >= 0, timeoutMs 0..60000)');
    }
    return this.d.watch.wait(since as number, timeoutMs as number);
  }

  // ---- cluster --------------------------------------------------------------------------------

  private async clusterStatus(stale: boolean): Promise<ClusterStatus> {
    if (!stale) {
      this.requireLeader();
      await this.d.driver.readIndex();
    }
    const st = this.d.driver.status();
    const summary = await this.d.stateMachine.query('clusterSummary', []) as ClusterSummary;
    const leaderId = st.leader;
    return {
      nodeId: this.d.id,
      leaderId,
      leaderAddress: leaderId === null ? null : this.d.addressBook.address(leaderId) ?? null,
      term: st.term,
      commitIndex: st.commit,
      appliedIndex: this.d.driver.applied(),
      members: await this.members(st),
      dataNodes: summary.dataNodes,
      degradedPgs: summary.degradedPgs,
      underReplicatedPgs: summary.underReplicatedPgs,
    };
  }

  private async members(st: RaftStatus = this.d.driver.status()): Promise<Member[]> {
    const recorded = new Map((await this.d.stateMachine.members()).map((m) => [m.id, m]));
    const isLeader = st.role === 'leader';
    const out: Member[] = [];
    const add = (id: string, role: Member['role']): void => {
      const book = this.d.addressBook.get(id);
      const rec = recorded.get(id);
      const progress = st.progress[id];
      const self = id === this.d.id;
      out.push({
        id,
        address: book?.address ?? rec?.address ?? '',
        adminAddress: book?.adminAddress ?? rec?.adminAddress ?? null,
        role,
        isLeader: st.leader === id,
        healthy: self ? true : isLeader ? progress?.recentActive ?? false : null,
        matchIndex: self ? st.lastIndex : isLeader ? progress?.match ?? 0 : null,
      });
    };
    for (const id of st.conf.voters) add(id, 'voter');
    for (const id of st.conf.learners) add(id, 'learner');
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  private async addMember(id: string, address: string, adminAddress: string | null): Promise<Member[]> {
    this.requireLeader();
    const conf = this.d.driver.status().conf;
    if (conf.voters.includes(id) || conf.learners.includes(id)) {
      const known = this.d.addressBook.address(id);
      if (known !== undefined && known !== address) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `member ${id} already exists at ${known}`, {
          hint: 'remove it first, or join under another id', details: { memberId: id, address: known },
        });
      }
      return this.members();
    }
    // Known before the change commits so the leader can reach the learner at once.
    this.d.addressBook.set(id, address, adminAddress);
    await this.changeConf({ type: 'add-learner', node: id, context: JSON.stringify({ address, adminAddress }) });
    return this.members();
  }

  private async promoteMember(id: string): Promise<Member[]> {
    this.requireLeader();
    const st = this.d.driver.status();
    if (st.conf.voters.includes(id)) return this.members(st);
    if (!st.conf.learners.includes(id)) throw memberNotFound(id);
    const match = st.progress[id]?.match ?? 0;
    if (st.lastIndex - match > this.d.limits.promoteMaxLagEntries) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `learner ${id} is ${st.lastIndex - match} entries behind the leader`, {
        hint: `promote it once it is within ${this.d.limits.promoteMaxLagEntries} entries (see cluster status)`, details: { memberId: id, matchIndex: match, lastIndex: st.lastIndex },
      });
    }
    await this.changeConf({ type: 'promote-learner', node: id });
    return this.members();
  }

  private async removeMember(id: string): Promise<Member[]> {
    this.requireLeader();
    const st = this.d.driver.status();
    if (!st.conf.voters.includes(id) && !st.conf.learners.includes(id)) return this.members(st);
    if (id === this.d.id) {
      // A leader does not remove itself: it hands over to the most caught-up voter first; the
      // client follows the NOT_LEADER answer and asks the new leader.
      const target = st.conf.voters.filter((v) => v !== id)
        .sort((a, b) => (st.progress[b]?.match ?? 0) - (st.progress[a]?.match ?? 0))[0];
      if (target === undefined) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `member ${id} is the only voter`, { hint: 'add and promote another member before removing this one' });
      }
      await this.handOver(target);
      throw this.notLeader();
    }
    await this.changeConf({ type: 'remove-node', node: id });
    return this.members();
  }

  private async transferLeadership(toId: string): Promise<void> {
    this.requireLeader();
    const st = this.d.driver.status();
    if (toId === this.d.id) return;
    if (!st.conf.voters.includes(toId)) {
      if (st.conf.learners.includes(toId)) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `member ${toId} is a learner`, { hint: 'promote it first' });
      throw memberNotFound(toId);
    }
    await this.handOver(toId);
  }

  private async handOver(target: string): Promise<void> {
    this.d.driver.transferLeader(target);
    const deadline = Date.now() + this.d.limits.transferTimeoutMs;
    const pollMs = 10;
    while (Date.now() < deadline) {
      const soft = this.d.driver.softState();
      if (soft.leader === target) return;
      await new Promise((r) => setTimeout(r, pollMs));
    }
    throw new GalleonError(ErrorCode.TIMEOUT, `leadership did not move to ${target} within ${this.d.limits.transferTimeoutMs} ms`, {
      hint: 'the target may be behind or unreachable; check cluster status and retry',
    });
  }

  private async changeConf(change: ConfChange): Promise<void> {
    const result = await this.d.driver.proposeConfChange(change);
    if (!result.ok) throw GalleonError.fromJSON(result.error);
  }

  // ---- leadership -----------------------------------------------------------------------------

  private requireLeader(): void {
    if (this.d.driver.softState().role !== 'leader') throw this.notLeader();
  }

  notLeader(): GalleonError {
    const leaderId = this.d.driver.softState().leader;
    if (leaderId === null || leaderId === this.d.id) {
      return new GalleonError(ErrorCode.NO_LEADER, 'the metadata cluster has no leader right now', {
        hint: 'an election is under way or a quorum is down; retry shortly', details: { memberId: this.d.id },
      });
    }
    const leaderAddress = this.d.addressBook.address(leaderId) ?? null;
    return new GalleonError(ErrorCode.NOT_LEADER, `member ${this.d.id} is not the leader`, {
      hint: leaderAddress === null ? `ask the leader ${leaderId}` : `ask the leader ${leaderId} at ${leaderAddress}`,
      details: { leaderId, leaderAddress },
    });
  }
}

function invalid(message: string, hint = 'check the method name and its arguments'): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, message, { hint });
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw invalid(`${what} must be a non-empty string`);
  return v;
}

function memberNotFound(id: string): GalleonError {
  return new GalleonError(ErrorCode.MEMBER_NOT_FOUND, `no metadata member ${id}`, { hint: 'list members with cluster status' });
}
