/**
 * Real processes for the data-plane suites that need the metadata service: metadata members
 * (one by default; short data-node timeout, fast controller) and data nodes in the given zones,
 * started before the enclosing `describe` and stopped after it, with a metadata client and a
 * block client.
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

export interface MetaAndDataShape {
  /** Metadata members (m1, m2, …): 3 for suites that kill or outlive a member. Default 1. */
  metadataMembers?: number;
  /** More flags for every data node (e.g. `--reclaim-interval-ms`). */
  dataFlags?: string[];
}

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
  /** One PG of the volume (asserted to exist). */
  group: (volumeId: string, pg: number) => Promise<PlacementGroup>;
  /** A data node's state as the metadata service sees it. */
  stateOf: (id: string) => Promise<string | undefined>;
  /** (Re)starts data node `id` in its zone, on its old data dir if it had one, with `flags`; `nodeEnv` goes to that process only. */
  startNode: (id: string, nodeEnv?: Record<string, string>) => Promise<void>;
}

export function useMetaAndData(zones: Record<string, string>, t: MetaAndDataTimings, shape: MetaAndDataShape = {}): MetaAndData {
  const env = {
    meta: new ProcessCluster(),
    data: new TestCluster(),
    flags: [] as string[],
    groups: async (volumeId: string) => [...await env.api.getPlacement(volumeId)].sort((a, b) => a.pg - b.pg),
    group: async (volumeId: string, pg: number) => {
      const g = (await env.api.getPlacement(volumeId)).find((x) => x.pg === pg);
      assert.ok(g !== undefined, `volume ${volumeId} has no PG ${pg}`);
      return g;
    },
    stateOf: async (id: string) => (await env.api.listDataNodes()).find((n) => n.id === id)?.state,
    startNode: async (id: string, nodeEnv: Record<string, string> = {}) => {
      await env.data.start(id, zones[id] ?? 'z1', env.data.nodes.get(id)?.dir, env.flags, nodeEnv);
    },
  } as MetaAndData;
  before(async () => {
    await env.meta.init();
    const ids = Array.from({ length: shape.metadataMembers ?? 1 }, (_, i) => `m${i + 1}`);
    const members = await env.meta.bootstrap(ids, ['--data-node-timeout-ms', String(t.downAfterMs), '--controller-interval-ms', '100']);
    assert.ok(members.length > 0);
    const addresses = members.map((m) => m.address).join(',');
    env.api = new MetadataClient({ addresses: members.map((m) => m.address) });
    env.client = new BlockClient({ placement: new MetadataPlacementSource(env.api), maxAttempts: 40, retryBaseDelayMs: 25, coalesceWrites: false, requestTimeoutMs: 5000 });
    env.flags = ['--metadata', addresses, '--heartbeat-ms', String(t.heartbeatMs), '--lease-ttl-ms', String(t.leaseTtlMs), '--scrub-rate', '0', ...(shape.dataFlags ?? [])];
    const count = Object.keys(zones).length;
    await Promise.all(Object.keys(zones).map((id) => env.startNode(id)));
    await waitFor(`${count} data nodes up`, async () => (await env.api.listDataNodes()).filter((n) => n.state === 'up').length === count, 30_000);
  });
  after(async () => {
    // Each step even when `before` failed half-way (client and api unset): a member that did not
    // get ready in time used to leave the others running (TypeError here, destroy never ran).
    await env.client?.close().catch(() => undefined);
    env.api?.close();
    await env.data.stopAll();
    await env.meta.destroy();
  });
  return env;
}
