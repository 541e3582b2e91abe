/**
 * The crash model of the in-memory stores: a "disk" holding a durable state and the commits
 * issued since, not yet synced. An fsync (`syncThrough`) makes a prefix of them durable, in
 * issue order, as a log's fsync does; a power loss (`loseUnsynced`) drops the rest; a process
 * exit keeps them (they are in the page cache). `MemoryBlockStore` (memory-store.ts) keeps its
 * data on one, and so does the data-plane simulator's per-PG store (test/sim-dataplane/store.ts):
 * the model the conformance suite checks is the model the simulator crashes.
 */

/** How to build, copy and change the state a disk holds. */
export interface DiskModel<S, C> {
  empty(): S;
  clone(s: S): S;
  /** Applies one commit in place (deterministic: the same commit on the same state gives the same state). */
  apply(s: S, c: C): void;
}

export class MemoryDisk<S, C> {
  private durableState: S;
  private unsynced: { id: number; commit: C }[] = [];
  private nextId = 1;

  constructor(private readonly model: DiskModel<S, C>) {
    this.durableState = model.empty();
  }

  /** What a power loss now would leave (do not change it: `durableCopy` for a copy). */
  get durable(): S {
    return this.durableState;
  }

  durableCopy(): S {
    return this.model.clone(this.durableState);
  }

  /** Records an issued commit; returns its id for `syncThrough`. */
  record(commit: C): number {
    const id = this.nextId++;
    this.unsynced.push({ id, commit });
    return id;
  }

  /** An fsync that covers commit `id` finished: it and every commit before it are durable. */
  syncThrough(id: number = Number.POSITIVE_INFINITY): void {
    let n = 0;
    for (const u of this.unsynced) {
      if (u.id > id) break;
      this.model.apply(this.durableState, u.commit);
      n++;
    }
    this.unsynced.splice(0, n);
  }

  /** Power loss: what was not synced is gone. */
  loseUnsynced(): void {
    this.unsynced = [];
  }

  /** What a restarted process sees after a clean exit: the durable state and every commit since. */
  recovered(): S {
    const s = this.model.clone(this.durableState);
    for (const u of this.unsynced) this.model.apply(s, u.commit);
    return s;
  }

  /** Everything gone (a wiped or dropped store). */
  reset(): void {
    this.durableState = this.model.empty();
    this.unsynced = [];
  }
}
