/**
 * Controllers that run on the leader only: they read the state and propose internal commands
 * through the log like any client, stamped with the leader's clock.
 *  - data nodes whose last heartbeat is older than `dataNodeHeartbeatTimeoutMs` are marked down
 *    (the state machine then moves PG primaries to in-sync replicas and bumps epochs);
 *  - expired leases are swept (a mount lease takes its open-file handles along: orphans go);
 *  - namespaces of deleted volumes are purged, `purgeKeysPerStep` keys per pass;
 *  - a replica outside a PG's in-sync set whose last report is at the PG's current epoch and has
 *    applied at least as far as its in-sync primary reported at that epoch is marked in sync
 *    (`markPgReplicaInSync`, rule `resyncVerdict` of metadata/state/logic/pg-safety.ts):
 *    that is the end of a replacement's resync (or of a catch-up, for a replica its primary took out
 *    of sync: it must also reach the floor recorded then, `listCatchUpFloors`).
 *
 * Safety with lease fencing (dataplane/server/lease-guard.ts): a data node is marked down (and
 * its primaries moved) only after `dataNodeHeartbeatTimeoutMs` — "dataNodeDownAfterMs" — which
 * must exceed the data nodes' pg-primary lease ttl plus its safety margin, so an old primary has
 * stopped acknowledging before a new one is named; and a stale node that still holds a live
 * pg-primary lease (renewed after its last heartbeat) is not marked down until it expires.
 * A new leader waits one heartbeat timeout before marking nodes down: heartbeats sent during
 * the election could not commit, and their absence says nothing about the nodes.
 *
 * Commands use the client id `controller:<member>:<term>`: new for every term this member
 * leads, so seq 1 of a new term is never mistaken for an old command.
 */
import type { Logger } from 'pino';
import type { RaftNodeDriver } from '../raft/node/raft-node-driver.js';
import type { Command, StateMachine } from '../state/contract.js';
import { resyncVerdict, staleDataNodes } from '../state/index.js';
import type { DataNode, Lease, PgReport, PlacementGroup, Volume } from '../../proto/metadata-types.js';
import { defaultDataNodeDownAfterMs } from '../../proto/limits.js';

export interface ControllerLimits {
  controllerIntervalMs: number;
  dataNodeHeartbeatTimeoutMs: number;
}

export const controllerDefaults: ControllerLimits = { controllerIntervalMs: 1_000, dataNodeHeartbeatTimeoutMs: defaultDataNodeDownAfterMs };

export class LeaderControllers {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private term = -1;
  private seq = 0;
  private leaderSinceMs = 0;

  constructor(private readonly d: { id: string; driver: RaftNodeDriver; stateMachine: StateMachine; logger: Logger; limits: ControllerLimits }) {}

  start(): void {
    this.timer = setInterval(() => { void this.runOnce(); }, this.d.limits.controllerIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass (exposed for tests); does nothing unless this member leads. */
  async runOnce(): Promise<void> {
    if (this.running) return;
    const st = this.d.driver.status();
    if (st.role !== 'leader') {
      this.term = -1;
      return;
    }
    const now = Date.now();
    if (st.term !== this.term) {
      this.term = st.term;
      this.seq = 0;
      this.leaderSinceMs = now;
    }
    this.running = true;
    try {
      if (now - this.leaderSinceMs >= this.d.limits.dataNodeHeartbeatTimeoutMs) {
        const nodes = await this.d.stateMachine.query('listDataNodes', []) as DataNode[];
        const leases = await this.d.stateMachine.query('listLeases', []) as Lease[];
        for (const nodeId of staleDataNodes(nodes, now, this.d.limits.dataNodeHeartbeatTimeoutMs)) {
          // A node may have renewed a pg-primary lease after its last heartbeat: while one is
          // live, it may still acknowledge writes, so its PGs must not get a new primary yet.
          const holding = leases.find((l) => l.kind === 'pg-primary' && l.holder === nodeId && l.expiresAtMs > now);
          if (holding !== undefined) {
            this.d.logger.debug({ nodeId, until: holding.expiresAtMs }, 'stale data node still holds a pg-primary lease; waiting for it to expire');
            continue;
          }
          await this.propose('markDataNodeDown', [nodeId]);
          this.d.logger.warn({ nodeId }, 'data node missed its heartbeats; marked down');
        }
      }
      await this.markResyncedReplicas();
      const leases = await this.d.stateMachine.query('listLeases', []) as Lease[];
      if (leases.some((l) => l.expiresAtMs <= now)) await this.propose('expireLeases', []);
      // Deleted volumes' namespaces go in bounded steps, one per pass while any is left.
      if (await this.d.stateMachine.query('fsPendingPurges', []) as number > 0) await this.propose('fsPurgeDeleted', []);
    } catch (err) {
      this.d.logger.debug({ err }, 'controller pass did not complete; next pass retries');
    } finally {
      this.running = false;
    }
  }

  private async markResyncedReplicas(): Promise<void> {
    const all = await this.d.stateMachine.query('listPgReports', []) as { nodeId: string; reports: PgReport[] }[];
    const reports = new Map<string, PgReport>();
    for (const { nodeId, reports: rs } of all) for (const r of rs) reports.set(`${nodeId}|${r.volumeId}/${r.pg}`, r);
    // Replicas their primary took out of sync must also reach the seq it had assigned by then.
    const floors = new Map<string, number>();
    for (const f of await this.d.stateMachine.query('listCatchUpFloors', []) as { volumeId: string; pg: number; nodeId: string; seq: number }[]) {
      floors.set(`${f.nodeId}|${f.volumeId}/${f.pg}`, f.seq);
    }
    const volumes = await this.d.stateMachine.query('listVolumes', []) as Volume[];
    for (const v of volumes) {
      if (v.state !== 'degraded') continue;
      const groups = await this.d.stateMachine.query('getPlacement', [v.id]) as PlacementGroup[];
      for (const g of groups) {
        const primary = reports.get(`${g.primary}|${v.id}/${g.pg}`);
        for (const id of g.replicas) {
          if (g.inSync.includes(id)) continue;
          // The state machine's own rule, so the controller proposes only what it will accept.
          if (!resyncVerdict(g, id, reports.get(`${id}|${v.id}/${g.pg}`), primary, floors.get(`${id}|${v.id}/${g.pg}`) ?? 0).ok) continue;
          await this.propose('markPgReplicaInSync', [v.id, g.pg, id, g.epoch]);
          this.d.logger.info({ volumeId: v.id, pg: g.pg, nodeId: id, epoch: g.epoch }, 'replica resynced; marked in sync');
        }
      }
    }
  }

  private async propose(method: Command['method'], args: unknown[]): Promise<void> {
    const command: Command = { clientId: `controller:${this.d.id}:${this.term}`, seq: ++this.seq, stampMs: Date.now(), method, args };
    const result = await this.d.driver.propose(command);
    if (!result.ok) this.d.logger.warn({ method, error: result.error }, 'controller command refused');
  }
}
