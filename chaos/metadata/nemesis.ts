/**
 * Crashes members (optionally pauses them instead, `pauseFraction`): every `intervalMs` (±25 %) one member gets SIGKILL — every other kill
 * the current leader, so leaders die at least half the time — and comes back on the same port
 * and data directory after a short outage. One member is down at a time, so a quorum survives
 * and the cluster must stay available through every kill.
 */
import type { ChaosClient } from '../cluster/client.js';
import type { MetadataCluster } from '../cluster/metadata-cluster.js';
import { FaultLoop, leaderWithin } from '../lib/harness.js';
import type { Random } from '../lib/random.js';

export interface NemesisOptions {
  intervalMs: number;
  minOutageMs: number;
  maxOutageMs: number;
  /** Least time every member is up between two kills. */
  minUpMs: number;
  /** Fraction of faults that pause the member (SIGSTOP … SIGCONT) instead of killing it. */
  pauseFraction: number;
  /** Bound on asking who leads; a cluster mid-election may not know. */
  leaderQueryTimeoutMs: number;
}

export interface KillRecord {
  atMs: number;
  memberId: string;
  wasLeader: boolean;
  kind: 'kill' | 'pause';
  outageMs: number;
}

export class Nemesis {
  readonly kills: KillRecord[] = [];
  private readonly loop: FaultLoop;

  constructor(
    private readonly cluster: MetadataCluster,
    private readonly client: ChaosClient,
    private readonly rnd: Random,
    private readonly options: NemesisOptions,
    private readonly log: (line: string) => void,
  ) {
    this.loop = new FaultLoop(rnd, options);
  }

  stop(): void {
    this.loop.stop();
  }

  run(startedAtMs: number): Promise<void> {
    return this.loop.run(async () => {
      const leaderId = await leaderWithin(this.client, this.options.leaderQueryTimeoutMs);
      const targetLeader = this.kills.length % 2 === 0 && leaderId !== null;
      const target = targetLeader ? leaderId : this.rnd.pick(this.cluster.members).id;
      const outageMs = this.rnd.between(this.options.minOutageMs, this.options.maxOutageMs);
      const kind = this.rnd.next() < this.options.pauseFraction ? 'pause' : 'kill';
      const record: KillRecord = { atMs: Date.now() - startedAtMs, memberId: target, wasLeader: target === leaderId, kind, outageMs };
      this.log(`t=${(record.atMs / 1000).toFixed(1)}s ${kind === 'kill' ? 'kill -9' : 'pause'} ${target}${record.wasLeader ? ' (leader)' : ''}, back in ${outageMs} ms`);
      if (kind === 'kill') await this.cluster.killMember(target);
      else this.cluster.pauseMember(target);
      this.kills.push(record);
      return {
        outageMs,
        heal: async () => {
          if (kind === 'kill') await this.cluster.startMember(target);
          else this.cluster.resumeMember(target);
        },
      };
    });
  }
}
