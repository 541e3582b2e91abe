/**
 * Reusable buffers for large request bodies that a data node keeps until a write has landed
 * (replicate batches of 1 MiB blocks).
 *
 * Why: a fresh buffer per body lives as long as its write is in flight (a few hundred ms at 64
 * writes in flight), so it is promoted to V8's old space, and every 64 MB of such buffers starts
 * a full mark-compact ("external memory pressure"). Under 1 MiB replicated writes that was a
 * mark-compact every ~250 ms per node and half of its non-main-thread CPU. Reusing the same
 * memory, most recently released first (still in the CPU cache), keeps that growth flat:
 * measured, each node's CPU outside the main thread fell from ~0.75 to ~0.35 ms per MiB.
 *
 * Safety: a pooled buffer is reused as soon as its lease is released, so a lease may only be
 * released once nothing reads the bytes any more. The block server releases a replicate batch's
 * body after `replicaApplyBatch` has settled (the store copied every body into a segment and
 * dropped its in-flight overlay; reads of an in-flight write copy the bytes). A primary's
 * client bodies are not pooled: they are forwarded, so their buffer would have to wait for every
 * forward, and pooling them measured no faster.
 */

const MiB = 1024 * 1024;
/** Slabs come in multiples of this (a 1 MiB block plus its frame header takes 1.25 MiB). */
export const slabStepBytes = 256 * 1024;

export interface BodyLease {
  /** Exactly the requested length; valid until `release`. */
  body: Buffer;
  /** Hands the memory back for reuse; later calls do nothing. */
  readonly release: () => void;
}

export class BodyPool {
  /** Free slabs per size (a multiple of slabStepBytes), most recently released last. */
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;

  /**
   * @param minBodyBytes bodies below this are plain allocations (short-lived, cheap to collect)
   * @param maxFreeBytes memory kept for reuse at most; a slab released beyond it is dropped
   */
  constructor(readonly minBodyBytes = 256 * 1024, readonly maxFreeBytes = 96 * MiB) {}

  /** A buffer of `length` bytes: from the pool when `length >= minBodyBytes`, else a plain allocation. */
  take(length: number): BodyLease {
    if (length < this.minBodyBytes) return { body: Buffer.allocUnsafe(length), release: () => undefined };
    const size = Math.ceil(length / slabStepBytes) * slabStepBytes;
    const reused = this.free.get(size)?.pop();
    if (reused !== undefined) this.freeBytes -= reused.length;
    const slab = reused ?? Buffer.allocUnsafeSlow(size);
    let released = false;
    return {
      body: slab.subarray(0, length),
      release: () => {
        if (released) return;
        released = true;
        this.giveBack(slab);
      },
    };
  }

  /** Bytes held for reuse now. */
  get pooledBytes(): number {
    return this.freeBytes;
  }

  private giveBack(slab: Buffer): void {
    if (this.freeBytes + slab.length > this.maxFreeBytes) return;
    let list = this.free.get(slab.length);
    if (list === undefined) { list = []; this.free.set(slab.length, list); }
    list.push(slab);
    this.freeBytes += slab.length;
  }
}
