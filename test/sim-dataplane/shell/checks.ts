/**
 * The shell simulator's properties, read from the real stores (`MemoryBlockStore`'s disk: the
 * running view of a live node, the synced state of a crashed one) and the clients' answers. The
 * same properties as ../checks.ts, in the store's terms instead of the core's:
 * `one-primary-per-epoch`, `acked-writes-survive` (durable or stronger), `replicas-agree`
 * (same seq: same block and kind; same block at the same seq: same body; checked on every disk
 * when a client hears its acknowledgement, too), `linearizable-reads`
 * (`replicated` or stronger), `trim-behind-replicas` and `converges-after-healing`.
 */
import type { WriteConcern } from '../../../proto/metadata-types.js';
import { versionAfter } from '../../../dataplane/core/index.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { blockKey } from '../../../dataplane/store/keys.js';
import type { BlockStoreDisk } from '../../../dataplane/store/memory-store.js';
import { pgId } from '../../../dataplane/store/stage.js';
import { SimFailure } from '../checks.js';
import type { WriteRecord } from './clients.js';
import { blocksPerVolume, volumeId, type ShellNode, type ShellWorld } from './world.js';

type DiskState = ReturnType<BlockStoreDisk['recovered']>;
type PgRecord = NonNullable<ReturnType<DiskState['pgs']['get']>>;

const strength: Record<WriteConcern, number> = { acknowledged: 0, durable: 1, replicated: 2, distributed: 3 };

interface Acked { value: string; seq: number; epoch: number; concern: WriteConcern; at: number; sentAt: number }

export function keyOf(block: number): string {
  return blockKey({ volumeId, inode: 1, blockNo: block }).toString('latin1');
}

export class ShellChecker {
  private readonly written = new Map<string, WriteRecord>();
  /** When each value's write was sent, and when it was acknowledged (at any concern). */
  private readonly sentAt = new Map<string, number>();
  private readonly ackedAt = new Map<string, number>();
  /** Acknowledged writes per block, at durable or stronger. */
  private readonly acked = new Map<number, Acked[]>();
  private readonly ackers = new Map<string, string>();
  /** The primary's trim watermark per PG at the last check (a move is checked against the replicas). */
  private readonly trimmed = new Map<number, number>();

  constructor(private readonly w: ShellWorld) {}

  onWriteSent(r: WriteRecord): void {
    this.written.set(r.value, r);
    this.sentAt.set(r.value, this.w.clock.now());
  }

  /**
   * Whether `value`'s write was acknowledged before `a`'s was sent: it precedes `a` in real time,
   * so once `a` is acknowledged (`replicated` or stronger) no read may return it. By value, not by
   * the version a block is stored under: a handed-back block is stored at a new seq with its old
   * data, so only its value shows that it went back in time (`handBackWithoutCompare`).
   */
  private ackedBefore(value: string, a: Acked): boolean {
    const at = this.ackedAt.get(value);
    return at !== undefined && at < a.sentAt;
  }

  onAck(node: string, r: WriteRecord, epoch: number, seq: number): void {
    const key = `${r.pg}@${epoch}`;
    const was = this.ackers.get(key);
    if (was !== undefined && was !== node) throw this.fail('one-primary-per-epoch', `pg ${r.pg} epoch ${epoch}: ${was} and ${node} both acknowledged writes`);
    this.ackers.set(key, node);
    this.ackedAt.set(r.value, this.w.clock.now());
    if (strength[r.concern] < strength.durable) return;
    const acked: Acked = { value: r.value, seq, epoch, concern: r.concern, at: this.w.clock.now(), sentAt: this.sentAt.get(r.value) ?? 0 };
    const list = this.acked.get(r.block) ?? [];
    list.push(acked);
    this.acked.set(r.block, list);
    this.heldAtAck(r.block, acked);
  }

  /**
   * A direct rule check: when a client hears `durable`, the primary's disk holds the write (or a
   * newer version of its block); `replicated` and `distributed`, at least two nodes' disks
   * (`evaluateWriteConcern`: the primary and every replica counted synced it).
   */
  private heldAtAck(block: number, a: Acked): void {
    const need = strength[a.concern] >= strength.replicated ? 2 : 1;
    const key = keyOf(block);
    const holders = this.w.nodes.filter((n) => !versionAfter(a, n.disk.durable.blocks.get(key) ?? null)).map((n) => n.id);
    if (holders.length < need) throw this.fail('acked-writes-survive', `b${block}: ${a.value}@${a.epoch}/${a.seq} acknowledged ${a.concern} is on ${holders.length === 0 ? 'no' : holders.join(',')} disk, not ${need}`);
  }

  /** A failure seen inside a callback: recorded for the loop, and thrown. */
  private fail(property: string, message: string): SimFailure {
    const f = new SimFailure(property, message);
    this.w.failure ??= f;
    return f;
  }

  /** A read returns a value written to the block, never older than a `replicated`+ write acknowledged before it began. */
  onRead(node: string, block: number, pg: number, startedAt: number, got: { value: string; epoch: number; seq: number } | null): void {
    if (got !== null) {
      const w = this.written.get(got.value);
      if (w?.block !== block) throw this.fail('reads-see-writes', `read of b${block} at ${node} returned ${got.value}, never written there`);
    }
    for (const a of this.acked.get(block) ?? []) {
      if (strength[a.concern] < strength.replicated || a.at >= startedAt) continue;
      if (versionAfter(a, got)) {
        throw this.fail('linearizable-reads', `read of b${block} (pg ${pg}) at ${node} begun at ${startedAt} returned ${got === null ? 'nothing' : `${got.value}@${got.epoch}/${got.seq}`}, older than ${a.value}@${a.epoch}/${a.seq} acknowledged ${a.concern} at ${a.at}`);
      }
      if (got !== null && this.ackedBefore(got.value, a)) {
        throw this.fail('linearizable-reads', `read of b${block} (pg ${pg}) at ${node} begun at ${startedAt} returned ${got.value}@${got.epoch}/${got.seq}, acknowledged at ${this.ackedAt.get(got.value) ?? -1} before ${a.value} (acknowledged ${a.concern} at ${a.at}) was sent at ${a.sentAt}`);
      }
    }
  }

  /** What a node's store holds now: its running view, or its synced state once crashed. */
  view(n: ShellNode): DiskState {
    return n.alive ? n.disk.recovered() : n.disk.durable;
  }

  /** Whether the node's copy of the PG is a live replica (a member whose copy is not stale or being replaced). */
  private liveCopy(n: ShellNode, pg: number, st: DiskState): boolean {
    const g = this.w.meta.pgs[pg];
    if (g === undefined || !g.replicas.includes(n.id)) return false;
    const rec = st.pgs.get(pgId(volumeId, pg));
    if (rec === undefined || rec.epoch < (g.addedAt[n.id] ?? 0)) return false;
    return !n.alive || !n.rep.isRejoining(volumeId, pg);
  }

  /** Every check of a step. */
  step(): void {
    const views = new Map(this.w.nodes.map((n) => [n.id, this.view(n)]));
    this.nothingLost();
    for (let pg = 0; pg < this.w.pgCount; pg++) {
      this.agree(pg, views);
      this.trimBehind(pg, views);
    }
  }

  /** Acknowledged at durable or stronger: some node's synced state holds the block at that write or a newer one. */
  private nothingLost(): void {
    for (const [block, list] of this.acked) {
      const newest = newestOf(list);
      const key = keyOf(block);
      const holds = this.w.nodes.some((n) => !versionAfter(newest, n.disk.durable.blocks.get(key) ?? null));
      if (!holds) throw this.fail('acked-writes-survive', `b${block}: ${newest.value}@${newest.epoch}/${newest.seq} acknowledged ${newest.concern} at ${newest.at} is held durably by no node`);
    }
  }

  /** Live copies of a PG never hold different entries at one seq, nor different bodies of one block at one seq. */
  private agree(pg: number, views: Map<string, DiskState>): void {
    const live = this.w.nodes.filter((n) => this.liveCopy(n, pg, views.get(n.id) as DiskState));
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) this.agreePair(pg, live[i] as ShellNode, live[j] as ShellNode, views);
    }
  }

  private agreePair(pg: number, a: ShellNode, b: ShellNode, views: Map<string, DiskState>): void {
    const va = views.get(a.id) as DiskState;
    const vb = views.get(b.id) as DiskState;
    const ja = (va.pgs.get(pgId(volumeId, pg)) as PgRecord).journal;
    const jb = (vb.pgs.get(pgId(volumeId, pg)) as PgRecord).journal;
    for (const [seq, ea] of ja) {
      const eb = jb.get(seq);
      if (eb === undefined || ea.kind === 'noop' || eb.kind === 'noop') continue;
      if (ea.key !== eb.key || ea.kind !== eb.kind) throw this.fail('replicas-agree', `pg ${pg} seq ${seq}: ${a.id} journals ${ea.kind} of ${blockName(ea.key)}, ${b.id} ${eb.kind} of ${blockName(eb.key)}`);
    }
    for (let block = 0; block < blocksPerVolume; block++) {
      const key = keyOf(block);
      const ba = va.blocks.get(key);
      const bb = vb.blocks.get(key);
      if (ba === undefined || bb === undefined || ba.pg !== pg || ba.seq !== bb.seq) continue;
      const same = ba.epoch === bb.epoch && (ba.data === null ? bb.data === null : bb.data !== null && ba.data.equals(bb.data));
      if (!same) throw this.fail('replicas-agree', `pg ${pg} b${block} seq ${ba.seq}: ${a.id} holds ${show(ba)}, ${b.id} ${show(bb)}`);
    }
  }

  /**
   * A direct rule check: when the primary's journal trim moves, every other in-sync member holds
   * what it trimmed (its running view; its disk once crashed). Not "durably": a catch-up that
   * fetched nothing syncs nothing, so the watermark it reports may count unsynced forwards of
   * `acknowledged`/`durable` writes — the known slack of server/README.md, which costs a full
   * resync after a crash, never data (seeds 71, 153, 179, 194 of the durable check). Trimming
   * early costs full resyncs but loses nothing a property could see from its effects.
   */
  private trimBehind(pg: number, views: Map<string, DiskState>): void {
    const g = this.w.meta.pgs[pg];
    if (g === undefined) return;
    const p = this.w.node(g.primary);
    const t = views.get(p.id)?.pgs.get(pgId(volumeId, pg))?.trimmedSeq ?? 0;
    const was = this.trimmed.get(pg) ?? 0;
    this.trimmed.set(pg, t);
    if (t <= was || !p.alive) return;
    this.w.stats.trims++;
    for (const id of g.replicas) {
      if (id === p.id || !g.inSync.has(id)) continue;
      const applied = views.get(id)?.pgs.get(pgId(volumeId, pg))?.appliedSeq ?? 0;
      if (applied < t) throw this.fail('trim-behind-replicas', `${p.id} trimmed pg ${pg} to ${t}; in-sync ${id} holds only ${applied}`);
    }
  }

  /**
   * Null once every PG has its replicas, all in sync, up, with one watermark and the same blocks,
   * and no other node holds a copy of it (departed copies handed back and dropped); else why not.
   */
  notConverged(): string | null {
    for (let pg = 0; pg < this.w.pgCount; pg++) {
      const g = this.w.meta.pgs[pg];
      if (g === undefined) return `no pg ${pg}`;
      if (g.replicas.length < 3) return `pg ${pg} has ${g.replicas.length} replicas`;
      const out = g.replicas.filter((r) => !g.inSync.has(r) || !this.w.node(r).alive || this.w.node(r).rep.isRejoining(volumeId, pg));
      if (out.length > 0) return `pg ${pg}: ${out.join(',')} not in sync`;
      // A departed copy is handed back to the primary, then dropped: until then it may hold the newest durable write.
      const departed = this.w.nodes.filter((n) => !g.replicas.includes(n.id) && holdsCopy(n.disk.recovered().pgs.get(pgId(volumeId, pg))));
      if (departed.length > 0) return `pg ${pg}: ${departed.map((n) => n.id).join(',')} still hold a departed copy`;
      const views = g.replicas.map((r) => ({ id: r, v: this.w.node(r).disk.recovered() }));
      const first = views[0];
      if (first === undefined) return `pg ${pg} has no replicas`;
      for (const { id, v } of views.slice(1)) {
        const why = differs(pg, first.v, v);
        if (why !== null) return `pg ${pg}: ${first.id} and ${id} differ: ${why}`;
      }
    }
    return null;
  }

  /** At the end: every block reads, at its primary's store, at least the newest write acknowledged durable or stronger. */
  finalReads(): void {
    for (const [block, list] of this.acked) {
      const newest = newestOf(list);
      const g = this.w.meta.pgs[pgOf(1, block, this.w.pgCount)];
      if (g === undefined) continue;
      const held = this.w.node(g.primary).disk.recovered().blocks.get(keyOf(block));
      if (versionAfter(newest, held ?? null)) throw this.fail('acked-writes-survive', `after healing b${block} at primary ${g.primary} is at ${held === undefined ? 'nothing' : show(held)}, older than ${newest.value}@${newest.epoch}/${newest.seq} acknowledged ${newest.concern}`);
    }
  }
}

/** The newest of a block's acknowledged writes by version (epoch, then seq: a new primary may start below a deposed one's seqs). */
function newestOf(list: readonly Acked[]): Acked {
  return list.reduce((a, b) => (versionAfter(b, a) ? b : a));
}

/**
 * Whether a PG record holds a copy, as the store's `listPgs` counts it: an empty record (a
 * deposed primary's late journal trim after the drop makes one, seed 4260) holds nothing.
 */
function holdsCopy(rec: PgRecord | undefined): boolean {
  return rec !== undefined && (rec.appliedSeq > 0 || rec.highestSeq > 0 || rec.epoch > 0 || rec.trimmedSeq > 0 || rec.above.size > 0);
}

function differs(pg: number, a: DiskState, b: DiskState): string | null {
  const pa = a.pgs.get(pgId(volumeId, pg));
  const pb = b.pgs.get(pgId(volumeId, pg));
  if ((pa?.appliedSeq ?? 0) !== (pb?.appliedSeq ?? 0)) return `watermarks ${pa?.appliedSeq ?? 0} and ${pb?.appliedSeq ?? 0}`;
  for (let block = 0; block < blocksPerVolume; block++) {
    const x = a.blocks.get(keyOf(block));
    const y = b.blocks.get(keyOf(block));
    if (x?.pg !== pg && y?.pg !== pg) continue;
    if (x?.seq !== y?.seq || x?.data?.toString() !== y?.data?.toString()) return `b${block}: ${x === undefined ? 'none' : show(x)} and ${y === undefined ? 'none' : show(y)}`;
  }
  return null;
}

function show(b: { seq: number; epoch: number; data: Buffer | null }): string {
  return `${b.data === null ? 'tombstone' : b.data.toString()}@${b.epoch}/${b.seq}`;
}

function blockName(key: string): string {
  for (let block = 0; block < blocksPerVolume; block++) if (keyOf(block) === key) return `b${block}`;
  return 'another volume\'s block';
}
