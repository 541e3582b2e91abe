/**
 * A volume's size is its quota: a write or truncate that grows files past it gets ENOSPC.
 * used = the namespace's count (sum of committed file sizes, `fsStatfs`, kept current with this
 * mount's own commits) + what this mount's open files grew and did not commit yet
 * (`localPendingBytes`, from the caller). Before refusing, the count is read again (another
 * node may have freed space), so a refusal is always checked against a fresh count; the count
 * is also re-read after `quotaRecheckBytes` of growth (other nodes' writes).
 */
import { fsError } from '../fuse/errno.js';

/** Growth this mount allows itself before asking the namespace again. */
export const quotaRecheckBytes = 64 * 1024 * 1024;

export class Quota {
  private usedBytes: number | null = null;
  private sinceFetchBytes = 0;

  constructor(private readonly totalBytes: number, private readonly fetchUsed: () => Promise<number>) {}

  async reserve(growthBytes: number, localPendingBytes: number): Promise<void> {
    if (growthBytes <= 0) return;
    if (this.usedBytes === null || this.sinceFetchBytes > quotaRecheckBytes) await this.refresh();
    if (!this.fits(growthBytes + localPendingBytes)) {
      await this.refresh();
      if (!this.fits(growthBytes + localPendingBytes)) throw fsError('ENOSPC', 'the volume is full (its size is its quota)');
    }
    this.sinceFetchBytes += growthBytes;
  }

  /** The namespace's count moved by `deltaBytes` through this mount (commit, truncate, delete). */
  committed(deltaBytes: number): void {
    if (this.usedBytes !== null) this.usedBytes = Math.max(0, this.usedBytes + deltaBytes);
  }

  private async refresh(): Promise<void> {
    this.usedBytes = await this.fetchUsed();
    this.sinceFetchBytes = 0;
  }

  private fits(bytes: number): boolean {
    return (this.usedBytes ?? 0) + bytes <= this.totalBytes;
  }
}
