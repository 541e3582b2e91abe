/**
 * Inode numbers for creates, taken from ranges the namespace hands this mount
 * (`fsAllocateInodes`), so a create costs one Raft write, not two. Concurrent creates share
 * one allocation in flight.
 */
import { invariant } from '../../proto/errors.js';
import type { FsInodeRange } from '../../proto/metadata-types.js';

/** Numbers asked for per allocation (the namespace allows up to 65,536). */
export const inodesPerAllocation = 1024;
/** Numbers given back by creates that found an existing file, kept for reuse. */
const maxReturned = 1024;

export class InodePool {
  private next_ = 0;
  private end = 0;
  private readonly returned: number[] = [];
  private refill: Promise<void> | null = null;

  constructor(private readonly allocate: (count: number) => Promise<FsInodeRange>, private readonly perAllocation = inodesPerAllocation) {}

  async next(): Promise<number> {
    const back = this.returned.pop();
    if (back !== undefined) return back;
    while (this.next_ >= this.end) {
      this.refill ??= this.allocate(this.perAllocation).then((r) => {
        invariant(r.start >= 2 && r.end > r.start, `inode range ${r.start}..${r.end}`);
        this.next_ = r.start;
        this.end = r.end;
      }).finally(() => { this.refill = null; });
      await this.refill;
    }
    return this.next_++;
  }

  giveBack(ino: number): void {
    if (this.returned.length < maxReturned) this.returned.push(ino);
  }
}
