/**
 * Real processes for the data-plane suites that need the metadata service: one metadata member
 * (short data-node timeout, fast controller) and data nodes in the given zones, started before
 * the enclosing `describe` and stopped after it, with a metadata client and a block client.
 */
import assert from 'node:assert/strict';
import { BlockClient } from '../../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../../dataplane/placement.js';
import { MetadataClient } from '../../../metadata/service/client.js';
import type { PlacementGroup } from '../../../proto/metadata-types.js';
import { ProcessCluster } from '../../metadata/service/harness.js';
import { TestCluster } from '../cluster.js';
import { waitFor } from '../helpers.js';

export interface MetaAndDataTimings { heartbeatMs: number; leaseTtlMs: number; downAfterMs: number }

export interface MetaAndData {
  readonly meta: ProcessCluster;
  readonly data: TestCluster;
  /** Set once the `before` hook ran. */
  api: MetadataClient;
  client: BlockClient;
  /** The flags every data node was started with (restart a node with them). */
  flags: string[];
  /** The volume's PGs, by number. */
  groups: (volumeId: string) => Promise<PlacementGroup[]>;
  /** A data node's state as the metadata service sees it. */
  stateOf: (id: string) => Promise<string | undefined>;
}

export function useMetaAndData(zones: Record<string, string>, t: MetaAndDataTimings): MetaAndData {
  const env = {
    meta: new ProcessCluster(),
    data: new TestCluster(),
    flags: [] as string[],
    groups: async (volumeId: string) => [...await env.api.getPlacement(volumeId)].sort((a, b) => a.pg - b.pg),
    stateOf: async (id: string) => (await env.api.listDataNodes()).find((n) => n.id === id)?.state,
  } as MetaAndData;
  before(async () => {
    await env.meta.init();
    const [m1] = await env.meta.bootstrap(['m1'], ['--data-node-timeout-ms', String(t.downAfterMs), '--controller-interval-ms', '100']);
    assert.ok(m1);
    env.api = new MetadataClient({ addresses: [m1.address] });
    env.client = new BlockClient({ placement: new MetadataPlacementSource(env.api), maxAttempts: 40, retryBaseDelayMs: 25, coalesceWrites: false, requestTimeoutMs: 5000 });
    env.flags = ['--metadata', m1.address, '--heartbeat-ms', String(t.heartbeatMs), '--lease-ttl-ms', String(t.leaseTtlMs), '--scrub-rate', '0'];
    const count = Object.keys(zones).length;
    await Promise.all(Object.entries(zones).map(([id, z]) => env.data.start(id, z, undefined, env.flags)));
    await waitFor(`${count} data nodes up`, async () => (await env.api.listDataNodes()).filter((n) => n.state === 'up').length === count, 30_000);
  });
  after(async () => {
    await env.client.close().catch(() => undefined);
    env.api.close();
    await env.data.stopAll();
    await env.meta.destroy();
  });
  return env;
}
