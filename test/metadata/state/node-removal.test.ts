/**
 * `galleon node remove` at the state-machine level: a departed data node leaves every PG and the
 * node table; refused while it is up, and while it holds the only in-sync copy of any PG.
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { planNodeRemoval, type FailoverVolume, type PlacementNode } from '../../../metadata/state/logic/placement.js';
import type { DataNode, DataNodeRemoval, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, useStateMachine } from './helpers.js';

const node = (id: string, state: PlacementNode['state'] = 'up'): PlacementNode => ({ id, zone: 'z', capacityBytes: 1000, usedBytes: 0, state });
const pg = (n: number, replicas: string[], primary: string, inSync = replicas, epoch = 5): PlacementGroup =>
  ({ volumeId: 'v', pg: n, replicas, primary, epoch, inSync });

describe('metadata/state node removal planner (pure)', () => {
  it('is blocked by every PG whose only in-sync copy is on the node', () => {
    const vol: FailoverVolume = { id: 'v', replicas: 2, zoneSpread: 'none', pgs: [pg(1, ['a', 'b'], 'a', ['a']), pg(0, ['b', 'a'], 'b'), pg(2, ['a'], 'a')] };
    const plan = planNodeRemoval('a', [vol], [node('a', 'down'), node('b'), node('c')], new Set(['b', 'c']));
    assert.deepEqual(plan, { kind: 'blocked', soleCopies: [{ volumeId: 'v', pg: 1 }, { volumeId: 'v', pg: 2 }] });
  });

  it('fails over like a down node (replacement added, survivor promoted) and drops it where no in-sync survivor is up', () => {
    const vol: FailoverVolume = {
      id: 'v', replicas: 2, zoneSpread: 'none',
      pgs: [
        pg(0, ['a', 'b'], 'a'), // b up and in sync: b primary, c added
        pg(1, ['b', 'c'], 'b'), // a not in it: unchanged
        pg(2, ['a', 'd'], 'd', ['a', 'd']), // d (in sync) is down too: a dropped, nothing added, d stays primary
      ],
    };
    const plan = planNodeRemoval('a', [vol], [node('a', 'down'), node('b'), node('c'), node('d', 'down')], new Set(['b', 'c']));
    assert.equal(plan.kind, 'ok');
    assert.ok(plan.kind === 'ok');
    assert.deepEqual(plan.changed, [
      { volumeId: 'v', pg: 0, replicas: ['b', 'c'], primary: 'b', epoch: 6, inSync: ['b'], addedAtEpoch: { c: 6 } },
      { volumeId: 'v', pg: 2, replicas: ['d'], primary: 'd', epoch: 6, inSync: ['d'] },
    ]);
    assert.ok(plan.changed.every((g) => !g.replicas.includes('a') && !g.inSync.includes('a')));
  });
});

describe('metadata/state machine: removeDataNode', () => {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });

  const groups = async (volumeId: string): Promise<PlacementGroup[]> => sm.query('getPlacement', [volumeId]) as Promise<PlacementGroup[]>;
  const nodeIds = async (): Promise<string[]> => (await sm.query('listDataNodes', []) as DataNode[]).map((n) => n.id);

  it('refuses an unknown node, an up node, and a node with the only in-sync copy; then removes it and leaves placement consistent', async () => {
    await addNodes(f, 3);
    await f.fails('NODE_NOT_FOUND', 'removeDataNode', 'n9');
    const solo = await f.ok<Volume>('createVolume', { name: 'solo', replicas: 1, storageClass: 'fast-local-ssd' });
    const vol = await f.ok<Volume>('createVolume', { name: 'v', replicas: 2, storageClass: 'fast-local-ssd' });
    const up = await f.fails('FAILED_PRECONDITION', 'removeDataNode', 'n1');
    assert.match(up.message, /^data node n1 is up; only a node marked down can be removed$/);

    await f.ok('markDataNodeDown', 'n1');
    const soloOnN1 = (await groups(solo.id)).filter((g) => g.replicas.includes('n1'));
    assert.ok(soloOnN1.length > 0, 'some single-replica PGs live on n1');
    const before = await groups(vol.id);
    const sole = await f.fails('FAILED_PRECONDITION', 'removeDataNode', 'n1');
    assert.match(sole.message, new RegExp(`^data node n1 holds the only in-sync copy of ${soloOnN1.length} placement group\\(s\\) \\(solo pg \\d+`));
    assert.deepEqual(await nodeIds(), ['n1', 'n2', 'n3'], 'a refused removal changes nothing');
    assert.deepEqual(await groups(vol.id), before);

    await f.ok('deleteVolume', 'solo');
    const removed = await f.ok<DataNodeRemoval>('removeDataNode', 'n1');
    assert.equal(removed.node.id, 'n1');
    assert.deepEqual(await nodeIds(), ['n2', 'n3']);
    for (const g of await groups(vol.id)) {
      assert.ok(!g.replicas.includes('n1') && !g.inSync.includes('n1') && g.primary !== 'n1', JSON.stringify(g));
      assert.ok(g.replicas.includes(g.primary));
    }
    // Removing it again: it is gone.
    await f.fails('NODE_NOT_FOUND', 'removeDataNode', 'n1');
    // The node may come back: it registers as a new node and takes PGs again.
    await f.ok('registerDataNode', { id: 'n1', address: '127.0.0.1:9001', zone: 'zone-a', capacityBytes: 2 ** 40 });
    assert.deepEqual(await nodeIds(), ['n1', 'n2', 'n3']);
  });
});
