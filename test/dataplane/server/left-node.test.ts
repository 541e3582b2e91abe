/**
 * A node the group no longer names records no epoch of it (shell simulator seed 2813): three
 * Replicators in this process on MemoryBlockStores, a MemoryNetwork and a ManualClock. Its
 * placement step reads a recorded epoch as "this copy was part of the group there" and skips the
 * hand-back, so an old forward that reaches it late must be refused before its PG's core record
 * opens (which records the group's epoch).
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import type { MemoryNetwork } from '../../../dataplane/server/memory-transport.js';
import { pattern } from '../helpers.js';
import { MemoryWorld, pg } from './memory-world.js';

describe('a node the group left', () => {
  const mw = new MemoryWorld('tv-left', 7460);
  afterEach(() => { mw.close(); });

  it('refuses a late forward of an older epoch as STALE_EPOCH and keeps its own recorded epoch', async () => {
    let net: MemoryNetwork | undefined;
    const { stores, sources } = await mw.start((_, network) => { net = network; return null; });
    assert.ok(net !== undefined);
    const [a] = mw.blocks(1);
    assert.ok(a !== undefined);
    await stores.n3.write({ kind: 'put', address: a, pg, seq: 1, epoch: 1, data: pattern(1, 64) }, { sync: true });
    // The group moved to epoch 2 without n3; n1's forward of epoch 1 arrives only now.
    sources.n3.set(mw.placement(2, 'n2', ['n1', 'n2']));
    const late = net.transport(mw.addresses.n1).replicate(mw.addresses.n3, { kind: 'put', address: a, pg, seq: 2, epoch: 1, data: pattern(2, 64) }, { sync: true, primary: mw.addresses.n1, trimSeq: 0 });
    await assert.rejects(late, (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
    const st = await stores.n3.pgState(mw.volumeId, pg);
    assert.equal(st.epoch, 1, 'the left node recorded the epoch of a group it is not in');
    assert.equal(st.appliedSeq, 1, 'the late forward was not stored');
  });
});
