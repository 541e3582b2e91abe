import assert from 'node:assert/strict';
import type { ClusterSummary, StateMachine } from '../../../metadata/state/contract.js';
import type { DataNode, Lease, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, reportCaughtUp, t0, useStateMachine } from './helpers.js';

describe('metadata/state machine: leases, node failure, cluster summary', function () {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  let rwo: Volume;
  let rox: Volume;
  let rwx: Volume;

  beforeEach(async () => {
    await addNodes(f, 4);
    rwo = await f.ok<Volume>('createVolume', { name: 'rwo' });
    rox = await f.ok<Volume>('createVolume', { name: 'rox', accessMode: 'ReadOnlyMany' });
    rwx = await f.ok<Volume>('createVolume', { name: 'rwx', type: 'shared' });
  });

  it('grants one pg-primary lease per PG, renews for the same holder, refuses others until expiry', async () => {
    const res = `${rwo.id}/3`;
    const l1 = await f.ok<Lease>('acquireLease', 'pg-primary', res, 'n1', 1000);
    assert.deepEqual([l1.kind, l1.resource, l1.holder, l1.mode, l1.grantedAtMs, l1.expiresAtMs], ['pg-primary', res, 'n1', null, t0, t0 + 1000]);
    f.stampMs += 500;
    const again = await f.ok<Lease>('acquireLease', 'pg-primary', res, 'n1', 1000);
    assert.deepEqual([again.id, again.expiresAtMs], [l1.id, t0 + 1500]);
    const err = await f.fails('LEASE_CONFLICT', 'acquireLease', 'pg-primary', res, 'n2', 1000);
    assert.match(err.message, /held by n1/);
    await f.ok('acquireLease', 'pg-primary', `${rwo.id}/4`, 'n2', 1000);
    // Expired at exactly expiresAtMs: never blocks.
    f.stampMs = t0 + 1500;
    const l2 = await f.ok<Lease>('acquireLease', 'pg-primary', res, 'n2', 1000);
    assert.notEqual(l2.id, l1.id);
    const leases = await sm.query('listLeases', []) as Lease[];
    assert.deepEqual(leases.filter((l) => l.resource === res).map((l) => l.holder), ['n2']);
  });

  it('validates lease arguments', async () => {
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'pg-primary', `${rwo.id}/16`, 'n1', 1000);
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'pg-primary', `${rwo.id}/x`, 'n1', 1000);
    await f.fails('VOLUME_NOT_FOUND', 'acquireLease', 'pg-primary', 'nope/1', 'n1', 1000);
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'pg-primary', `${rwo.id}/1`, 'n1', 1000, 'rw');
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'lock', rwo.id, 'n1', 1000);
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'mount', 'rwo', 'h', 0);
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'mount', 'rwo', 'h', 11 * 60 * 1000);
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'mount', 'rwo', '', 1000);
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'mount', 'rwo', 'h', 1000, 'rx');
    await f.fails('VOLUME_NOT_FOUND', 'acquireLease', 'mount', 'nope', 'h', 1000);
  });

  it('enforces ReadWriteOnce, ReadOnlyMany and ReadWriteMany on mount leases', async () => {
    const m = await f.ok<Lease>('acquireLease', 'mount', 'rwo', 'host-1', 10_000);
    assert.deepEqual([m.resource, m.mode], [rwo.id, 'rw']);
    await f.fails('LEASE_CONFLICT', 'acquireLease', 'mount', 'rwo', 'host-2', 10_000, 'ro');
    await f.fails('LEASE_CONFLICT', 'acquireLease', 'mount', rwo.id, 'host-2', 10_000, 'rw');
    await f.ok('acquireLease', 'mount', 'rox', 'host-1', 10_000, 'ro');
    await f.ok('acquireLease', 'mount', 'rox', 'host-2', 10_000, 'ro');
    await f.fails('INVALID_ARGUMENT', 'acquireLease', 'mount', 'rox', 'host-3', 10_000, 'rw');
    await f.ok('acquireLease', 'mount', 'rwx', 'host-1', 10_000, 'rw');
    await f.ok('acquireLease', 'mount', 'rwx', 'host-2', 10_000, 'rw');
    await f.ok('acquireLease', 'mount', 'rwx', 'host-3', 10_000, 'ro');
    const onRwx = (await sm.query('listLeases', []) as Lease[]).filter((l) => l.resource === rwx.id);
    assert.equal(onRwx.length, 3);
    assert.ok(rox.accessMode === 'ReadOnlyMany');
  });

  it('renews, releases (idempotently) and expires leases', async () => {
    const m = await f.ok<Lease>('acquireLease', 'mount', 'rwo', 'host-1', 1000);
    f.stampMs += 900;
    const renewed = await f.ok<Lease>('renewLease', m.id, 1000);
    assert.equal(renewed.expiresAtMs, t0 + 1900);
    await f.fails('LEASE_NOT_FOUND', 'renewLease', 'no-such-lease', 1000);
    await f.fails('INVALID_ARGUMENT', 'renewLease', m.id, -1);
    assert.equal(await f.ok('releaseLease', m.id), null);
    assert.equal(await f.ok('releaseLease', m.id), null);
    await f.fails('LEASE_NOT_FOUND', 'renewLease', m.id, 1000);
    const a = await f.ok<Lease>('acquireLease', 'mount', 'rwx', 'h1', 1000);
    await f.ok('acquireLease', 'mount', 'rwx', 'h2', 5000);
    f.stampMs += 1000;
    await f.fails('LEASE_NOT_FOUND', 'renewLease', a.id, 1000);
    f.stampMs += 1000;
    await f.ok('acquireLease', 'pg-primary', `${rwo.id}/0`, 'n1', 500);
    f.stampMs += 500;
    // h1's lease (a failed renew changes nothing, so it is still stored) and the pg-primary one.
    assert.deepEqual(await f.ok('expireLeases'), { expired: 2 });
    const left = await sm.query('listLeases', []) as Lease[];
    assert.deepEqual(left.map((l) => l.holder), ['h2']);
    assert.deepEqual(await f.ok('expireLeases'), { expired: 0 });
  });

  it('deletes a volume with its expired and pg-primary leases', async () => {
    await f.ok('acquireLease', 'mount', 'rwo', 'host-1', 1000);
    await f.ok('acquireLease', 'pg-primary', `${rwo.id}/0`, 'n1', 60_000);
    f.stampMs += 1000;
    await f.ok('deleteVolume', 'rwo');
    const left = await sm.query('listLeases', []) as Lease[];
    assert.deepEqual(left, []);
  });

  it('deletes a mounted volume with its live mount leases (the mount managers unmount it)', async () => {
    await f.ok('acquireLease', 'mount', 'rwx', 'host-1', 60_000);
    await f.ok('acquireLease', 'mount', 'rwx', 'host-2', 60_000, 'ro');
    await f.ok('deleteVolume', 'rwx');
    assert.deepEqual((await sm.query('listLeases', []) as Lease[]).filter((l) => l.resource === rwx.id), []);
  });

  it('marks a node down: moves primaries to in-sync replicas, adds replacements, degrades volumes; a heartbeat brings it back', async () => {
    const before = await sm.query('getPlacement', ['rwo']) as PlacementGroup[];
    const onN1 = before.filter((pg) => pg.replicas.includes('n1'));
    assert.ok(onN1.length > 0);
    const primaryOn1 = before.find((pg) => pg.primary === 'n1');
    assert.ok(primaryOn1 !== undefined);
    await f.ok('acquireLease', 'pg-primary', `${rwo.id}/${primaryOn1.pg}`, 'n1', 60_000);
    f.stampMs += 10_000;
    // The survivors heartbeat on: only replicas heard from lately may be promoted (pg-safety.test.ts).
    for (const id of ['n2', 'n3', 'n4']) await f.ok('heartbeatDataNode', id, 0, []);
    const { node, changed } = await f.ok<{ node: DataNode; changed: PlacementGroup[] }>('markDataNodeDown', 'n1');
    assert.equal(node.state, 'down');
    assert.equal(changed.length, 3 * onN1.length);
    const after = await sm.query('getPlacement', ['rwo']) as PlacementGroup[];
    for (const pg of after) {
      const old = before.find((p) => p.pg === pg.pg);
      assert.ok(old !== undefined);
      if (!old.replicas.includes('n1')) {
        assert.deepEqual(pg, old);
        continue;
      }
      assert.ok(!pg.replicas.includes('n1') && !pg.inSync.includes('n1') && pg.primary !== 'n1');
      assert.ok(pg.inSync.includes(pg.primary));
      assert.equal(pg.epoch, old.epoch + 1);
      assert.equal(pg.replicas.length, 3, 'a fourth node was free for a replacement');
      assert.equal(pg.inSync.length, 2);
    }
    assert.equal((await sm.query('getVolume', ['rwo']) as Volume).state, 'degraded');
    // The old primary's lease is void so the new primary can take it at once.
    const newPrimary = after.find((pg) => pg.pg === primaryOn1.pg)?.primary;
    await f.ok('acquireLease', 'pg-primary', `${rwo.id}/${primaryOn1.pg}`, newPrimary, 60_000);
    const summary = await sm.query('clusterSummary', []) as ClusterSummary;
    assert.deepEqual([summary.volumes, summary.pgs, summary.degradedPgs, summary.underReplicatedPgs], [3, 48, 3 * onN1.length, 0]);
    assert.equal(summary.dataNodes.find((n) => n.id === 'n1')?.state, 'down');
    // Idempotent.
    const again = await f.ok<{ changed: PlacementGroup[] }>('markDataNodeDown', 'n1');
    assert.deepEqual(again.changed, []);
    await f.fails('NODE_NOT_FOUND', 'markDataNodeDown', 'n9');
    const back = await f.ok<DataNode>('heartbeatDataNode', 'n1', 10, []);
    assert.equal(back.state, 'up');
  });

  it('takes resynced replacements into the in-sync set (epoch-fenced) and brings the volume back to available', async () => {
    const { changed } = await f.ok<{ changed: PlacementGroup[] }>('markDataNodeDown', 'n2');
    const mine = changed.filter((pg) => pg.volumeId === rwo.id);
    assert.ok(mine.length > 0);
    const first = mine[0];
    assert.ok(first !== undefined);
    const replacement = first.replicas.find((id) => !first.inSync.includes(id));
    assert.ok(replacement !== undefined);
    await f.fails('STALE_EPOCH', 'markPgReplicaInSync', rwo.id, first.pg, replacement, first.epoch - 1);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaInSync', rwo.id, first.pg, 'n2', first.epoch);
    await f.fails('INVALID_ARGUMENT', 'markPgReplicaInSync', rwo.id, 16, replacement, first.epoch);
    await f.fails('VOLUME_NOT_FOUND', 'markPgReplicaInSync', 'nope', 0, replacement, 1);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaInSync', rwo.id, first.pg, replacement, first.epoch); // nothing reported yet
    await reportCaughtUp(f, sm);
    for (const pg of mine) {
      const added = pg.replicas.filter((id) => !pg.inSync.includes(id));
      for (const id of added) {
        const r = await f.ok<PlacementGroup>('markPgReplicaInSync', 'rwo', pg.pg, id, pg.epoch);
        assert.deepEqual(r.inSync, r.replicas.filter((x) => r.inSync.includes(x)));
        assert.ok(r.inSync.includes(id));
      }
    }
    assert.equal((await sm.query('getVolume', ['rwo']) as Volume).state, 'available');
    // Idempotent for a replica already in sync.
    const again = await f.ok<PlacementGroup>('markPgReplicaInSync', 'rwo', first.pg, first.primary, first.epoch);
    assert.equal(again.inSync.length, 3);
    assert.equal((await sm.query('getVolume', ['rox']) as Volume).state, 'degraded');
  });

  it('counts under-replicated PGs when no replacement node exists', async () => {
    await f.ok('markDataNodeDown', 'n1');
    await f.ok('markDataNodeDown', 'n2');
    const summary = await sm.query('clusterSummary', []) as ClusterSummary;
    assert.ok(summary.underReplicatedPgs > 0);
    assert.ok(summary.degradedPgs >= summary.underReplicatedPgs);
    await f.fails('INSUFFICIENT_NODES', 'createVolume', { name: 'more' });
  });
});
