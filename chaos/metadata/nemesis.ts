/**
 * Crashes members (optionally pauses them instead, `pauseFraction`): every `intervalMs` (±25 %) one member gets SIGKILL — every other kill
 * the current leader, so leaders die at least half the time — and comes back on the same port
 * and data directory after a short outage. One member is down at a time, so a quorum survives
 * and the cluster must stay available through every kill.
 */
import type { ChaosClient } from '../cluster/client.js';
import type { MetadataCluster } from '../cluster/metadata-cluster.js';
import type { Random } from '../lib/random.js';
import { delay, withTimeout } from '../lib/wait.js';

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
  private stopping = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly cluster: MetadataCluster,
    private readonly client: ChaosClient,
    private readonly rnd: Random,
    private readonly options: NemesisOptions,
    private readonly log: (line: string) => void,
  ) {}

  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  async run(startedAtMs: number): Promise<void> {
    let lastKillAtMs = Date.now();
    while (!this.stopping) {
      // Kills are paced from kill to kill, so a slow restart does not thin them out, but the
      // restarted member always gets a moment in the cluster before the next one.
      const jitter = this.rnd.between(-this.options.intervalMs / 4, this.options.intervalMs / 4);
      const sinceLastKillMs = Date.now() - lastKillAtMs;
      await this.sleep(Math.max(this.options.minUpMs, this.options.intervalMs + jitter - sinceLastKillMs));
      if (this.stopping) break;
      lastKillAtMs = Date.now();
      const leaderId = await this.leaderId();
      const targetLeader = this.kills.length % 2 === 0 && leaderId !== null;
      const target = targetLeader ? leaderId : this.rnd.pick(this.cluster.members).id;
      const outageMs = this.rnd.between(this.options.minOutageMs, this.options.maxOutageMs);
      const kind = this.rnd.next() < this.options.pauseFraction ? 'pause' : 'kill';
      const record: KillRecord = { atMs: Date.now() - startedAtMs, memberId: target, wasLeader: target === leaderId, kind, outageMs };
      this.log(`t=${(record.atMs / 1000).toFixed(1)}s ${kind === 'kill' ? 'kill -9' : 'pause'} ${target}${record.wasLeader ? ' (leader)' : ''}, back in ${outageMs} ms`);
      if (kind === 'kill') await this.cluster.killMember(target);
      else this.cluster.pauseMember(target);
      this.kills.push(record);
      // The outage is served in full even when stopping: a restart always follows a fault.
      await delay(outageMs);
      if (kind === 'kill') await this.cluster.startMember(target);
      else this.cluster.resumeMember(target);
    }
  }

  private async leaderId(): Promise<string | null> {
    try {
      const status = await withTimeout(this.client.clusterStatus(), this.options.leaderQueryTimeoutMs);
      return status.leaderId;
    } catch {
      return null;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }
}
