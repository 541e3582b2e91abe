/**
 * Issue #13: the metadata rules the data-plane simulator found unsafe (test/sim-dataplane README,
 * "Bugs the simulator found"), each replayed as commands on a real state machine, and the
 * refusal of pg-primary leases to nodes that may not lead. Every scenario fails on the old rules.
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { isFresh, leaseRefusal, resyncVerdict } from '../../../metadata/state/logic/pg-safety.js';
import type { Lease, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, t0, useStateMachine } from './helpers.js';

describe('metadata/state pg-safety rules (pure)', () => {
  const pg: PlacementGroup = { volumeId: 'v', pg: 0, replicas: ['a', 'b', 'c'], primary: 'a', epoch: 4, inSync: ['a', 'b'] };
  const heard = (lastHeartbeatAtMs: number, state: 'up' | 'down' = 'up') => ({ id: 'a', state, lastHeartbeatAtMs });

  it('counts a node fresh within two heartbeat intervals of the stamp, and never a down one', () => {
    assert.equal(isFresh(heard(0), 2000), true);
    assert.equal(isFresh(heard(0), 2001), false);
    assert.equal(isFresh({ ...heard(0), heartbeatIntervalMs: 200 }, 401), false);
    assert.equal(isFresh(heard(0, 'down'), 0), false);
  });

  it('takes a replica back in sync only against an in-sync primary\'s report at the current epoch', () => {
    const at = (epoch: number, appliedSeq: number) => ({ volumeId: 'v', pg: 0, epoch, appliedSeq });
    assert.deepEqual(resyncVerdict(pg, 'c', at(4, 7), at(4, 7), 0), { ok: true });
    assert.equal(resyncVerdict(pg, 'c', at(4, 0), at(3, 0), 0).ok, false, 'primary report of an older epoch');
    assert.equal(resyncVerdict(pg, 'c', at(4, 6), at(4, 7), 0).ok, false, 'behind the primary');
    assert.equal(resyncVerdict(pg, 'c', at(4, 7), at(4, 7), 8).ok, false, 'below its floor');
    assert.equal(resyncVerdict({ ...pg, inSync: ['b'] }, 'c', at(4, 0), at(4, 0), 0).ok, false, 'primary not in sync');
  });

  it('refuses a pg-primary lease to an unknown, down, silent or not-in-sync node', () => {
    assert.equal(leaseRefusal(pg, 'a', heard(1000), 3000), null);
    assert.match(leaseRefusal(pg, 'x', undefined, 0) ?? '', /not a registered data node/);
    assert.match(leaseRefusal(pg, 'a', heard(1000, 'down'), 1000) ?? '', /marked down/);
    assert.equal(leaseRefusal(pg, 'a', heard(1000), 5000), null);
    assert.match(leaseRefusal(pg, 'a', heard(1000), 5001) ?? '', /last heard from 4001 ms ago/);
    assert.match(leaseRefusal({ ...pg, inSync: ['b'] }, 'a', heard(1000), 1000) ?? '', /not in sync/);
  });
});

describe('metadata/state machine: the simulator\'s metadata findings (issue #13)', function () {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  let vol: Volume;
  let g: PlacementGroup;
  let a: string;
  let b: string;

  beforeEach(async () => {
    await addNodes(f, 3);
    vol = await f.ok<Volume>('createVolume', { name: 'v', replicas: 3 });
    g = await group();
    [a, b] = g.replicas.filter((id) => id !== g.primary) as [string, string];
  });

  async function group(): Promise<PlacementGroup> {
    const found = (await sm.query('getPlacement', ['v']) as PlacementGroup[]).find((p) => p.pg === 0);
    assert.ok(found !== undefined);
    return found;
  }
  const beat = (id: string, reports: { epoch: number; appliedSeq: number }[] = []): Promise<unknown> =>
    f.ok('heartbeatDataNode', id, 0, reports.map((r) => ({ volumeId: vol.id, pg: 0, ...r })));
  const register = (id: string, extra: Record<string, unknown>): Promise<unknown> =>
    f.ok('registerDataNode', { id, address: `127.0.0.1:${9000 + Number(id.slice(1))}`, zone: 'zone-a', capacityBytes: 2 ** 40, ...extra });

  it('seed 107: a replica not heard from lately is not promoted, even while it is in sync and not marked down', async () => {
    await f.ok('markPgReplicaOutOfSync', vol.id, 0, b, g.epoch, g.primary, 3); // in sync: primary and a
    f.stampMs += 10_000; // the primary and a fall silent (a was wiped); b beats on
    await beat(b);
    await f.ok('markDataNodeDown', g.primary);
    const left = await group();
    assert.deepEqual([left.primary, left.epoch, left.inSync], [g.primary, g.epoch, [g.primary, a]], 'a, silent, must not serve the PG');
    // a was only slow: its next beat lets the PG move on to it.
    await beat(a);
    const moved = await group();
    assert.deepEqual([moved.primary, moved.epoch], [a, g.epoch + 1]);
    assert.ok(!moved.replicas.includes(g.primary));
  });

  it('seed 82: a wiped primary that registers again leaves the in-sync sets, leads nothing, and the PG moves once an in-sync replica is up', async () => {
    await f.ok('markPgReplicaOutOfSync', vol.id, 0, b, g.epoch, g.primary, 3); // in sync: primary and a
    f.stampMs += 10_000;
    await beat(b);
    await f.ok('markDataNodeDown', g.primary); // a is silent: PG left alone
    await f.ok('markDataNodeDown', a); // primary down: PG left alone
    assert.deepEqual((await group()).inSync, [g.primary, a]);
    // The primary's disk was replaced: its daemon registers with an empty store.
    await register(g.primary, { emptyStore: true });
    const wiped = await group();
    assert.deepEqual([wiped.primary, wiped.epoch, wiped.inSync], [g.primary, g.epoch, [a]], 'an empty primary counts for nothing');
    const res = `${vol.id}/0`;
    const refused = await f.fails('FAILED_PRECONDITION', 'acquireLease', 'pg-primary', res, g.primary, 4000, null, g.epoch);
    assert.match(refused.message, /not in sync/);
    // It may not claim its epoch nor take replicas out of sync (that used to trip an invariant and stop the member).
    await f.fails('FAILED_PRECONDITION', 'claimPgPrimary', vol.id, 0, g.primary, g.epoch);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaOutOfSync', vol.id, 0, a, g.epoch, g.primary, 4);
    // Nor is anything counted in sync against it (seed 103's second half).
    await beat(g.primary, [{ epoch: g.epoch, appliedSeq: 0 }]);
    await beat(b, [{ epoch: g.epoch, appliedSeq: 3 }]);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaInSync', vol.id, 0, b, g.epoch);
    // a, in sync, comes back: the PG moves to it, the wiped node stays as an out-of-sync replica.
    await beat(a);
    const moved = await group();
    assert.deepEqual([moved.primary, moved.epoch, moved.inSync], [a, g.epoch + 1, [a]]);
    assert.ok(moved.replicas.includes(g.primary));
    await f.ok('acquireLease', 'pg-primary', res, a, 4000, null, moved.epoch);
  });

  it('seed 103: a replacement is not counted in sync against the primary\'s report from before it was added', async () => {
    await addNodesFrom(4);
    await beat(g.primary, [{ epoch: g.epoch, appliedSeq: 0 }]); // nothing written yet at that epoch...
    await beat(a);
    await f.ok('markDataNodeDown', b);
    const after = await group();
    const added = after.replicas.find((id) => !after.inSync.includes(id));
    assert.ok(added !== undefined && after.epoch === g.epoch + 1);
    await beat(added, [{ epoch: after.epoch, appliedSeq: 0 }]); // ...the replacement holds nothing
    const err = await f.fails('FAILED_PRECONDITION', 'markPgReplicaInSync', vol.id, 0, added, after.epoch);
    assert.match(err.message, /has not reported at epoch/);
    // The primary took writes at the new epoch: the replacement is in sync only once it has them too.
    await beat(g.primary, [{ epoch: after.epoch, appliedSeq: 5 }]);
    await f.fails('FAILED_PRECONDITION', 'markPgReplicaInSync', vol.id, 0, added, after.epoch);
    await beat(added, [{ epoch: after.epoch, appliedSeq: 5 }]);
    assert.ok((await f.ok<PlacementGroup>('markPgReplicaInSync', vol.id, 0, added, after.epoch)).inSync.includes(added));
  });

  it('a wiped node that registers again leaves every in-sync set and its old reports go', async () => {
    await beat(a, [{ epoch: g.epoch, appliedSeq: 9 }]);
    await register(a, { emptyStore: true });
    const groups = await sm.query('getPlacement', ['v']) as PlacementGroup[];
    assert.ok(groups.every((p) => !p.inSync.includes(a)));
    assert.equal((await sm.query('getVolume', ['v']) as Volume).state, 'degraded');
    const reports = await sm.query('listPgReports', []) as { nodeId: string }[];
    assert.ok(!reports.some((r) => r.nodeId === a), 'its reports of the lost copy must not count');
    // A registration that is not wiped changes no in-sync set; a bad flag changes nothing at all.
    await register(b, { emptyStore: false, heartbeatIntervalMs: 200 });
    assert.ok((await sm.query('getPlacement', ['v']) as PlacementGroup[]).every((p) => p.inSync.includes(b)));
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: b, address: '127.0.0.1:9002', zone: 'zone-b', capacityBytes: 1, emptyStore: 'yes' });
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: b, address: '127.0.0.1:9002', zone: 'zone-b', capacityBytes: 1, heartbeatIntervalMs: 10 });
    assert.ok((await sm.query('getPlacement', ['v']) as PlacementGroup[]).every((p) => p.inSync.includes(b)));
  });

  it('grants and renews pg-primary leases only to registered nodes heard from lately', async () => {
    const res = `${vol.id}/0`;
    await f.fails('FAILED_PRECONDITION', 'acquireLease', 'pg-primary', res, 'ghost', 4000);
    const lease = await f.ok<Lease>('acquireLease', 'pg-primary', res, g.primary, 4000, null, g.epoch);
    f.stampMs = t0 + 2500; // no heartbeat for 2.5 s (limit: max(2 s, 4 intervals of 1 s) = 4 s): still fine
    await f.ok('renewLease', lease.id, 4000);
    f.stampMs = t0 + 4001;
    const err = await f.fails('FAILED_PRECONDITION', 'renewLease', lease.id, 4000);
    assert.match(err.message, /last heard from 4001 ms ago/);
    await f.fails('FAILED_PRECONDITION', 'acquireLease', 'pg-primary', res, g.primary, 4000, null, g.epoch);
    // The refused renewal changed nothing: the lease runs out at its old expiry.
    const kept = (await sm.query('listLeases', []) as Lease[]).find((l) => l.id === lease.id);
    assert.equal(kept?.expiresAtMs, t0 + 2500 + 4000);
    await beat(g.primary);
    await f.ok('renewLease', lease.id, 4000);
  });

  async function addNodesFrom(n: number): Promise<void> {
    await register(`n${n}`, {});
  }
});
