/**
 * Departed copies of a PG (metadata/state/logic/departed.ts, dataplane/server/departed.ts): the
 * placement records a node taken out of a PG's replica set with the epoch it left at, keeps the
 * record across later changes and a re-addition, and drops it when the node reports its copy gone
 * (not for a report from before it left) or is removed from the cluster; and the data node's
 * decision when to report. Real state machine on a temp LevelDB; the decisions are pure.
 */
import assert from 'node:assert/strict';
import { withDeparted, withoutDeparted } from '../../../metadata/state/logic/departed.js';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { copyGone } from '../../../dataplane/server/departed.js';
import type { PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, useStateMachine } from './helpers.js';

const pg = (replicas: string[], epoch: number, extra: Partial<PlacementGroup> = {}): PlacementGroup =>
  ({ volumeId: 'v', pg: 0, replicas, primary: replicas[0] ?? 'a', epoch, inSync: replicas, ...extra });

describe('departed copies (pure)', () => {
  it('records who left at the new epoch, keeps older entries and a re-added node\'s, and forgets only up to the reported epoch', () => {
    const left = withDeparted(pg(['a', 'b', 'c'], 1), pg(['b', 'c', 'd'], 2));
    assert.deepEqual(left.departed, { a: 2 });
    const again = withDeparted(left, pg(['c', 'd', 'a'], 3, { addedAtEpoch: { a: 3 } }));
    assert.deepEqual(again.departed, { a: 2, b: 3 }, 'a re-added keeps its entry (its old copy is still on disk); b left now');
    assert.equal(withDeparted(pg(['a'], 1), pg(['a'], 2)).departed, undefined, 'nobody left: no record');
    assert.equal(withoutDeparted(again, 'a', 1), again, 'a report from before it left changes nothing');
    assert.deepEqual(withoutDeparted(again, 'a', 3).departed, { b: 3 });
    assert.equal(withoutDeparted(withoutDeparted(again, 'a', 3), 'b', 3).departed, undefined);
  });

  it('a node reports its copy gone when it holds nothing, or holds the copy made after it was added back', () => {
    const g = pg(['b', 'c'], 4, { departed: { a: 2 } });
    assert.equal(copyGone('a', g, null), true, 'nothing held');
    assert.equal(copyGone('a', g, { epoch: 1, highestSeq: 0, rejoining: false }), true, 'an empty PG state');
    assert.equal(copyGone('a', g, { epoch: 1, highestSeq: 9, rejoining: false }), false, 'the old copy is still there (hand-back pending)');
    assert.equal(copyGone('b', g, null), false, 'not departed: nothing to report');
    const back = pg(['a', 'b', 'c'], 5, { departed: { a: 2 }, addedAtEpoch: { a: 5 } });
    assert.equal(copyGone('a', back, { epoch: 1, highestSeq: 9, rejoining: false }), false, 'added back, old copy not replaced yet');
    assert.equal(copyGone('a', back, { epoch: 5, highestSeq: 9, rejoining: true }), false, 'rejoin running');
    assert.equal(copyGone('a', back, { epoch: 5, highestSeq: 9, rejoining: false }), true, 'the store holds the new copy');
  });
});

describe('metadata/state machine: departed copies', () => {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  const groups = async (volumeId: string): Promise<PlacementGroup[]> => sm.query('getPlacement', [volumeId]) as Promise<PlacementGroup[]>;

  it('a failover records the down node on each PG it left; its report clears one PG; node removal clears the rest', async () => {
    await addNodes(f, 4);
    const vol = await f.ok<Volume>('createVolume', { name: 'v', replicas: 2, storageClass: 'fast-local-ssd' });
    const had = (await groups(vol.id)).filter((g) => g.replicas.includes('n1'));
    assert.ok(had.length >= 2, 'n1 holds several PGs');
    await f.ok('markDataNodeDown', 'n1');
    const after = (await groups(vol.id)).filter((g) => had.some((h) => h.pg === g.pg));
    for (const g of after) assert.deepEqual([g.replicas.includes('n1'), g.departed?.n1], [false, g.epoch], `PG ${g.pg}`);
    const [first, ...others] = after as [PlacementGroup, ...PlacementGroup[]];
    await f.fails('INVALID_ARGUMENT', 'departedCopyGone', vol.id, first.pg, 'bad id!', first.epoch);
    await f.fails('INVALID_ARGUMENT', 'departedCopyGone', vol.id, vol.pgCount, 'n1', first.epoch);
    await f.ok('departedCopyGone', vol.id, first.pg, 'n1', first.epoch - 1);
    assert.equal((await groups(vol.id)).find((g) => g.pg === first.pg)?.departed?.n1, first.epoch, 'a report older than the departure: kept');
    const cleared = await f.ok<PlacementGroup>('departedCopyGone', vol.id, first.pg, 'n1', first.epoch);
    assert.deepEqual([cleared.departed, cleared.epoch], [undefined, first.epoch], 'cleared, epoch unchanged');
    await f.ok('departedCopyGone', vol.id, first.pg, 'n1', first.epoch); // idempotent
    assert.ok((await groups(vol.id)).filter((g) => others.some((o) => o.pg === g.pg)).every((g) => g.departed?.n1 !== undefined));
    await f.ok('removeDataNode', 'n1');
    assert.ok((await groups(vol.id)).every((g) => g.departed?.n1 === undefined), 'a removed node\'s copies are forgotten');
  });
});
