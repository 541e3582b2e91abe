/**
 * Inode numbers for creates, taken from ranges the namespace hands this mount
 * (`fsAllocateInodes`), so a create costs one Raft write, not two. Concurrent creates share
 * one allocation in flight. With `owner` (the mount's session) a range is taken under it and
 * dropped when the session changes (a lease taken again after it lapsed): the namespace reclaims
 * the orphan blocks of an ended session's ranges, so no number of them may be used afterwards.
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
  private rangeOwner: string | undefined;

  constructor(
    private readonly allocate: (count: number, owner: string | undefined) => Promise<FsInodeRange>, private readonly perAllocation = inodesPerAllocation,
    private readonly owner?: () => string,
  ) {}

  async next(): Promise<number> {
    for (;;) {
      if (this.owner !== undefined && this.owner() !== this.rangeOwner) this.dropRange();
      const back = this.returned.pop();
      if (back !== undefined) return back;
      if (this.next_ < this.end) return this.next_++;
      const who = this.owner?.();
      this.refill ??= this.allocate(this.perAllocation, who).then((r) => {
        invariant(r.start >= 2 && r.end > r.start, `inode range ${r.start}..${r.end}`);
        this.next_ = r.start;
        this.end = r.end;
        this.rangeOwner = who;
      }).finally(() => { this.refill = null; });
      await this.refill;
    }
  }

  private dropRange(): void {
    this.next_ = 0;
    this.end = 0;
    this.returned.length = 0;
    this.rangeOwner = this.owner?.();
  }

  giveBack(ino: number): void {
    if (this.returned.length < maxReturned) this.returned.push(ino);
  }
}
