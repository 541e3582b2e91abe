/**
 * The metadata service, as the data plane sees it: placements with epochs, primary claims (a
 * repeated claim of an epoch moves the PG on), `pg-primary` leases, heartbeats, marking a silent
 * node down (new primary among in-sync replicas, epoch + 1, a replacement), re-replication of
 * short groups, out-of-sync marks with floors and marking replicas in sync. It mirrors the rules
 * of metadata/state (planNodeDown, markPgReplicaOutOfSync/InSync, claimPgPrimary) in a few lines;
 * it is a stand-in, not the state machine.
 */
import type { PgPlacement, ReplicaInfo } from '../../dataplane/core/index.js';

export interface MetaPg {
  epoch: number;
  primary: string;
  replicas: string[];
  addedAt: Record<string, number>;
  inSync: Set<string>;
  floors: Map<string, number>;
  /** Who claimed each epoch (node@incarnation). */
  claims: Map<number, string>;
  leaseUntil: number;
}

export interface MetaTimings {
  leaseTtlMs: number;
  downAfterMs: number;
  /** A heartbeat younger than this counts as "up now" when a primary is chosen. */
  freshBeatMs: number;
}

export class Meta {
  readonly pgs: MetaPg[] = [];
  readonly lastBeat = new Map<string, number>();
  readonly down = new Set<string>();
  /** Nodes wiped while counted in sync somewhere: they may register only once marked down. */
  readonly waitingForDown = new Set<string>();

  constructor(readonly nodes: readonly ReplicaInfo[], pgCount: number, readonly replicasPerPg: number, readonly t: MetaTimings, pick: (n: number) => number) {
    for (let pg = 0; pg < pgCount; pg++) {
      const start = pick(nodes.length);
      const replicas = Array.from({ length: replicasPerPg }, (_, i) => (nodes[(start + i) % nodes.length] as ReplicaInfo).id);
      this.pgs.push({ epoch: 1, primary: replicas[0] as string, replicas, addedAt: {}, inSync: new Set(replicas), floors: new Map(), claims: new Map(), leaseUntil: 0 });
    }
    for (const n of nodes) this.lastBeat.set(n.id, 0);
  }

  placement(pg: number): PgPlacement {
    const g = this.pgs[pg] as MetaPg;
    return { epoch: g.epoch, primary: g.primary, replicas: g.replicas.map((id) => this.info(id)), addedAt: { ...g.addedAt } };
  }

  private info(id: string): ReplicaInfo {
    return this.nodes.find((n) => n.id === id) as ReplicaInfo;
  }

  /** A heartbeat with each PG's applied seq and epoch as the node reports them. */
  heartbeat(node: string, now: number, reports: Map<number, { epoch: number; applied: number }>): void {
    if (this.waitingForDown.has(node) && !this.down.has(node)) return;
    // A wiped node registers empty: it holds nothing it was counted in sync for (simulator seed 82:
    // a wiped primary, left in place because no in-sync replica was up, came back and served empty).
    if (this.waitingForDown.delete(node)) for (const g of this.pgs) g.inSync.delete(node);
    this.lastBeat.set(node, now);
    this.down.delete(node);
    this.pgs.forEach((g, pg) => {
      // Caught up means caught up with a primary that is in sync itself (never with an empty one).
      if (!g.replicas.includes(node) || g.inSync.has(node) || g.primary === node || !g.inSync.has(g.primary)) return;
      const mine = reports.get(pg);
      // The primary's report must be at the current epoch too (simulator seed 103: a replacement
      // was counted in sync against the primary's report from before it was added, holding nothing).
      const primary = this.primaryReport.get(pg);
      if (mine === undefined || mine.epoch !== g.epoch || primary === undefined || primary.epoch !== g.epoch) return;
      if (mine.applied >= (g.floors.get(node) ?? 0) && mine.applied >= primary.applied) g.inSync.add(node);
    });
    this.pgs.forEach((g, pg) => {
      const mine = reports.get(pg);
      if (g.primary === node && mine !== undefined) this.primaryReport.set(pg, mine);
    });
  }

  private readonly primaryReport = new Map<number, { epoch: number; applied: number }>();

  /** Grant (or renew) the lease of the PG's primary at its epoch; returns whether it was granted. */
  lease(node: string, pg: number, epoch: number, now: number): boolean {
    const g = this.pgs[pg] as MetaPg;
    if (g.primary !== node || g.epoch !== epoch || this.down.has(node)) return false;
    g.leaseUntil = now + this.t.leaseTtlMs;
    return true;
  }

  /** The first claim of an epoch keeps it; a claim by another incarnation moves the PG to epoch + 1. */
  claim(node: string, incarnation: number, pg: number, epoch: number): 'granted' | 'moved' | 'ignored' {
    const g = this.pgs[pg] as MetaPg;
    if (g.primary !== node || g.epoch !== epoch) return 'ignored';
    const who = `${node}@${incarnation}`;
    const held = g.claims.get(epoch);
    if (held === undefined) { g.claims.set(epoch, who); return 'granted'; }
    if (held === who) return 'granted';
    g.epoch++;
    g.claims.set(g.epoch, who);
    return 'moved';
  }

  outOfSync(from: string, pg: number, epoch: number, replica: string, floor: number): boolean {
    const g = this.pgs[pg] as MetaPg;
    if (g.primary !== from || g.epoch !== epoch) return false;
    g.inSync.delete(replica);
    g.floors.set(replica, Math.max(g.floors.get(replica) ?? 0, floor));
    return true;
  }

  /** The controller: mark silent nodes down (failover, replacement) and refill short groups. */
  control(now: number, up: (id: string) => boolean): string[] {
    const changed: string[] = [];
    for (const n of this.nodes) {
      if (this.down.has(n.id) || now - (this.lastBeat.get(n.id) ?? 0) <= this.t.downAfterMs) continue;
      const blocked = this.pgs.some((g) => g.primary === n.id && g.leaseUntil > now);
      if (blocked) continue;
      this.down.add(n.id);
      changed.push(n.id);
      this.pgs.forEach((g) => this.nodeDown(g, n.id, (id) => now - (this.lastBeat.get(id) ?? 0) <= this.t.freshBeatMs));
    }
    for (const g of this.pgs) this.promoteFromEmpty(g, (id) => now - (this.lastBeat.get(id) ?? 0) <= this.t.freshBeatMs);
    for (const g of this.pgs) this.refill(g, up);
    return changed;
  }

  /**
   * Only a replica that heartbeats now may be promoted: one merely not marked down yet may have
   * been wiped (simulator seed 107: the wiped node, still counted in sync and up, was promoted
   * when the only other holder was marked down first, and served an empty copy).
   */
  /** Node replacement: the operator tells the service the node's storage is gone; it is down at once. */
  replaced(id: string, now: number): void {
    this.down.add(id);
    this.waitingForDown.delete(id);
    for (const g of this.pgs) g.inSync.delete(id);
    this.pgs.forEach((g) => this.nodeDown(g, id, (r) => now - (this.lastBeat.get(r) ?? 0) <= this.t.freshBeatMs));
  }

  private nodeDown(g: MetaPg, id: string, fresh: (id: string) => boolean): void {
    if (!g.replicas.includes(id)) return;
    if (g.primary === id || this.down.has(g.primary) || !g.inSync.has(g.primary)) {
      const next = this.candidate(g, id, fresh);
      if (next === undefined) return; // no in-sync replica up: the PG waits, the down node stays in it
      g.primary = next;
    }
    g.replicas = g.replicas.filter((r) => r !== id);
    g.inSync.delete(id);
    g.epoch++;
  }

  private candidate(g: MetaPg, except: string, fresh: (id: string) => boolean): string | undefined {
    return g.replicas.find((r) => r !== except && g.inSync.has(r) && !this.down.has(r) && fresh(r));
  }

  /** A PG whose primary is up but holds nothing in sync (it was wiped) moves to an in-sync replica. */
  private promoteFromEmpty(g: MetaPg, fresh: (id: string) => boolean): void {
    if (this.down.has(g.primary) || g.inSync.has(g.primary)) return;
    const next = this.candidate(g, g.primary, fresh);
    if (next === undefined) return;
    g.primary = next;
    g.epoch++;
  }

  private refill(g: MetaPg, up: (id: string) => boolean): void {
    if (g.replicas.length >= this.replicasPerPg || this.down.has(g.primary) || !g.inSync.has(g.primary)) return;
    const spare = this.nodes.find((n) => !g.replicas.includes(n.id) && !this.down.has(n.id) && !this.waitingForDown.has(n.id) && up(n.id));
    if (spare === undefined) return;
    g.epoch++;
    g.replicas = [...g.replicas, spare.id];
    g.addedAt[spare.id] = g.epoch;
    g.floors.set(spare.id, 0);
  }
}
