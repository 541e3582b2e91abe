/**
 * A volume's size is its quota: a write or truncate that grows files past it gets ENOSPC.
 * The namespace counts used bytes (sum of file sizes, `fsStatfs`); this mount adds what it has
 * grown since it last asked, and asks again before it refuses (another node may have freed
 * space), so a refusal is always checked against a fresh count.
 */
import { fsError } from '../fuse/errno.js';

/** Growth this mount allows itself before asking the namespace again. */
export const quotaRecheckBytes = 64 * 1024 * 1024;

export class Quota {
  private usedBytes: number | null = null;
  private grownBytes = 0;

  constructor(private readonly totalBytes: number, private readonly fetchUsed: () => Promise<number>) {}

  async reserve(growthBytes: number): Promise<void> {
    if (growthBytes <= 0) return;
    if (this.usedBytes === null || this.grownBytes + growthBytes > quotaRecheckBytes || this.fits(growthBytes) === false) {
      this.usedBytes = await this.fetchUsed();
      this.grownBytes = 0;
    }
    if (!this.fits(growthBytes)) throw fsError('ENOSPC', 'the volume is full (its size is its quota)');
    this.grownBytes += growthBytes;
  }

  /** Bytes this mount freed (shrink, delete). */
  forget(bytes: number): void {
    this.grownBytes = Math.max(0, this.grownBytes - bytes);
  }

  private fits(growthBytes: number): boolean {
    return (this.usedBytes ?? 0) + this.grownBytes + growthBytes <= this.totalBytes;
  }
}
