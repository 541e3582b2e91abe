/**
 * The simulator's block store for one PG on one node: a volatile view (what the running process
 * sees) and a durable view (what survives power loss). Writes land in the volatile view at once;
 * a synced write makes every write before it durable (a log's fsync), so a crash keeps exactly
 * the durable view. The epoch record and drops are synced on the spot, as the real store does.
 * The durable side is a `MemoryDisk` (dataplane/store/memory-disk.ts), the crash model of
 * `MemoryBlockStore` too, which the BlockStore conformance suite checks.
 */
import { versionAfter, type BlockVersion, type Entry, type JournalFill } from '../../dataplane/core/index.js';
import { keepArrivingOlder, keepOnOverwrite } from '../../dataplane/logic/snapshot-versions.js';
import { MemoryDisk } from '../../dataplane/store/memory-disk.js';

export interface View {
  journal: Map<number, Entry>;
  blocks: Map<number, BlockVersion>;
  /**
   * Older versions kept for snapshots, by seq: LevelBlockStore's rule (../../dataplane/logic/
   * snapshot-versions.ts) — an entry replaced by a write of a newer epoch, or arriving after one.
   */
  kept: Map<number, BlockVersion>;
  trimmedTo: number;
}

function emptyView(): View {
  return { journal: new Map(), blocks: new Map(), kept: new Map(), trimmedTo: 0 };
}

function cloneView(v: View): View {
  return { journal: new Map(v.journal), blocks: new Map(v.blocks), kept: new Map(v.kept), trimmedTo: v.trimmedTo };
}

/** Store bugs the simulator can put back (`--break`), next to the core's (`BreakName`). */
export const storeBreakNames = ['journalKeptArrivalAsNoop', 'resyncSkipsOlderBlock'] as const;
export type StoreBreakName = typeof storeBreakNames[number];

/** A full copy as the real resync ships it: live blocks and the versions kept of them. */
type FullCopy = NonNullable<JournalFill['full']> & { kept?: BlockVersion[] };

export type StoreOp =
  | { kind: 'write'; entries: Entry[]; full: JournalFill['full']; breaks?: ReadonlySet<StoreBreakName> }
  | { kind: 'trim'; upto: number };

/** Called for every entry a view takes, so the world can compare replicas seq by seq. */
export type EntryObserver = (e: Entry) => void;

export function applyOp(v: View, op: StoreOp, observe?: EntryObserver): void {
  if (op.kind === 'trim') {
    const upto = Math.min(op.upto, appliedOf(v));
    for (const s of [...v.journal.keys()]) if (s <= upto) v.journal.delete(s);
    v.trimmedTo = Math.max(v.trimmedTo, upto);
    return;
  }
  if (op.full !== null) {
    for (const b of op.full.blocks) landResyncBlock(v, b, op.breaks?.has('resyncSkipsOlderBlock') === true);
    for (const k of (op.full as FullCopy).kept ?? []) v.kept.set(k.seq, k);
    v.trimmedTo = Math.max(v.trimmedTo, op.full.applied);
    for (const s of [...v.journal.keys()]) if (s <= v.trimmedTo) v.journal.delete(s);
  }
  for (const e of op.entries) {
    if (e.seq <= v.trimmedTo || v.journal.has(e.seq)) continue;
    const stored = landEntry(v, e, op.breaks?.has('journalKeptArrivalAsNoop') === true);
    v.journal.set(e.seq, stored);
    observe?.(stored);
  }
}

/**
 * One entry landing, as LevelBlockStore.stageOps does it: a newer write replaces the block (the
 * replaced one kept when an epoch boundary lies between); an older one arriving late is kept when
 * an epoch boundary lies between, else it is superseded and journaled as a noop. Returns the
 * journal entry. `keptArrivalAsNoop`: the bug of chaos seed 27654 (a kept late arrival journaled
 * as a noop, so catch-up from this copy never ships it).
 */
function landEntry(v: View, e: Entry, keptArrivalAsNoop: boolean): Entry {
  if (e.value === null) return e;
  const cur = v.blocks.get(e.block) ?? null;
  const b: BlockVersion = e.origin === undefined
    ? { block: e.block, value: e.value, epoch: e.epoch, seq: e.seq }
    : { block: e.block, value: e.value, epoch: e.epoch, seq: e.seq, origin: e.origin };
  if (cur === null || versionAfter(e, cur)) {
    if (cur !== null && keepOnOverwrite(cur, e)) v.kept.set(cur.seq, cur);
    v.blocks.set(e.block, b);
    return e;
  }
  if (cur.seq === e.seq) return e;
  if (keepArrivingOlder(cur, e)) {
    v.kept.set(e.seq, b);
    return keptArrivalAsNoop ? superseded(e) : e;
  }
  return superseded(e);
}

/**
 * A live block of a full resync, as LevelBlockStore.stageRepair stores it: it replaces an older
 * entry; older than the entry here (a forward above the watermark landed first), it is kept as a
 * version when an epoch boundary lies between. `skipOlder`: the bug of the first 500 seeds of
 * this model (the older block dropped, so the rebuilt copy read newer data at the cut between).
 */
function landResyncBlock(v: View, b: BlockVersion, skipOlder: boolean): void {
  const cur = v.blocks.get(b.block) ?? null;
  if (cur === null || versionAfter(b, cur)) v.blocks.set(b.block, b);
  else if (!skipOlder && keepArrivingOlder(cur, b)) v.kept.set(b.seq, b);
}

function superseded(e: Entry): Entry {
  return { seq: e.seq, epoch: e.epoch, block: e.block, value: null };
}

/** A journal entry as catch-up serves it (LevelBlockStore.journalEntry): a put neither live nor kept goes out as a noop. */
function served(v: View, e: Entry): Entry {
  if (e.value === null || v.blocks.get(e.block)?.seq === e.seq || v.kept.has(e.seq)) return e;
  return superseded(e);
}

/** What a read at cut `c` (every write of an epoch below it) sees of `block`: its newest such entry, live or kept. */
export function visibleAt(v: View, block: number, c: number): BlockVersion | null {
  let best: BlockVersion | null = null;
  const consider = (x: BlockVersion | undefined): void => { if (x !== undefined && x.block === block && x.epoch < c && (best === null || versionAfter(x, best))) best = x; };
  consider(v.blocks.get(block));
  for (const k of v.kept.values()) consider(k);
  return best;
}

/** The highest cut this view has applied every write below: the epoch of the entry at its watermark (0 when trimmed away). */
export function coveredCut(v: View): number {
  return v.journal.get(appliedOf(v))?.epoch ?? 0;
}

export function appliedOf(v: View): number {
  let a = v.trimmedTo;
  while (v.journal.has(a + 1)) a++;
  return a;
}

/** The crash model shared with `MemoryBlockStore`: the views of one PG over a memory disk. */
const viewDisk = { empty: emptyView, clone: cloneView, apply: (v: View, op: StoreOp): void => { applyOp(v, op); } };

export class SimStore {
  volatile: View = emptyView();

  constructor(private readonly breaks: ReadonlySet<StoreBreakName> = new Set()) {}

  epoch = 0;
  /** The durable view and the ops not synced yet, oldest first (dataplane/store/memory-disk.ts). */
  private readonly disk = new MemoryDisk<View, StoreOp>(viewDisk);

  /** What survives power loss now. */
  get durable(): View {
    return this.disk.durable;
  }

  /** Returns the op's id: `sync(id)` makes it and everything before it durable. */
  write(op: StoreOp, observe: EntryObserver): number {
    const o: StoreOp = op.kind === 'write' && this.breaks.size > 0 ? { ...op, breaks: this.breaks } : op;
    applyOp(this.volatile, o, observe);
    return this.disk.record(o);
  }

  /** The fsync that covers op `id` finished: it and every op before it are durable. */
  sync(id: number): void {
    this.disk.syncThrough(id);
  }

  setEpoch(epoch: number): void {
    this.epoch = Math.max(this.epoch, epoch);
  }

  drop(): void {
    this.volatile = emptyView();
    this.disk.reset();
  }

  /** Power loss: the process restarts from the durable view. */
  crash(): void {
    this.disk.loseUnsynced();
    this.volatile = this.disk.durableCopy();
  }

  wipe(): void {
    this.drop();
    this.epoch = 0;
  }

  restore(): { epoch: number; applied: number; trimmedTo: number; held: number[] } {
    const applied = appliedOf(this.volatile);
    return { epoch: this.epoch, applied, trimmedTo: this.volatile.trimmedTo, held: [...this.volatile.journal.keys()].filter((s) => s > applied) };
  }

  fill(fromSeq: number): JournalFill {
    const v = this.volatile;
    const applied = appliedOf(v);
    if (fromSeq <= v.trimmedTo) {
      // The core passes `full` through by reference, so the kept versions travel with it as they do in a real resync.
      const full: FullCopy = { blocks: [...v.blocks.values()], applied, kept: [...v.kept.values()] };
      return { entries: sorted([...v.journal.values()].filter((e) => e.seq > applied).map((e) => served(v, e))), full };
    }
    return { entries: sorted([...v.journal.values()].filter((e) => e.seq >= fromSeq).map((e) => served(v, e))), full: null };
  }

  inventory(): BlockVersion[] {
    return [...this.volatile.blocks.values()].sort((a, b) => a.block - b.block);
  }
}

function sorted(entries: Entry[]): Entry[] {
  return entries.sort((a, b) => a.seq - b.seq);
}
