/**
 * What the store and its background work count, as an interface: whoever builds the store (the
 * data node, the daemon's data role) passes the data plane's prom-client metrics in; tests and
 * benches that do not care get `noStoreMetrics`. The store imports no metrics registry itself.
 */
export interface Counter { inc(by?: number): void }
export interface Gauge { set(value: number): void }

export interface StoreMetrics {
  checksumMismatches: Counter;
  groupCommits: Counter;
  scrubbedBlocks: Counter;
  scrubRepairs: Counter;
  gcBytesReclaimed: Counter;
  gcSegmentsDeleted: Counter;
  gcBytesCopied: Counter;
  tombstonesPurged: Counter;
  /** Purgeable tombstones a pass kept because a node that left their PG may still hand a copy back. */
  tombstonesHeld: Counter;
  reclaimableBytes: Gauge;
}

const noCounter: Counter = { inc: () => undefined };
const noGauge: Gauge = { set: () => undefined };

export const noStoreMetrics: StoreMetrics = {
  checksumMismatches: noCounter, groupCommits: noCounter, scrubbedBlocks: noCounter, scrubRepairs: noCounter,
  gcBytesReclaimed: noCounter, gcSegmentsDeleted: noCounter, gcBytesCopied: noCounter, tombstonesPurged: noCounter,
  tombstonesHeld: noCounter, reclaimableBytes: noGauge,
};
