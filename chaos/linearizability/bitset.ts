/**
 * A fixed-size bit set with an incrementally maintained 2×32-bit hash, so the checker can look
 * up (linearized set, model state) in its memo table without rehashing the whole set per step.
 */
export class BitSet {
  private readonly words: Uint32Array;
  private h1 = 0;
  private h2 = 0;

  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  has(i: number): boolean {
    return ((this.words[i >>> 5] ?? 0) & (1 << (i & 31))) !== 0;
  }

  /** Flips bit i (set if clear, clear if set); the hash follows because XOR is its own inverse. */
  flip(i: number): void {
    const w = i >>> 5;
    this.words[w] = (this.words[w] ?? 0) ^ (1 << (i & 31));
    this.h1 = (this.h1 ^ mix(i, 0x9e3779b9)) >>> 0;
    this.h2 = (this.h2 ^ mix(i, 0x85ebca6b)) >>> 0;
  }

  hashKey(): string {
    return `${this.h1.toString(36)}.${this.h2.toString(36)}`;
  }

  snapshot(): Uint32Array {
    return this.words.slice();
  }

  equals(words: Uint32Array): boolean {
    if (words.length !== this.words.length) return false;
    for (let i = 0; i < words.length; i++) if (words[i] !== this.words[i]) return false;
    return true;
  }
}

/** A 32-bit avalanche of an index (murmur3's finaliser), seeded so the two halves differ. */
function mix(i: number, seed: number): number {
  let h = Math.imul(i + 1, seed) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
