/** Data-plane metrics in prom-client's default registry (served by the daemon's /metrics). */
import { Counter, register } from 'prom-client';

function counter(name: string, help: string): Counter {
  const existing = register.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help });
}

export const metrics = {
  checksumMismatches: counter('galleon_dataplane_checksum_mismatches_total', 'Block reads that failed their crc32c check'),
  scrubbedBlocks: counter('galleon_dataplane_scrubbed_blocks_total', 'Blocks re-read by the scrubber'),
  scrubRepairs: counter('galleon_dataplane_scrub_repairs_total', 'Damaged blocks rewritten from another replica by the scrubber'),
  groupCommits: counter('galleon_dataplane_group_commits_total', 'Index batches written by the block store'),
  readRepairs: counter('galleon_dataplane_read_repairs_total', 'Damaged blocks rewritten from another replica when a read found them'),
  staleEpochRefusals: counter('galleon_dataplane_stale_epoch_refusals_total', 'Requests refused for carrying an old placement epoch'),
};
