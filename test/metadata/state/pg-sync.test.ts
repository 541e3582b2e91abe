import assert from 'node:assert/strict';
import type { ClusterSummary, StateMachine } from '../../../metadata/state/contract.js';
import type { PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, useStateMachine } from './helpers.js';

describe('metadata/state machine: primary claims and out-of-sync replicas', function () {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  let vol: Volume;
  let g: PlacementGroup;
  let stale: string;
  let other: string;

  beforeEach(async () => {
    await addNodes(f, 3);
    vol = await f.ok<Volume>('createVolume', { name: 'v', replicas: 3 });
    const first = (await sm.query('getPlacement', ['v']) as PlacementGroup[])[0];
    assert.ok(first !== undefined);
    g = first;
    const others = g.replicas.filter((id) => id !== g.primary);
    stale = others[0] ?? '';
    other = others[1] ?? '';
  });

  const group = async (): Promise<PlacementGroup> => {
    const pg = (await sm.query('getPlacement', ['v']) as PlacementGroup[]).find((p) => p.pg === g.pg);
    assert.ok(pg !== undefined);
    return pg;
  };
  const report = (nodeId: string, epoch: number, appliedSeq: number): Promise<unknown> =>
    f.ok('heartbeatDataNode', nodeId, 0, [{ volumeId: vol.id, pg: g.pg, epoch, appliedSeq }]);

  it('keeps the epoch on a first claim and moves to a new one when the same epoch is claimed again', async () => {
    await f.fails('FAILED_PRECONDITION', 'claimPgPrimary', vol.id, g.pg, stale, g.epoch);
    await f.fails('STALE_EPOCH', 'claimPgPrimary', vol.id, g.pg, g.primary, g.epoch + 1);
    const first = await f.ok<PlacementGroup>('claimPgPrimary', vol.id, g.pg, g.primary, g.epoch);
    assert.deepEqual(first, g);
    const second = await f.ok<PlacementGroup>('claimPgPrimary', vol.id, g.pg, g.primary, g.epoch);
    assert.deepEqual(second, { ...g, epoch: g.epoch + 1 });
    assert.deepEqual(await group(), second);
    // A node may take the pg-primary lease at the new epoch only.
    await f.fails('STALE_EPOCH', 'acquireLease', 'pg-primary', `${vol.id}/${g.pg}`, g.primary, 1000, null, g.epoch);
    await f.ok('acquireLease', 'pg-primary', `${vol.id}/${g.pg}`, g.primary, 1000, null, g.epoch + 1);
    // The moved epoch counts as claimed by the caller: claiming it again is another restart.
    assert.equal((await f.ok<PlacementGroup>('claimPgPrimary', vol.id, g.pg, g.primary, g.epoch + 1)).epoch, g.epoch + 2);
  });

  it('takes a replica out of sync on its primary\'s word only, degrades the volume and never names it primary', async () => {
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch, other, 5);
    await f.fails('STALE_EPOCH', 'markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch - 1 || 99, g.primary, 5);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaOutOfSync', vol.id, g.pg, g.primary, g.epoch, g.primary, 5);
    const out = await f.ok<PlacementGroup>('markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch, g.primary, 5);
    assert.deepEqual(out.inSync, g.replicas.filter((id) => id !== stale));
    assert.equal(out.epoch, g.epoch);
    assert.equal((await sm.query('getVolume', ['v']) as Volume).state, 'degraded');
    assert.deepEqual(await sm.query('listCatchUpFloors', []), [{ volumeId: vol.id, pg: g.pg, epoch: g.epoch, nodeId: stale, seq: 5 }]);
    const summary = await sm.query('clusterSummary', []) as ClusterSummary;
    assert.ok(summary.degradedPgs >= 1);
    // Primary and the other in-sync replica go down: the stale one is never primary; the PG waits.
    f.stampMs += 60_000;
    await f.ok('markDataNodeDown', g.primary);
    await f.ok('markDataNodeDown', other);
    const after = await group();
    assert.notEqual(after.primary, stale);
    assert.ok(!after.inSync.includes(stale));
    assert.ok((await sm.query('clusterSummary', []) as ClusterSummary).degradedPgs >= 1);
  });

  it('moves a PG on once its primary returns: a replica that went down meanwhile is dropped, the stale one stays out', async () => {
    // Both replicas failed writes: only the primary is in sync.
    await f.ok('markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch, g.primary, 5);
    await f.ok('markPgReplicaOutOfSync', vol.id, g.pg, other, g.epoch, g.primary, 5);
    f.stampMs += 60_000;
    await f.ok('markDataNodeDown', g.primary);
    await f.ok('markDataNodeDown', other);
    // Nobody else may serve: the PG keeps its down primary, and the down replica too.
    const stuck = await group();
    assert.deepEqual([stuck.primary, stuck.epoch, stuck.replicas], [g.primary, g.epoch, g.replicas]);
    // The primary comes back: the replica still down leaves the group, the PG moves on.
    await f.ok('heartbeatDataNode', g.primary, 0, []);
    const moved = await group();
    assert.deepEqual([moved.primary, moved.epoch, moved.inSync], [g.primary, g.epoch + 1, [g.primary]]);
    assert.deepEqual(moved.replicas, g.replicas.filter((id) => id !== other));
  });

  it('lets the replica rejoin only once it reports the floor at the current epoch', async () => {
    await f.ok('markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch, g.primary, 5);
    // A later failure raises the floor; a lower one never lowers it.
    await f.ok('markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch, g.primary, 9);
    await f.ok('markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch, g.primary, 7);
    await report(g.primary, g.epoch, 9);
    await report(stale, g.epoch, 8);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaInSync', vol.id, g.pg, stale, g.epoch);
    await report(stale, g.epoch - 1 || 0, 9);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaInSync', vol.id, g.pg, stale, g.epoch);
    await report(stale, g.epoch, 9);
    const back = await f.ok<PlacementGroup>('markPgReplicaInSync', vol.id, g.pg, stale, g.epoch);
    assert.deepEqual(back.inSync, g.replicas);
    assert.equal((await sm.query('getVolume', ['v']) as Volume).state, 'available');
    assert.deepEqual(await sm.query('listCatchUpFloors', []), []);
  });

  it('forgets floors of an older epoch and drops the records with the volume', async () => {
    await f.ok('markPgReplicaOutOfSync', vol.id, g.pg, stale, g.epoch, g.primary, 50);
    await f.ok('claimPgPrimary', vol.id, g.pg, g.primary, g.epoch);
    const bumped = await f.ok<PlacementGroup>('claimPgPrimary', vol.id, g.pg, g.primary, g.epoch);
    // A claim carries the floors over to the new epoch: the restarted primary did not catch it up.
    assert.deepEqual((await sm.query('listCatchUpFloors', []) as { seq: number }[]).map((x) => x.seq), [50]);
    // A failover (new epoch from markDataNodeDown) leaves the floor behind.
    f.stampMs += 60_000;
    await f.ok('markDataNodeDown', other);
    assert.ok((await group()).epoch > bumped.epoch);
    assert.deepEqual(await sm.query('listCatchUpFloors', []), []);
    await f.ok('deleteVolume', 'v');
    assert.deepEqual(await sm.query('listCatchUpFloors', []), []);
  });
});
