/**
 * The test-only `readFromReplica` break reaches the block server's read admission
 * (`PrimaryPath.admitPrimaryRead` asks the core's `replicaServesAnyRead`): three Replicators in
 * this process on MemoryBlockStores, a MemoryNetwork and a ManualClock. Intact, a client read that
 * names an epoch is the primary's (NOT_PRIMARY elsewhere, since 2026-12-07: before, any member
 * served it from its own copy, test/sim-dataplane/README.md "readFromReplica and the server's
 * reads"); with the break a replica serves it at any epoch.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import { MemoryWorld, pg } from './memory-world.js';

describe('readFromReplica in the block server', () => {
  const mw = new MemoryWorld('tv-read-replica', 7470);
  afterEach(() => { mw.close(); });

  it('intact: a replica refuses a read at an older epoch STALE_EPOCH and one at the current epoch NOT_PRIMARY (naming the primary); the primary serves it', async () => {
    const { reps, sources } = await mw.start();
    const [a] = mw.blocks(1);
    assert.ok(a !== undefined);
    // The PG moved to epoch 2 under n3; a client with the old placement still reads at n2 as its primary of epoch 1.
    const p2 = mw.placement(2, 'n3', ['n1', 'n2', 'n3']);
    for (const id of ['n1', 'n2', 'n3'] as const) sources[id].set(p2);
    await assert.rejects(reps.n2.admitPrimaryRead(a, pg, 1), (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
    // Served from n2's own copy before, however far behind it was.
    await assert.rejects(reps.n2.admitPrimaryRead(a, pg, 2), (e: unknown) => isGalleonError(e, 'NOT_PRIMARY') && (e.details as { primary?: string } | undefined)?.primary === 'n3');
    await reps.n3.admitPrimaryRead(a, pg, 2);
  });

  it('with the break a replica serves the old-epoch read; a node that is not a member still refuses it', async () => {
    const { reps, sources } = await mw.start(undefined, { readFromReplica: true });
    const [a] = mw.blocks(1);
    assert.ok(a !== undefined);
    sources.n2.set(mw.placement(2, 'n3', ['n1', 'n2', 'n3']));
    await reps.n2.admitPrimaryRead(a, pg, 1);
    sources.n1.set(mw.placement(2, 'n3', ['n2', 'n3']));
    await assert.rejects(reps.n1.admitPrimaryRead(a, pg, 1), (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
  });
});
