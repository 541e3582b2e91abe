/**
 * The set of linearized operations, kept as "every rank below `floor`" plus the few ranks above
 * it. Ranks follow return time, and the search linearizes operations roughly in that order, so
 * the part above the floor stays as small as the concurrency: the set's exact key is a short
 * string, and the memo table never holds a copy of a whole bit set per entry.
 */
export class PrefixSet {
  private readonly bits: Uint8Array;
  /** Every rank below it is in the set; it is not (or equals the size). */
  private floor = 0;
  private readonly above = new Set<number>();

  constructor(readonly size: number) {
    this.bits = new Uint8Array(size);
  }

  has(rank: number): boolean {
    return this.bits[rank] === 1;
  }

  add(rank: number): void {
    if (this.bits[rank] === 1) throw new Error(`rank ${rank} is already in the set`);
    this.bits[rank] = 1;
    if (rank !== this.floor) {
      this.above.add(rank);
      return;
    }
    this.floor++;
    while (this.floor < this.size && this.bits[this.floor] === 1) {
      this.above.delete(this.floor);
      this.floor++;
    }
  }

  delete(rank: number): void {
    if (this.bits[rank] !== 1) throw new Error(`rank ${rank} is not in the set`);
    this.bits[rank] = 0;
    if (rank > this.floor) {
      this.above.delete(rank);
      return;
    }
    // Ranks between it and the old floor stay in the set, now above the new floor.
    for (let r = rank + 1; r < this.floor; r++) this.above.add(r);
    this.floor = rank;
  }

  /** Equal for equal sets, different otherwise. */
  key(): string {
    if (this.above.size === 0) return String(this.floor);
    return `${this.floor}:${[...this.above].sort((a, b) => a - b).join(',')}`;
  }
}
