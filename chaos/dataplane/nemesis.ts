/**
 * Crashes data nodes, and now and then the metadata leader: every `intervalMs` (±25 %) one
 * process gets SIGKILL and comes back on the same port and data directory after a short
 * outage. Every `metadataEvery`-th fault hits the metadata leader (when one is known); the
 * others hit a data node picked at random, primary of some PGs and replica of the rest. Every
 * `nodeLossEvery`-th data-node fault is a node loss instead (node-loss.ts): a primary killed
 * right after it acknowledged a write, its disk wiped, back as an empty node. One process is
 * down at a time.
 */
import type { ArmedOp } from './snapshots.js';
import type { ChaosClient } from '../cluster/client.js';
import type { DataNodes } from '../cluster/data-nodes.js';
import type { MetadataCluster } from '../cluster/metadata-cluster.js';
import { FaultLoop, leaderWithin } from '../lib/harness.js';
import type { Random } from '../lib/random.js';
import type { NodeLoss, NodeLossStrike } from './node-loss.js';

export interface DataNemesisOptions {
  intervalMs: number;
  minOutageMs: number;
  maxOutageMs: number;
  /** Least time every process is up between two faults. */
  minUpMs: number;
  /** 0 = never the metadata leader. */
  metadataEvery: number;
  /**
   * Every `longOutageEvery`-th data-node fault (0 = none) keeps the node away for
   * `longOutageMs` (±25 %): long enough for the metadata service to declare it down and move
   * its primaries, which a short outage never is.
   */
  longOutageEvery: number;
  longOutageMs: number;
  /** Every `nodeLossEvery`-th data-node fault (0 = none) loses the node's disk (needs `nodeLoss`). */
  nodeLossEvery: number;
  /**
   * How long a lost node stays away; null = like any short outage. 0 brings it back (empty)
   * before the metadata service can mark it down: it must then wait, unregistered.
   */
  nodeLossOutageMs: number | null;
  leaderQueryTimeoutMs: number;
}

export interface FaultRecord {
  atMs: number;
  target: string;
  kind: 'data-node' | 'metadata-leader' | 'node-loss';
  outageMs: number;
  /** For a node loss: what the node was primary of and the write it acknowledged last. */
  loss?: NodeLossStrike;
  /** A strike timed to land during a snapshot operation (snapshots.ts): which one. */
  during?: string;
}

/** Where armed snapshot operations wait for a strike (snapshots.ts `SnapshotChaos`). */
export interface ArmedSource { takeArmed(): ArmedOp | null }

export class DataNemesis {
  readonly faults: FaultRecord[] = [];
  /** Nodes restarted after a node loss that never became ready (left running: what they do is the finding). */
  readonly notReady = new Set<string>();
  private readonly loop: FaultLoop;

  constructor(
    private readonly meta: MetadataCluster,
    private readonly data: DataNodes,
    private readonly client: ChaosClient,
    private readonly rnd: Random,
    private readonly options: DataNemesisOptions,
    private readonly log: (line: string) => void,
    private readonly nodeLoss: NodeLoss | null = null,
    private readonly armedOps: ArmedSource | null = null,
  ) {
    this.loop = new FaultLoop(rnd, options);
  }

  stop(): void {
    this.loop.stop();
  }

  run(startedAtMs: number): Promise<void> {
    return this.loop.run(async () => {
      // At most every other strike goes to an armed snapshot operation, and those do not count in
      // the cadence below: the leader kills, long outages and node losses keep their rhythm.
      const armed = this.faults.at(-1)?.during !== undefined ? null : this.armedOps?.takeArmed() ?? null;
      if (armed !== null) return this.strikeDuring(armed, startedAtMs);
      const own = this.faults.filter((f) => f.during === undefined);
      const dataTarget = this.rnd.pick(this.data.nodes).id;
      const wantLeader = this.options.metadataEvery > 0 && (own.length + 1) % this.options.metadataEvery === 0;
      const leaderId = wantLeader ? await leaderWithin(this.client, this.options.leaderQueryTimeoutMs) : null;
      const dataFaults = own.filter((f) => f.kind !== 'metadata-leader').length;
      const lose = leaderId === null && this.nodeLoss !== null && this.options.nodeLossEvery > 0 && (dataFaults + 1) % this.options.nodeLossEvery === 0;
      if (lose && this.nodeLoss !== null) {
        const lost = await this.loseNode(this.nodeLoss, startedAtMs);
        if (lost !== null) return lost;
        this.log('node loss skipped: not every PG had its full replica set in sync; a kill -9 instead');
      }
      const long = leaderId === null && this.options.longOutageEvery > 0 && (dataFaults + 1) % this.options.longOutageEvery === 0;
      const outageMs = long
        ? this.rnd.between(Math.round(this.options.longOutageMs * 0.75), Math.round(this.options.longOutageMs * 1.25))
        : this.rnd.between(this.options.minOutageMs, this.options.maxOutageMs);
      const record: FaultRecord = leaderId !== null
        ? { atMs: Date.now() - startedAtMs, target: leaderId, kind: 'metadata-leader', outageMs }
        : { atMs: Date.now() - startedAtMs, target: dataTarget, kind: 'data-node', outageMs };
      this.log(`t=${(record.atMs / 1000).toFixed(1)}s kill -9 ${record.kind === 'metadata-leader' ? `metadata leader ${record.target}` : `data node ${record.target}`}, back in ${outageMs} ms`);
      if (record.kind === 'metadata-leader') await this.meta.killMember(record.target);
      else await this.data.killNode(record.target);
      this.faults.push(record);
      return {
        outageMs,
        heal: () => (record.kind === 'metadata-leader' ? this.meta.startMember(record.target) : this.data.startNode(record.target)),
      };
    });
  }

  /** A kill -9 of the kind an armed snapshot operation asked for, started just before the kill (a short outage, never a disk loss). */
  private async strikeDuring(armed: ArmedOp, startedAtMs: number): Promise<{ outageMs: number; heal: () => Promise<void> }> {
    const leaderId = armed.want === 'metadata-leader' ? await leaderWithin(this.client, this.options.leaderQueryTimeoutMs) : null;
    const outageMs = this.rnd.between(this.options.minOutageMs, this.options.maxOutageMs);
    const record: FaultRecord = leaderId !== null
      ? { atMs: Date.now() - startedAtMs, target: leaderId, kind: 'metadata-leader', outageMs, during: armed.what }
      : { atMs: Date.now() - startedAtMs, target: this.rnd.pick(this.data.nodes).id, kind: 'data-node', outageMs, during: armed.what };
    this.log(`t=${(record.atMs / 1000).toFixed(1)}s kill -9 ${record.kind === 'metadata-leader' ? `metadata leader ${record.target}` : `data node ${record.target}`} during a ${armed.what}, back in ${outageMs} ms`);
    armed.begin();
    if (record.kind === 'metadata-leader') await this.meta.killMember(record.target);
    else await this.data.killNode(record.target);
    this.faults.push(record);
    return { outageMs, heal: () => (record.kind === 'metadata-leader' ? this.meta.startMember(record.target) : this.data.startNode(record.target)) };
  }

  /** The node comes back with an empty store; it registers once the service has marked it down. */
  private async loseNode(nodeLoss: NodeLoss, startedAtMs: number): Promise<{ outageMs: number; heal: () => Promise<void> } | null> {
    const outageMs = this.options.nodeLossOutageMs ?? this.rnd.between(this.options.minOutageMs, this.options.maxOutageMs);
    const loss = await nodeLoss.strike(this.rnd);
    if (loss === null) return null;
    const record: FaultRecord = { atMs: Date.now() - startedAtMs, target: loss.target, kind: 'node-loss', outageMs, loss };
    const ack = loss.lastAck === null ? 'no write acknowledged in time' : `right after it acknowledged ${loss.lastAck.value} on block ${loss.lastAck.key} at ${loss.lastAck.concern}`;
    this.log(`t=${(record.atMs / 1000).toFixed(1)}s NODE LOSS: kill -9 data node ${loss.target} (primary of pgs ${loss.primaryOf.join(',') || 'none'}) ${ack}; disk wiped, back empty in ${outageMs} ms`);
    this.faults.push(record);
    return {
      outageMs,
      heal: () => this.data.startNode(loss.target).catch((err: unknown) => {
        this.notReady.add(loss.target);
        this.log(`NOT READY: data node ${loss.target} did not come back after its node loss: ${err instanceof Error ? err.message : String(err)}`);
      }),
    };
  }
}
