/**
 * pg-primary leases asked with an epoch (as data nodes ask them): granted only to the PG's
 * primary at exactly that epoch, so a deposed primary cannot take the lease back.
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { Lease, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, useStateMachine } from './helpers.js';

describe('metadata/state machine: pg-primary leases fenced by epoch', function () {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  let vol: Volume;

  beforeEach(async () => {
    await addNodes(f, 4);
    vol = await f.ok<Volume>('createVolume', { name: 'v' });
  });

  it('grants the lease to the primary at the current epoch only', async () => {
    const g = (await sm.query('getPlacement', [vol.id]) as PlacementGroup[])[0];
    assert.ok(g);
    const res = `${vol.id}/0`;
    const other = g.replicas.find((id) => id !== g.primary) ?? 'n9';
    await f.fails('FAILED_PRECONDITION', 'acquireLease', 'pg-primary', res, other, 1000, null, g.epoch);
    await f.fails('STALE_EPOCH', 'acquireLease', 'pg-primary', res, g.primary, 1000, null, g.epoch + 1);
    const l = await f.ok<Lease>('acquireLease', 'pg-primary', res, g.primary, 1000, null, g.epoch);
    assert.equal(l.holder, g.primary);
  });

  it('refuses the old primary after a failover, and grants the new one', async () => {
    const g = (await sm.query('getPlacement', [vol.id]) as PlacementGroup[])[0];
    assert.ok(g);
    const res = `${vol.id}/0`;
    await f.ok<Lease>('acquireLease', 'pg-primary', res, g.primary, 1000, null, g.epoch);
    await f.ok('markDataNodeDown', g.primary);
    const after = (await sm.query('getPlacement', [vol.id]) as PlacementGroup[])[0];
    assert.ok(after && after.epoch > g.epoch && after.primary !== g.primary);
    await f.fails('STALE_EPOCH', 'acquireLease', 'pg-primary', res, g.primary, 1000, null, g.epoch);
    await f.fails('FAILED_PRECONDITION', 'acquireLease', 'pg-primary', res, g.primary, 1000, null, after.epoch);
    const l = await f.ok<Lease>('acquireLease', 'pg-primary', res, after.primary, 1000, null, after.epoch);
    assert.equal(l.holder, after.primary);
  });
});
