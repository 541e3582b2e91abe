/**
 * The in-memory Raft log of one node: a snapshot point (index/term) followed by the entries
 * after it, plus the markers the Ready/advance cycle needs:
 *
 *   snapIndex  <=  applied  <=  committed  <=  lastIndex
 *   stableTo   — entries up to here are durable and still match this log
 *   unstableFrom — first index not yet handed to a Ready for persisting
 *
 * Entries are never mutated after they enter the log; they may be shared with messages.
 */
import { invariant } from '../../../proto/errors.js';
import type { Entry } from './types.js';

/** Largest term or index the core accepts: beyond it plain numbers lose integer precision. */
export const maxSafeIndex = Number.MAX_SAFE_INTEGER;

export function entryBytes(e: Entry): number {
  return e.data.byteLength;
}

export class RaftLog {
  snapIndex: number;
  snapTerm: number;
  /** entries[k].index === snapIndex + 1 + k */
  entries: Entry[];
  committed: number;
  /** Highest index the application has applied (reported through advance()). */
  applied: number;
  /** Highest index handed to the application in a Ready (applied or about to be). */
  applying: number;
  /** First index not yet handed to a Ready for persisting. */
  unstableFrom: number;
  /** Entries up to this index are durable (synced) and still the entries of this log. */
  stableTo: number;
  /** Upper bound on what the outstanding Ready may make stable; lowered by truncations. */
  private inFlightTo: number;

  constructor(snapIndex: number, snapTerm: number, entries: Entry[], committed: number, applied: number) {
    invariant(snapIndex >= 0 && snapTerm >= 0, 'snapshot index/term are non-negative');
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      invariant(e !== undefined && e.index === snapIndex + 1 + k, `recovered entries are contiguous after the snapshot (at ${snapIndex + 1 + k})`);
      const prevTerm = k === 0 ? snapTerm : (entries[k - 1]?.term ?? 0);
      invariant(e.term >= prevTerm, `recovered entry terms never decrease (at ${e.index})`);
    }
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.entries = entries.slice();
    const last = this.lastIndex();
    this.committed = Math.max(committed, snapIndex);
    invariant(this.committed <= last, `recovered commit ${this.committed} <= last index ${last}`);
    invariant(applied >= snapIndex && applied <= this.committed, `recovered applied ${applied} within [snapshot ${snapIndex}, commit ${this.committed}]`);
    this.applied = applied;
    this.applying = applied;
    this.unstableFrom = last + 1;
    this.stableTo = last;
    this.inFlightTo = last;
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }

  lastTerm(): number {
    const n = this.entries.length;
    return n === 0 ? this.snapTerm : (this.entries[n - 1] as Entry).term;
  }

  /** Term at `index`, or undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex) return undefined;
    return this.entries[index - this.snapIndex - 1]?.term;
  }

  entryAt(index: number): Entry | undefined {
    return index <= this.snapIndex ? undefined : this.entries[index - this.snapIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Largest index <= `index` whose term is <= `term` (etcd's fast back-off): every entry above
   * it has a larger term and cannot match a log whose entry at `index` has term `term`.
   */
  findConflictByTerm(index: number, term: number): number {
    if (index > this.lastIndex()) return index;
    let i = index;
    while (i > this.snapIndex) {
      const t = this.term(i) as number;
      if (t <= term) return i;
      i--;
    }
    return this.snapIndex;
  }

  /**
   * Follower side of AppendEntries, after the caller checked matchTerm(prevIndex, prevTerm).
   * Skips entries already present, truncates at the first conflict, appends the rest.
   * Returns the index of the last entry the leader sent.
   */
  appendAfter(prevIndex: number, ents: readonly Entry[]): number {
    const lastNew = prevIndex + ents.length;
    let k = 0;
    for (; k < ents.length; k++) {
      const e = ents[k] as Entry;
      invariant(e.index === prevIndex + 1 + k, 'entries in one append are contiguous');
      if (e.index <= this.snapIndex) continue;
      const mine = this.term(e.index);
      if (mine === undefined) break;
      if (mine !== e.term) {
        invariant(e.index > this.committed, `a conflicting append never truncates committed entry ${e.index} (commit ${this.committed})`);
        this.truncateFrom(e.index);
        break;
      }
    }
    for (; k < ents.length; k++) this.pushEntry(ents[k] as Entry);
    return lastNew;
  }

  /** Leader side: append new entries at the end. */
  appendLocal(e: Entry): void {
    this.pushEntry(e);
  }

  private pushEntry(e: Entry): void {
    invariant(e.index === this.lastIndex() + 1, `appended entry ${e.index} follows last index ${this.lastIndex()}`);
    invariant(e.term >= this.lastTerm(), `appended entry term ${e.term} >= last term ${this.lastTerm()}`);
    invariant(e.index <= maxSafeIndex && e.term <= maxSafeIndex, 'index and term stay below 2^53');
    this.entries.push(e);
  }

  private truncateFrom(index: number): void {
    invariant(index > this.committed && index > this.snapIndex, `truncation at ${index} above commit ${this.committed}`);
    this.entries.length = index - this.snapIndex - 1;
    if (this.unstableFrom > index) this.unstableFrom = index;
    if (this.stableTo >= index) this.stableTo = index - 1;
    if (this.inFlightTo >= index) this.inFlightTo = index - 1;
  }

  /** Entries in [lo, hi], at least one and at most `maxBytes` of payload (0 = no limit). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    invariant(lo > this.snapIndex && hi <= this.lastIndex(), `slice [${lo}, ${hi}] within the log`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      const e = this.entries[i - this.snapIndex - 1] as Entry;
      bytes += entryBytes(e);
      if (out.length > 0 && maxBytes > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    invariant(index <= this.lastIndex(), `commit ${index} <= last index ${this.lastIndex()}`);
    this.committed = index;
    return true;
  }

  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** Hands the not-yet-persisted suffix to a Ready. */
  takeUnstable(): Entry[] {
    const last = this.lastIndex();
    const from = this.unstableFrom;
    const out = from > last ? [] : this.entries.slice(from - this.snapIndex - 1);
    this.unstableFrom = last + 1;
    this.inFlightTo = last;
    return out;
  }

  /** The Ready that carried entries up to `index` (and/or a snapshot at it) is durable. */
  markStable(index: number): void {
    const upTo = Math.min(index, this.inFlightTo, this.lastIndex());
    if (upTo > this.stableTo) this.stableTo = upTo;
  }

  hasNextCommitted(): boolean {
    return this.committed > this.applying;
  }

  takeCommitted(maxBytes: number): Entry[] {
    if (this.committed <= this.applying) return [];
    const out = this.slice(this.applying + 1, this.committed, maxBytes);
    this.applying += out.length;
    return out;
  }

  appliedTo(index: number): void {
    invariant(index <= this.committed, `applied ${index} <= commit ${this.committed}`);
    if (index > this.applied) this.applied = index;
  }

  /** The application compacted the log up to `index` (a snapshot of its state there). */
  compact(index: number): void {
    invariant(index > this.snapIndex && index <= this.applied, `compaction point ${index} in (${this.snapIndex}, applied ${this.applied}]`);
    invariant(index <= this.stableTo && index < this.unstableFrom, `compaction point ${index} is durable`);
    const term = this.term(index) as number;
    this.entries = this.entries.slice(index - this.snapIndex);
    this.snapIndex = index;
    this.snapTerm = term;
  }

  /** Replaces the whole log with a received snapshot (not durable until its Ready is advanced). */
  restore(index: number, term: number): void {
    invariant(index > this.committed, `snapshot ${index} is ahead of commit ${this.committed}`);
    this.entries = [];
    this.snapIndex = index;
    this.snapTerm = term;
    this.committed = index;
    this.applying = index;
    this.unstableFrom = index + 1;
    // Nothing of the new log is durable until the Ready carrying the snapshot is advanced.
    this.stableTo = 0;
    this.inFlightTo = 0;
  }

  /** The Ready carrying the snapshot at `index` was persisted. */
  markSnapshotStable(index: number): void {
    if (index === this.snapIndex && this.stableTo < index) {
      this.stableTo = index;
      this.inFlightTo = Math.max(this.inFlightTo, index);
    }
  }
}
