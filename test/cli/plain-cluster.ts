/**
 * A 3-node `galleon up` without TLS or tokens, with the test's own metadata and block clients:
 * for suites that write blocks and read the nodes' routes directly (each security feature has
 * its own suite). Used by backup-resume and prune-resume.
 */
import { strict as assert } from 'node:assert';
import type { ClusterStatus } from '../../proto/metadata-types.js';
import type { UpResult } from '../../cli/local/cluster.js';
import type { FailoverTimings } from '../../cli/daemon/config.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { cliJson, runCli, waitFor } from './helpers.js';

export interface PlainCluster {
  up: UpResult;
  env: Record<string, string>;
  meta: MetadataClient;
  blocks: BlockClient;
}

/**
 * Starts it in `clusterDir` (made and removed by the caller, so its `after` cleans up even when this throws);
 * `timings`: `galleon up`'s failover flags (absent: the daemon defaults), kept by later `up`s of the folder.
 */
export async function upPlainCluster(clusterDir: string, clientId: string, timings?: FailoverTimings): Promise<PlainCluster> {
  const timingArgs = timings === undefined ? [] : ['--heartbeat-interval-ms', String(timings.heartbeatIntervalMs), '--lease-ttl-ms', String(timings.leaseTtlMs),
    '--data-node-down-after-ms', String(timings.dataNodeDownAfterMs)];
  const r = await runCli(['up', '--no-auth', '--insecure-plaintext', '--no-first-volume', '--dir', clusterDir, '--nodes', '3', '--base-port', '0', ...timingArgs, '--json'], {}, 180_000);
  assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
  const up = JSON.parse(r.stdout) as UpResult;
  const env = { GALLEON_ADDRESS: up.cluster.daemonAddress };
  await waitFor('three data nodes up', 60_000, async () => (await cliJson<ClusterStatus>(['cluster', 'status'], env)).dataNodes.filter((n) => n.state === 'up').length === 3);
  const meta = new MetadataClient({ addresses: up.cluster.nodes.map((n) => n.bindAddress), clientId });
  const blocks = new BlockClient({ placement: new MetadataPlacementSource(meta), coalesceWrites: false, maxAttempts: 20, retryBaseDelayMs: 50 });
  return { up, env, meta, blocks };
}
