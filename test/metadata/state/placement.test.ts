import assert from 'node:assert/strict';
import type { PlacementGroup } from '../../../proto/metadata-types.js';
import {
  chooseReplicas, emptyLoad, loadOf, pgsPerVolume, placeVolume, planNodeDown, staleDataNodes, type PlacementNode,
} from '../../../metadata/state/logic/placement.js';

function nodes(spec: [id: string, zone: string][], capacityBytes = 1000): PlacementNode[] {
  return spec.map(([id, zone]) => ({ id, zone, capacityBytes, usedBytes: 0, state: 'up' }));
}

const sixInThree = nodes([['a1', 'a'], ['a2', 'a'], ['b1', 'b'], ['b2', 'b'], ['c1', 'c'], ['c2', 'c']]);

function counts(pgs: PlacementGroup[], pick: (pg: PlacementGroup) => string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const pg of pgs) for (const id of pick(pg)) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

function spread(m: Map<string, number>, ids: string[]): number {
  const v = ids.map((id) => m.get(id) ?? 0);
  return Math.max(...v) - Math.min(...v);
}

describe('metadata/state placement (pure)', () => {
  it('puts the replicas of every PG in distinct zones when asked to spread', () => {
    const pgs = placeVolume('vol', 3, 'prefer', sixInThree, emptyLoad());
    assert.ok(pgs !== null);
    assert.equal(pgs.length, pgsPerVolume);
    const zoneOf = new Map(sixInThree.map((n) => [n.id, n.zone]));
    for (const pg of pgs) assert.equal(new Set(pg.replicas.map((id) => zoneOf.get(id))).size, 3, JSON.stringify(pg));
  });

  it('balances PGs and primaries over nodes, also across several volumes', () => {
    const load = emptyLoad();
    const all: PlacementGroup[] = [];
    for (const v of ['v1', 'v2', 'v3']) all.push(...(placeVolume(v, 3, 'prefer', sixInThree, load) ?? []));
    const ids = sixInThree.map((n) => n.id);
    assert.ok(spread(counts(all, (pg) => pg.replicas), ids) <= 1, 'replica load unbalanced');
    assert.ok(spread(counts(all, (pg) => [pg.primary]), ids) <= 1, 'primaries unbalanced');
  });

  it('is deterministic and breaks ties by node id, not by input order', () => {
    const a = placeVolume('v', 2, 'none', sixInThree, emptyLoad());
    const b = placeVolume('v', 2, 'none', [...sixInThree].reverse(), emptyLoad());
    assert.deepEqual(a, b);
    assert.deepEqual(a?.[0]?.replicas, ['a1', 'a2']);
  });

  it('prefers nodes with fewer PGs, then more free space', () => {
    const ns = nodes([['x', 'z'], ['y', 'z'], ['w', 'z']]);
    const load = emptyLoad();
    load.pgs.set('x', 5);
    assert.deepEqual(chooseReplicas({ nodes: ns, load, count: 2, zoneSpread: 'none' }), ['w', 'y']);
    const roomy = ns.map((n) => (n.id === 'y' ? { ...n, capacityBytes: 5000 } : n));
    assert.deepEqual(chooseReplicas({ nodes: roomy, load, count: 1, zoneSpread: 'none' }), ['y']);
  });

  it('skips nodes that are not up and falls back to a used zone under prefer', () => {
    const ns = nodes([['a1', 'a'], ['a2', 'a'], ['b1', 'b']]).map((n) => (n.id === 'b1' ? { ...n, state: 'down' as const } : n));
    assert.deepEqual(chooseReplicas({ nodes: ns, load: emptyLoad(), count: 2, zoneSpread: 'prefer' }), ['a1', 'a2']);
    assert.deepEqual(chooseReplicas({ nodes: ns, load: emptyLoad(), count: 2, zoneSpread: 'require' }), ['a1']);
    assert.equal(placeVolume('v', 3, 'none', ns, emptyLoad()), null);
  });

  it('finds up nodes whose last heartbeat is at least the timeout old', () => {
    const hb = [
      { id: 'b', state: 'up' as const, lastHeartbeatAtMs: 1000 },
      { id: 'a', state: 'up' as const, lastHeartbeatAtMs: 0 },
      { id: 'c', state: 'down' as const, lastHeartbeatAtMs: 0 },
      { id: 'd', state: 'up' as const, lastHeartbeatAtMs: 1001 },
    ];
    assert.deepEqual(staleDataNodes(hb, 6000, 5000), ['a', 'b']);
    assert.deepEqual(staleDataNodes(hb, 4999, 5000), []);
  });

  describe('planNodeDown', () => {
    /** Every up node promotable (heard from lately); pg-safety.test.ts covers the others. */
    const upIds = (list: readonly PlacementNode[]): Set<string> => new Set(list.filter((n) => n.state === 'up').map((n) => n.id));
    const ns = nodes([['a1', 'a'], ['b1', 'b'], ['c1', 'c'], ['a2', 'a']]);
    const pg = (n: number, replicas: string[], primary: string, inSync = replicas): PlacementGroup =>
      ({ volumeId: 'v', pg: n, replicas, primary, epoch: 3, inSync });

    it('promotes the first in-sync survivor, adds a replacement out of sync, bumps the epoch', () => {
      const down = ns.map((n) => (n.id === 'a1' ? { ...n, state: 'down' as const } : n));
      const changed = planNodeDown('a1', [{ id: 'v', replicas: 3, zoneSpread: 'prefer', pgs: [pg(0, ['a1', 'b1', 'c1'], 'a1')] }], down, upIds(down));
      assert.deepEqual(changed, [{ volumeId: 'v', pg: 0, replicas: ['b1', 'c1', 'a2'], primary: 'b1', epoch: 4, inSync: ['b1', 'c1'], addedAtEpoch: { a2: 4 } }]);
    });

    it('keeps a healthy primary and leaves PGs without the node untouched', () => {
      const down = ns.map((n) => (n.id === 'c1' ? { ...n, state: 'down' as const } : n));
      const changed = planNodeDown('c1', [{ id: 'v', replicas: 3, zoneSpread: 'prefer', pgs: [pg(0, ['a1', 'b1', 'c1'], 'a1'), pg(1, ['a1', 'b1', 'a2'], 'b1')] }], down, upIds(down));
      assert.equal(changed.length, 1);
      assert.deepEqual([changed[0]?.pg, changed[0]?.primary, changed[0]?.replicas], [0, 'a1', ['a1', 'b1', 'a2']]);
    });

    it('skips an in-sync survivor that is itself down', () => {
      const down = ns.map((n) => (n.id === 'a1' || n.id === 'b1' ? { ...n, state: 'down' as const } : n));
      const changed = planNodeDown('a1', [{ id: 'v', replicas: 3, zoneSpread: 'none', pgs: [pg(0, ['a1', 'b1', 'c1'], 'a1')] }], down, upIds(down));
      assert.equal(changed[0]?.primary, 'c1');
    });

    it('leaves a PG whose only in-sync copy is on the node alone', () => {
      const down = ns.map((n) => (n.id === 'a1' ? { ...n, state: 'down' as const } : n));
      const changed = planNodeDown('a1', [{ id: 'v', replicas: 2, zoneSpread: 'none', pgs: [pg(0, ['a1', 'b1'], 'a1', ['a1'])] }], down, upIds(down));
      assert.deepEqual(changed, []);
    });

    it('spreads replacements by load and stays short when no node is free', () => {
      const ns3 = nodes([['a1', 'a'], ['b1', 'b'], ['c1', 'c']]).map((n) => (n.id === 'a1' ? { ...n, state: 'down' as const } : n));
      const changed = planNodeDown('a1', [{ id: 'v', replicas: 3, zoneSpread: 'prefer', pgs: [pg(0, ['a1', 'b1', 'c1'], 'b1')] }], ns3, upIds(ns3));
      assert.deepEqual(changed[0]?.replicas, ['b1', 'c1']);
      const many = nodes([['a1', 'a'], ['b1', 'b'], ['c1', 'c'], ['d1', 'd'], ['e1', 'e']]);
      const pgs = Array.from({ length: 8 }, (_, i) => pg(i, ['a1', 'b1', 'c1'], 'a1'));
      const manyDown = many.map((n) => (n.id === 'a1' ? { ...n, state: 'down' as const } : n));
      const after = planNodeDown('a1', [{ id: 'v', replicas: 3, zoneSpread: 'prefer', pgs }], manyDown, upIds(manyDown));
      const added = counts(after, (p) => p.replicas.filter((id) => id === 'd1' || id === 'e1'));
      assert.deepEqual([added.get('d1'), added.get('e1')], [4, 4]);
      assert.deepEqual(loadOf(after).pgs.get('a1'), undefined);
    });
  });
});
