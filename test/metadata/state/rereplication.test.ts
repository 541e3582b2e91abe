import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { loadOf, planReReplication, type FailoverVolume, type PlacementNode } from '../../../metadata/state/logic/placement.js';
import type { DataNode, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, reportCaughtUp, useStateMachine } from './helpers.js';

function nodes(spec: [id: string, zone: string][], down: string[] = []): PlacementNode[] {
  return spec.map(([id, zone]) => ({ id, zone, capacityBytes: 1000, usedBytes: 0, state: down.includes(id) ? 'down' : 'up' }));
}

const pg = (n: number, replicas: string[], primary: string, inSync = replicas, epoch = 5): PlacementGroup =>
  ({ volumeId: 'v', pg: n, replicas, primary, epoch, inSync });

describe('metadata/state re-replication planner (pure)', () => {
  it('adds a replica to every short PG, out of sync, with its added-at epoch and the epoch bumped', () => {
    const ns = nodes([['a1', 'a'], ['b1', 'b'], ['c1', 'c']]);
    const vol: FailoverVolume = { id: 'v', replicas: 3, zoneSpread: 'prefer', pgs: [pg(0, ['a1', 'b1'], 'a1'), pg(1, ['a1', 'b1', 'c1'], 'b1')] };
    const changed = planReReplication([vol], ns);
    assert.deepEqual(changed, [{ volumeId: 'v', pg: 0, replicas: ['a1', 'b1', 'c1'], primary: 'a1', epoch: 6, inSync: ['a1', 'b1'], addedAtEpoch: { c1: 6 } }]);
  });

  it('spreads over zones, balances load, never picks a current replica twice, keeps older added-at epochs', () => {
    const ns = nodes([['a1', 'a'], ['a2', 'a'], ['b1', 'b'], ['c1', 'c'], ['c2', 'c']]);
    const short = Array.from({ length: 8 }, (_, i) => ({ ...pg(i, ['a1', 'b1'], 'a1'), addedAtEpoch: { b1: 3 } }));
    const full = Array.from({ length: 4 }, (_, i) => pg(8 + i, ['a2', 'b1', 'c1'], 'b1'));
    const changed = planReReplication([{ id: 'v', replicas: 3, zoneSpread: 'prefer', pgs: [...short, ...full] }], ns);
    assert.equal(changed.length, 8);
    const zoneOf = new Map(ns.map((n) => [n.id, n.zone]));
    for (const g of changed) {
      assert.equal(new Set(g.replicas).size, 3, `no duplicate replica in ${JSON.stringify(g)}`);
      assert.equal(new Set(g.replicas.map((id) => zoneOf.get(id))).size, 3, `three zones in ${JSON.stringify(g)}`);
      const added = g.replicas[2] ?? '';
      assert.deepEqual(g.addedAtEpoch, { b1: 3, [added]: 6 });
    }
    // c1 already holds the 4 full PGs: c2 takes the first 4 new replicas, then they alternate.
    const load = loadOf(changed);
    assert.deepEqual([load.pgs.get('c1'), load.pgs.get('c2')], [2, 6]);
    // Zone spread `require` with no new zone left: the PG stays short.
    const twoZones = nodes([['a1', 'a'], ['a2', 'a'], ['b1', 'b']]);
    assert.deepEqual(planReReplication([{ id: 'v', replicas: 3, zoneSpread: 'require', pgs: [pg(0, ['a1', 'b1'], 'a1')] }], twoZones), []);
    assert.deepEqual(planReReplication([{ id: 'v', replicas: 3, zoneSpread: 'prefer', pgs: [pg(0, ['a1', 'b1'], 'a1')] }], twoZones)[0]?.replicas, ['a1', 'b1', 'a2']);
  });

  it('leaves alone PGs without a serving primary, full PGs, and PGs no free node can complete', () => {
    const ns = nodes([['a1', 'a'], ['b1', 'b'], ['c1', 'c']], ['a1']);
    const pgs = [
      pg(0, ['a1', 'b1'], 'a1', ['a1']), // only in-sync copy on the down primary (planNodeDown left it)
      pg(1, ['b1', 'a1'], 'b1', ['a1']), // primary not in sync
      pg(2, ['b1', 'c1'], 'b1'), // short, but the only free node is down
      pg(3, ['a1', 'b1', 'c1'], 'b1'),
    ];
    assert.deepEqual(planReReplication([{ id: 'v', replicas: 3, zoneSpread: 'none', pgs }], ns), []);
  });

  it('is deterministic: volumes by id, PGs by number, whatever the input order', () => {
    const ns = nodes([['a1', 'a'], ['b1', 'b'], ['c1', 'c'], ['d1', 'd']]);
    const vols = (order: string[]): FailoverVolume[] => order.map((id) => ({
      id, replicas: 3, zoneSpread: 'prefer', pgs: [2, 0, 1].map((n) => ({ ...pg(n, ['a1', 'b1'], 'a1'), volumeId: id })),
    }));
    assert.deepEqual(planReReplication(vols(['w', 'v']), ns), planReReplication(vols(['v', 'w']), ns));
    assert.deepEqual(planReReplication(vols(['v']), ns).map((g) => g.replicas[2]), ['c1', 'd1', 'c1']);
  });
});

describe('metadata/state machine: capacity that appears re-replicates', () => {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });

  const groups = async (): Promise<PlacementGroup[]> => sm.query('getPlacement', ['v']) as Promise<PlacementGroup[]>;

  it('a node back up after its PGs dropped it is added back to each (not in sync); a new node completes the rest', async () => {
    await addNodes(f, 3);
    const vol = await f.ok<Volume>('createVolume', { name: 'v', replicas: 3 });
    await f.ok('markDataNodeDown', 'n3');
    const short = await groups();
    assert.ok(short.every((g) => g.replicas.length === 2 && !g.replicas.includes('n3')));
    assert.equal((await sm.query('getVolume', ['v']) as Volume).state, 'degraded');

    // A heartbeat brings n3 back up: every PG gets it again, at a new epoch, out of sync.
    await f.ok('heartbeatDataNode', 'n3', 0, []);
    const back = await groups();
    for (const [i, g] of back.entries()) {
      const was = short[i];
      assert.ok(was !== undefined);
      assert.deepEqual(g.replicas, [...was.replicas, 'n3']);
      assert.equal(g.epoch, was.epoch + 1);
      assert.equal(g.addedAtEpoch?.n3, g.epoch);
      assert.deepEqual(g.inSync, was.inSync);
    }
    // The controller marks it in sync PG by PG; the volume is available once all are.
    await reportCaughtUp(f, sm);
    for (const g of back) await f.ok('markPgReplicaInSync', vol.id, g.pg, 'n3', g.epoch);
    assert.equal((await sm.query('getVolume', ['v']) as Volume).state, 'available');

    // Two nodes down, one PG kept its down primary (only in-sync copy): a new node fills the others.
    await f.ok('markDataNodeDown', 'n2');
    const one = (await groups())[0];
    assert.ok(one !== undefined);
    const follower = one.replicas.find((id) => id !== one.primary) ?? '';
    await f.ok('markPgReplicaOutOfSync', vol.id, one.pg, follower, one.epoch, one.primary, 0);
    await f.ok('markDataNodeDown', one.primary);
    await f.ok('registerDataNode', { id: 'n4', address: '127.0.0.1:9004', zone: 'zone-a', capacityBytes: 2 ** 40 });
    const after = await groups();
    const nodesNow = await sm.query('listDataNodes', []) as DataNode[];
    const up = new Set(nodesNow.filter((n) => n.state === 'up').map((n) => n.id));
    for (const g of after) {
      if (g.pg === one.pg) {
        assert.ok(!up.has(g.primary), 'the PG whose only in-sync copy is down is left alone');
        assert.ok(!g.replicas.includes('n4'));
      } else {
        assert.ok(g.replicas.includes('n4'), `pg ${g.pg} got the new node: ${JSON.stringify(g)}`);
      }
    }
  });
});
