/**
 * The leader's view of one peer's log (etcd's tracker): how far it matches, what to send next,
 * and the flow-control window of App messages in flight.
 *
 *  - probe: one App at a time until the peer's position is known (after a rejection or election);
 *  - replicate: pipelined Apps, bounded by count and bytes in flight;
 *  - snapshot: a Snap is on its way; nothing else is sent until it is acknowledged or fails.
 */
import { invariant } from '../../../proto/errors.js';

export const ProgressState = { Probe: 'probe', Replicate: 'replicate', Snapshot: 'snapshot' } as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** A ring of (last index, bytes) per App in flight; freed as acknowledgements arrive. */
export class Inflights {
  private readonly lastIndexes: number[];
  private readonly sizes: number[];
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(private readonly maxCount: number, private readonly maxBytes: number) {
    invariant(maxCount >= 1, 'maxInflightMessages >= 1');
    this.lastIndexes = new Array<number>(maxCount).fill(0);
    this.sizes = new Array<number>(maxCount).fill(0);
  }

  full(): boolean {
    return this.count === this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  add(lastIndex: number, bytes: number): void {
    invariant(this.count < this.maxCount, 'no App is sent when the in-flight window is full');
    const slot = (this.start + this.count) % this.maxCount;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every App whose last entry is at or below `index`. */
  freeLE(index: number): void {
    while (this.count > 0 && (this.lastIndexes[this.start] as number) <= index) this.freeOne();
  }

  freeFirstOne(): void {
    if (this.count > 0) this.freeOne();
  }

  private freeOne(): void {
    this.bytes -= this.sizes[this.start] as number;
    this.start = (this.start + 1) % this.maxCount;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** probe state: an App is out; wait for its answer (or a heartbeat answer) before the next. */
  probeSent = false;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, isLearner: boolean, maxInflightMessages: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflightMessages, maxInflightBytes);
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = ProgressState.Probe;
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeSnapshot(index: number): void {
    this.state = ProgressState.Snapshot;
    this.pendingSnapshot = index;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** An acknowledgement that the peer holds our log up to `index`. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * A rejection of the App whose previous index was `rejected`; `matchHint` is the highest index
   * that may still match. Returns false for a stale rejection (already superseded).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe: return this.probeSent;
      case ProgressState.Replicate: return this.inflights.full();
      case ProgressState.Snapshot: return true;
    }
  }

  /** An App with `count` entries (last one at `lastIndex`, `bytes` of payload) was sent. */
  sentEntries(count: number, lastIndex: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }
}
