/**
 * The simulator's block store for one PG on one node: a volatile view (what the running process
 * sees) and a durable view (what survives power loss). Writes land in the volatile view at once;
 * a synced write makes every write before it durable (a log's fsync), so a crash keeps exactly
 * the durable view. The epoch record and drops are synced on the spot, as the real store does.
 * The durable side is a `MemoryDisk` (dataplane/store/memory-disk.ts), the crash model of
 * `MemoryBlockStore` too, which the BlockStore conformance suite checks.
 */
import { versionAfter, type BlockVersion, type Entry, type JournalFill } from '../../dataplane/core/index.js';
import { MemoryDisk } from '../../dataplane/store/memory-disk.js';

export interface View {
  journal: Map<number, Entry>;
  blocks: Map<number, BlockVersion>;
  trimmedTo: number;
}

function emptyView(): View {
  return { journal: new Map(), blocks: new Map(), trimmedTo: 0 };
}

function cloneView(v: View): View {
  return { journal: new Map(v.journal), blocks: new Map(v.blocks), trimmedTo: v.trimmedTo };
}

export type StoreOp = { kind: 'write'; entries: Entry[]; full: JournalFill['full'] } | { kind: 'trim'; upto: number };

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
    for (const b of op.full.blocks) if (versionAfter(b, v.blocks.get(b.block) ?? null)) v.blocks.set(b.block, b);
    v.trimmedTo = Math.max(v.trimmedTo, op.full.applied);
    for (const s of [...v.journal.keys()]) if (s <= v.trimmedTo) v.journal.delete(s);
  }
  for (const e of op.entries) {
    if (e.seq <= v.trimmedTo || v.journal.has(e.seq)) continue;
    v.journal.set(e.seq, e);
    observe?.(e);
    if (e.value !== null && versionAfter(e, v.blocks.get(e.block) ?? null)) {
      const b: BlockVersion = { block: e.block, value: e.value, epoch: e.epoch, seq: e.seq };
      v.blocks.set(e.block, e.origin === undefined ? b : { ...b, origin: e.origin });
    }
  }
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
  epoch = 0;
  /** The durable view and the ops not synced yet, oldest first (dataplane/store/memory-disk.ts). */
  private readonly disk = new MemoryDisk<View, StoreOp>(viewDisk);

  /** What survives power loss now. */
  get durable(): View {
    return this.disk.durable;
  }

  /** Returns the op's id: `sync(id)` makes it and everything before it durable. */
  write(op: StoreOp, observe: EntryObserver): number {
    applyOp(this.volatile, op, observe);
    return this.disk.record(op);
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
      return { entries: sorted([...v.journal.values()].filter((e) => e.seq > applied)), full: { blocks: [...v.blocks.values()], applied } };
    }
    return { entries: sorted([...v.journal.values()].filter((e) => e.seq >= fromSeq)), full: null };
  }

  inventory(): BlockVersion[] {
    return [...this.volatile.blocks.values()].sort((a, b) => a.block - b.block);
  }
}

function sorted(entries: Entry[]): Entry[] {
  return entries.sort((a, b) => a.seq - b.seq);
}
