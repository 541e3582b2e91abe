/**
 * The hand-back gap after a tombstone purge (issue #13; server/README.md, "Hand-back") on real
 * processes (1 metadata member, 4 data nodes; heartbeats 200 ms, node down after 4 s, a reclaim
 * pass every 300 ms). As in handback-deleted: block X on three replicas, the primary killed and
 * replaced, X deleted by the new primary, its journal trimmed past the delete, the old version
 * kept under the tombstone pruned. Then a purge pass runs on the new primary while the old node is away: without the departed-copy record it purged
 * X's tombstone and the returning node's hand-back of X was taken (the deleted block came back:
 * checked with the reclaimer's hold removed). With it the PG names the old node as departed, the
 * pass keeps X's tombstone (`tombstones_held`), the hand-back is declined, the returning node
 * reports its copy gone, and the next pass purges the tombstone.
 */
import assert from 'node:assert/strict';
import { pruneVolume } from '../../../dataplane/client/snapshot-reads.js';
import { metricCounter as counter, waitFor } from '../helpers.js';
import { deleteAfterFailover, returnAndHandBack } from './handback-scenario.js';
import { useMetaAndData } from './meta-and-data.js';

const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3', d4: 'z1' };

describe('hand-back after the new primary purged the tombstone of a deleted block (issue #13 gap)', function () {
  this.timeout(180_000);
  const env = useMetaAndData(zones, { heartbeatMs: 200, leaseTtlMs: 1000, downAfterMs: 4000 }, { dataFlags: ['--reclaim-interval-ms', '300'] });

  it('the returning node\'s copy of a deleted block stays deleted, and the tombstone goes once the copy is gone', async () => {
    const s = await deleteAfterFailover(env, 'hb-purged');
    const { vol, x, old, primary } = s;
    assert.equal(typeof s.moved.departed?.[old], 'number', 'the placement records the old primary\'s copy as departed');
    // The delete at the new epoch kept X's old version under the tombstone (the store keeps what a
    // snapshot might read); a prune (any snapshot delete runs one) drops it, leaving the tombstone
    // alone over nothing: purgeable. A pass then decides about it: kept (held) with the record,
    // purged without it.
    await pruneVolume(env.api, vol.id, false, 30_000);
    await waitFor('a purge pass on the new primary met the tombstone', async () =>
      await counter(primary, 'galleon_dataplane_tombstones_held_total') + await counter(primary, 'galleon_dataplane_tombstones_purged_total') > 0, 30_000, 100);

    await returnAndHandBack(env, s);

    await waitFor(`${old} reported its copy gone`, async () => (await env.group(vol.id, 0)).departed?.[old] === undefined, 30_000, 200);
    await waitFor('the tombstone purged once no departed copy is left', async () => await counter(primary, 'galleon_dataplane_tombstones_purged_total') > 0, 30_000, 100);
    await assert.rejects(env.client.readBlock(vol.id, 0, x), (err: { code?: string }) => err.code === 'BLOCK_NOT_FOUND');
  });
});
