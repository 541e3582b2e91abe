/**
 * Background scrubber: walks every block of the store at a bounded rate, re-reading (and so
 * re-verifying) each one; a block that fails its checksum is fetched from another replica
 * through a RepairSource and rewritten. Repairs and unrepairable blocks are counted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isGalleonError } from '../../proto/errors.js';
import type { Logger } from 'pino';
import type { BlockAddress, BlockStore, StoredBlock } from './types.js';
import { Pacer } from './pacer.js';
import { noStoreMetrics } from './store-metrics.js';
import type { StoreMetrics } from './store-metrics.js';

/** Another replica's verified copy of a block (the caller knows where the replicas are). */
export interface RepairSource {
  fetchBlock(address: BlockAddress, pg: number): Promise<StoredBlock>;
}

export interface ScrubberOptions {
  store: BlockStore;
  repair: RepairSource;
  log: Logger;
  /** The data plane's counters (passed in by whoever builds the store); none by default. */
  metrics?: Pick<StoreMetrics, 'scrubbedBlocks' | 'scrubRepairs'>;
  /** Upper bound of blocks re-read per second, so scrubbing never starves client I/O. */
  maxBlocksPerSecond?: number;
  /** Upper bound of bytes re-read per second: 200 blocks/s of 1 MiB would be 200 MiB/s. */
  maxBytesPerSecond?: number;
  /** Pause between two full passes. */
  passIntervalMs?: number;
}

export interface ScrubPass {
  scanned: number;
  repaired: number;
  unrepairable: number;
}

export const defaultScrubBlocksPerSecond = 200;
export const defaultScrubBytesPerSecond = 16 * 1024 * 1024;
export const defaultScrubPassIntervalMs = 60 * 60 * 1000;
/** Blocks per rate-limit step: sleeping per block would cost more than the reads. */
const scrubStepBlocks = 16;

export class Scrubber {
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly stopController = new AbortController();

  constructor(private readonly opts: ScrubberOptions) {}

  /** One full pass over the store. */
  async runOnce(): Promise<ScrubPass> {
    const rate = this.opts.maxBlocksPerSecond ?? defaultScrubBlocksPerSecond;
    const byteRate = this.opts.maxBytesPerSecond ?? defaultScrubBytesPerSecond;
    const pass: ScrubPass = { scanned: 0, repaired: 0, unrepairable: 0 };
    const pacer = new Pacer({ signal: this.stopController.signal });
    let stepBytes = 0;
    for await (const { address, pg } of this.opts.store.iterateAddresses()) {
      if (this.stopController.signal.aborted) break;
      pass.scanned++;
      (this.opts.metrics ?? noStoreMetrics).scrubbedBlocks.inc();
      try {
        stepBytes += (await this.opts.store.read(address)).data.byteLength;
      } catch (err) {
        if (!isGalleonError(err, 'CHECKSUM_MISMATCH')) throw err;
        if (await this.repair(address, pg)) pass.repaired++;
        else pass.unrepairable++;
      }
      if (pass.scanned % scrubStepBlocks === 0) {
        await pacer.end({ amount: scrubStepBlocks, perSecond: rate }, { amount: stepBytes, perSecond: byteRate });
        stepBytes = 0;
      }
    }
    return pass;
  }

  private async repair(address: BlockAddress, pg: number): Promise<boolean> {
    try {
      const copy = await this.opts.repair.fetchBlock(address, pg);
      await this.opts.store.rewriteBlock(address, copy);
      await this.opts.store.read(address); // verify the rewrite before counting it
      (this.opts.metrics ?? noStoreMetrics).scrubRepairs.inc();
      this.opts.log.warn({ address, pg, seq: copy.seq }, 'scrubber repaired a damaged block from another replica');
      return true;
    } catch (err) {
      this.opts.log.error({ err, address, pg }, 'scrubber could not repair a damaged block');
      return false;
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (!this.stopController.signal.aborted) {
        try {
          const pass = await this.runOnce();
          this.opts.log.info(pass, 'scrub pass finished');
        } catch (err) {
          this.opts.log.error({ err }, 'scrub pass failed');
        }
        await sleep(this.opts.passIntervalMs ?? defaultScrubPassIntervalMs, undefined, { signal: this.stopController.signal }).catch(() => undefined);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    await this.loop;
    this.running = false;
  }
}
