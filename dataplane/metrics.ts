/** Data-plane metrics in prom-client's default registry (served by the daemon's /metrics). */
import { Counter, Gauge, register } from 'prom-client';

function counter(name: string, help: string): Counter {
  const existing = register.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help });
}

function gauge(name: string, help: string): Gauge {
  const existing = register.getSingleMetric(name);
  if (existing instanceof Gauge) return existing;
  return new Gauge({ name, help });
}

export const metrics = {
  checksumMismatches: counter('galleon_dataplane_checksum_mismatches_total', 'Block reads that failed their crc32c check'),
  scrubbedBlocks: counter('galleon_dataplane_scrubbed_blocks_total', 'Blocks re-read by the scrubber'),
  scrubRepairs: counter('galleon_dataplane_scrub_repairs_total', 'Damaged blocks rewritten from another replica by the scrubber'),
  groupCommits: counter('galleon_dataplane_group_commits_total', 'Index batches written by the block store'),
  readRepairs: counter('galleon_dataplane_read_repairs_total', 'Damaged blocks rewritten from another replica when a read found them'),
  gcBytesReclaimed: counter('galleon_dataplane_gc_reclaimed_bytes_total', 'Segment bytes freed by segment GC (deleted files minus the live bytes copied out of them)'),
  gcSegmentsDeleted: counter('galleon_dataplane_gc_segments_deleted_total', 'Segment files deleted by segment GC'),
  gcBytesCopied: counter('galleon_dataplane_gc_copied_bytes_total', 'Live block bodies copied forward by segment GC'),
  tombstonesPurged: counter('galleon_dataplane_tombstones_purged_total', 'Tombstones of deleted blocks purged from the block index'),
  tombstonesHeld: counter('galleon_dataplane_tombstones_held_total', 'Purgeable tombstones kept by a purge pass because a node that left their PG may still hand its copy back'),
  reclaimableBytes: gauge('galleon_dataplane_reclaimable_bytes', 'Dead bytes in sealed segment files as of the last GC census'),
  staleEpochRefusals: counter('galleon_dataplane_stale_epoch_refusals_total', 'Requests refused for carrying an old placement epoch'),
  unassignedEpochRefusals: counter('galleon_dataplane_unassigned_epoch_refusals_total', 'Requests refused for carrying an epoch the metadata service never assigned'),
  foreignRequestRefusals: counter('galleon_dataplane_foreign_request_refusals_total', 'Peering, forwards and catch-up requests refused for not coming from the PG\'s primary'),
  requestedPlacementReads: counter('galleon_dataplane_requested_placement_reads_total', 'Placement reads a request made this node start (bounded per volume and node-wide)'),
  forgedEpochsHealed: counter('galleon_dataplane_forged_epochs_healed_total', 'Recorded epochs found above every epoch the metadata service assigned, and lowered'),
};
