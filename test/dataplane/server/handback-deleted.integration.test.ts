/**
 * The hand-back gap of issue #13 on real processes (1 metadata member, 4 data nodes; heartbeats
 * 200 ms, lease ttl 1 s, node down after 4 s): block X is written to all three replicas; the
 * primary is killed and replaced; the new primary deletes X and then takes more than a journal's
 * trim step of writes, so its journal no longer shows the delete; the old primary comes back, no
 * longer a member, and hands its copy of X back. On the old code the new primary found no copy
 * of X (a tombstone reads as missing) and took it: the deleted block came back. Now the
 * primary's compare counts its tombstone as the block's newest version and declines.
 */
import assert from 'node:assert/strict';
import { deleteAfterFailover, returnAndHandBack } from './handback-scenario.js';
import { useMetaAndData } from './meta-and-data.js';

const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3', d4: 'z1' };

describe('hand-back of a block the new primary deleted and trimmed past (issue #13 gap)', function () {
  this.timeout(180_000);
  const env = useMetaAndData(zones, { heartbeatMs: 200, leaseTtlMs: 1000, downAfterMs: 4000 });

  it('the returning node\'s copy of a deleted block stays deleted', async () => {
    const s = await deleteAfterFailover(env, 'hb-deleted');
    assert.ok(s.del.epoch > s.before.epoch);
    await returnAndHandBack(env, s);
  });
});
