/**
 * The properties the simulator checks after every event. A violation throws `SimFailure` naming
 * the property; the run stops there and prints the seed's replay command.
 */
import { versionAfter, type Entry, type PgAction, type WriteConcern } from '../../dataplane/core/index.js';
import { appliedOf, coveredCut, visibleAt, type View } from './store.js';
import type { Req, SimNode, World } from './world.js';

export class SimFailure extends Error {
  constructor(readonly property: string, message: string) {
    super(`${property}: ${message}`);
  }
}

interface Version { epoch: number; seq: number }
interface Origin extends Version { pg: number; block: number }
interface Acked extends Version { value: string; concern: WriteConcern; wipesAtAck: number; receivedAt: number }

const zero: Version = { epoch: 0, seq: 0 };
const strength: Record<WriteConcern, number> = { acknowledged: 0, durable: 1, replicated: 2, distributed: 3 };
/** Nodes that must all be wiped before a write acknowledged at this concern may be gone. */
function holdersRequired(concern: WriteConcern, replicas: number): number {
  return concern === 'durable' ? 1 : concern === 'replicated' ? 2 : replicas;
}

export class Checker {
  /** Every value's first (original) version: a handed-back copy keeps its value, not its version. */
  private readonly origin = new Map<string, Origin>();
  private readonly acked = new Map<string, Acked[]>();
  private readonly ackers = new Map<string, string>();
  private readonly ackByReq = new Map<number, Acked>();
  private wipes = 0;
  private events = 0;

  constructor(private readonly w: World) {}

  /** Whether this node's copy of the PG is a live replica (a member whose copy is not stale or being handed back). */
  liveCopy(n: SimNode, pg: number): boolean {
    const g = this.w.meta.pgs[pg];
    if (g === undefined || !g.replicas.includes(n.id)) return false;
    const store = n.stores[pg];
    if (store === undefined || store.epoch < (g.addedAt[n.id] ?? 0)) return false;
    const core = n.cores[pg];
    return !n.alive || core === undefined || (core.r.handBack === null && !core.r.rejoining);
  }

  private view(n: SimNode, pg: number): View | undefined {
    const s = n.stores[pg];
    return s === undefined ? undefined : (n.alive ? s.volatile : s.durable);
  }

  onEntry(node: string, pg: number, e: Entry): void {
    if (e.value !== null && !this.origin.has(e.value)) this.origin.set(e.value, { pg, block: e.block, epoch: e.epoch, seq: e.seq });
    const self = this.w.node(node);
    if (!this.liveCopy(self, pg)) return;
    for (const n of this.w.nodes) {
      if (n.id === node || !this.liveCopy(n, pg)) continue;
      const other = this.view(n, pg)?.journal.get(e.seq);
      if (other !== undefined && !sameEntry(other, e)) {
        throw new SimFailure('replicas-agree', `pg ${pg} seq ${e.seq}: ${node} stores ${show(e)}, ${n.id} holds ${show(other)}`);
      }
    }
  }

  afterStep(n: SimNode, pg: number): void {
    const core = n.cores[pg];
    const store = n.stores[pg];
    if (core === undefined || store === undefined) return;
    const applied = appliedOf(store.volatile);
    if (core.r.applied !== applied) throw new SimFailure('core-mirrors-store', `${n.id}/${pg}: core says applied ${core.r.applied}, store ${applied}`);
  }

  onAnswer(n: SimNode, pg: number, a: Extract<PgAction, { t: 'answer' }>): void {
    if (!a.ok) return;
    const key = `${pg}@${a.epoch}`;
    const was = this.ackers.get(key);
    if (was !== undefined && was !== n.id) throw new SimFailure('one-primary-per-epoch', `pg ${pg} epoch ${a.epoch}: ${was} and ${n.id} both acknowledged writes`);
    this.ackers.set(key, n.id);
    const r = this.w.reqs.get(a.req);
    if (r === undefined) return;
    const o = this.origin.get(r.value);
    if (o === undefined || o.seq !== a.seq || o.epoch !== a.epoch) throw new SimFailure('ack-matches-order', `write ${r.value} acknowledged at ${a.epoch}/${a.seq}, ordered at ${o === undefined ? 'nowhere' : `${o.epoch}/${o.seq}`}`);
    const acked: Acked = { epoch: a.epoch, seq: a.seq, value: r.value, concern: a.concern, wipesAtAck: this.wipes, receivedAt: Infinity };
    this.ackByReq.set(a.req, acked);
    if (strength[a.concern] >= strength.durable) {
      const list = this.acked.get(`${pg}/${r.block}`) ?? [];
      list.push(acked);
      this.acked.set(`${pg}/${r.block}`, list);
    }
  }

  onAckReceived(req: number): void {
    const a = this.ackByReq.get(req);
    if (a !== undefined) a.receivedAt = this.w.now;
  }

  onInvoke(_req: number, _r: Req): void { /* reads record their start in Req */ }

  onWipe(_id: string): void {
    this.wipes++;
  }

  onRestart(_n: SimNode): void { /* the loss check after this event covers what a restart keeps */ }

  /** Per block: a read returns a value written to it, never older than a `replicated`+ write acknowledged before the read began. */
  onRead(_req: number, r: Req, value: string | null): void {
    const got = value === null ? zero : this.origin.get(value);
    if (got === undefined || (value !== null && ((got as Origin).pg !== r.pg || (got as Origin).block !== r.block))) {
      throw new SimFailure('reads-see-writes', `read of ${r.pg}/${r.block} returned ${value}, never written there`);
    }
    for (const a of this.acked.get(`${r.pg}/${r.block}`) ?? []) {
      if (strength[a.concern] < strength.replicated || a.receivedAt >= r.startedAt) continue;
      if (versionAfter(a, got)) throw new SimFailure('linearizable-reads', `read of ${r.pg}/${r.block} from ${r.node} at ${r.startedAt} returned ${value ?? 'nothing'} (${got.epoch}/${got.seq}), older than ${a.value} (${a.epoch}/${a.seq}) acknowledged ${a.concern} at ${a.receivedAt}`);
    }
  }

  /** A direct rule check: the primary trims only what every live replica holds durably. */
  onTrim(n: SimNode, pg: number, upto: number): void {
    const core = n.cores[pg];
    if (core?.r.role !== 'primary') return;
    const group = (core.r.placement?.replicas ?? []).map((r) => r.id);
    for (const o of this.w.nodes) {
      if (o === n || o.wiped || !group.includes(o.id) || !this.liveCopy(o, pg)) continue;
      const d = o.stores[pg]?.durable;
      if (d !== undefined && appliedOf(d) < upto) throw new SimFailure('trim-behind-replicas', `${n.id} trimmed pg ${pg} to ${upto}; ${o.id} holds only ${appliedOf(d)} durably`);
    }
  }

  afterEvent(): void {
    this.events++;
    this.checkNothingLost();
    if (this.events % 32 === 0) this.checkAllAgree();
  }

  /** Acknowledged at durable or stronger: some node that was not wiped holds the block at that write or a newer one. */
  private checkNothingLost(): void {
    for (const [key, list] of this.acked) {
      const [pg, block] = key.split('/').map(Number) as [number, number];
      const replicas = this.w.meta.pgs[pg]?.replicas.length ?? 3;
      let target: Acked | null = null;
      for (const a of list) {
        if (this.wipes - a.wipesAtAck >= holdersRequired(a.concern, Math.max(replicas, 2))) continue;
        if (target === null || versionAfter(a, target)) target = a;
      }
      if (target === null) continue;
      const held = this.w.nodes.some((n) => {
        const v = n.stores[pg]?.durable.blocks.get(block);
        const o = v === undefined ? undefined : this.origin.get(v.value);
        return o !== undefined && !versionAfter(target, o);
      });
      if (!held) throw new SimFailure('acked-writes-survive', `${target.value} (${target.epoch}/${target.seq}, ${target.concern}) to ${pg}/${block} is held durably by no node`);
    }
  }

  checkAllAgree(): void {
    for (let pg = 0; pg < this.w.pgCount; pg++) {
      const seen = new Map<number, { node: string; e: Entry }>();
      for (const n of this.w.nodes) {
        if (!this.liveCopy(n, pg)) continue;
        for (const e of this.view(n, pg)?.journal.values() ?? []) {
          const s = seen.get(e.seq);
          if (s === undefined) seen.set(e.seq, { node: n.id, e });
          else if (!sameEntry(s.e, e)) throw new SimFailure('replicas-agree', `pg ${pg} seq ${e.seq}: ${s.node} holds ${show(s.e)}, ${n.id} holds ${show(e)}`);
        }
      }
      this.checkCutsAgree(pg);
    }
  }

  /**
   * Snapshot reads agree: at every cut two live copies have both applied in full (every write of
   * an epoch below it), each block reads the same from their live and kept versions. Kept sets
   * themselves may differ (a version no cut needs, kept on one copy only), reads at a cut may not.
   */
  private checkCutsAgree(pg: number): void {
    const copies = this.w.nodes.flatMap((n) => {
      const v = this.liveCopy(n, pg) ? this.view(n, pg) : undefined;
      return v === undefined ? [] : [{ id: n.id, v, covered: coveredCut(v) }];
    });
    const blocks = new Set(copies.flatMap((c) => [...c.v.blocks.keys(), ...[...c.v.kept.values()].map((k) => k.block)]));
    for (const [i, a] of copies.entries()) {
      for (const b of copies.slice(i + 1)) {
        for (let cut = 1; cut <= Math.min(a.covered, b.covered); cut++) {
          for (const block of blocks) {
            const x = visibleAt(a.v, block, cut);
            const y = visibleAt(b.v, block, cut);
            if (x?.value !== y?.value) {
              throw new SimFailure('replicas-agree', `pg ${pg} block ${block} at cut ${cut}: ${a.id} reads ${x === null ? 'nothing' : `${x.value}@${x.epoch}/${x.seq}`}, ${b.id} reads ${y === null ? 'nothing' : `${y.value}@${y.epoch}/${y.seq}`}`
                + ` (${a.id}: ${history(a.v, block)}; ${b.id}: ${history(b.v, block)})`);
            }
          }
        }
      }
    }
  }

  /** Why the cluster is not converged yet (null when it is): every PG whole, in sync, served, identical. */
  notConverged(): string | null {
    for (let pg = 0; pg < this.w.pgCount; pg++) {
      const g = this.w.meta.pgs[pg];
      if (g === undefined) return `pg ${pg} unknown`;
      if (g.replicas.length < this.w.meta.replicasPerPg) return `pg ${pg} has ${g.replicas.length} replicas`;
      if (g.replicas.some((r) => !g.inSync.has(r))) return `pg ${pg}: not all replicas in sync`;
      const p = this.w.node(g.primary);
      const pc = p.cores[pg];
      if (!p.alive || pc === undefined || pc.r.phase !== 'active' || !pc.r.lease || pc.r.placement?.epoch !== g.epoch) return `pg ${pg}: primary ${g.primary} not serving`;
      const want = p.stores[pg]?.volatile;
      if (want === undefined) return 'no store';
      for (const id of g.replicas) {
        const v = this.w.node(id).stores[pg]?.volatile;
        if (v === undefined || appliedOf(v) !== appliedOf(want) || v.journal.size > appliedOf(v) - v.trimmedTo) return `pg ${pg}: ${id} at ${v === undefined ? '-' : appliedOf(v)}, primary at ${appliedOf(want)}`;
        for (const [b, bv] of want.blocks) if (v.blocks.get(b)?.value !== bv.value) return `pg ${pg}: ${id} block ${b} differs`;
      }
    }
    return null;
  }
}

/**
 * One seq, one write: the same epoch and block, and the same body where both hold one. A put
 * superseded before it landed (or served by catch-up after it was superseded, not kept) is a
 * noop on that copy, as in LevelBlockStore; what it would have read is covered by the cut check.
 */
function sameEntry(a: Entry, b: Entry): boolean {
  return a.seq === b.seq && a.epoch === b.epoch && a.block === b.block && (a.value === b.value || a.value === null || b.value === null);
}

/** A block's entries on one copy, for a failure message: journal (seq:value@epoch), live, kept. */
function history(v: View, block: number): string {
  const j = [...v.journal.values()].filter((e) => e.block === block).sort((x, y) => x.seq - y.seq).map((e) => `${e.seq}:${e.value ?? 'noop'}@${e.epoch}`);
  const l = v.blocks.get(block);
  const k = [...v.kept.values()].filter((x) => x.block === block).sort((x, y) => x.seq - y.seq).map((x) => `${x.seq}:${x.value}@${x.epoch}`);
  return `trimmed to ${v.trimmedTo}, applied ${appliedOf(v)}, journal [${j.join(' ')}], live ${l === undefined ? '-' : `${l.seq}:${l.value}@${l.epoch}`}, kept [${k.join(' ')}]`;
}

function show(e: Entry): string {
  return `${e.value ?? 'noop'}@${e.epoch}/${e.block}`;
}
