/**
 * The test-only `readFromReplica` break reaches the block server's read admission
 * (`PrimaryPath.admitPrimaryRead` asks the core's `replicaServesAnyRead`): three Replicators in
 * this process on MemoryBlockStores, a MemoryNetwork and a ManualClock. The shell simulator
 * cannot catch this break (test/sim-dataplane/README.md, "readFromReplica and the server's
 * reads"), so this shows directly that the switch acts and that, unset, nothing changes.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import { MemoryWorld, pg } from './memory-world.js';

describe('readFromReplica in the block server', () => {
  const mw = new MemoryWorld('tv-read-replica', 7470);
  afterEach(() => { mw.close(); });

  it('intact: a replica refuses a read at an epoch older than its own STALE_EPOCH (and serves one at the current epoch: the open point in server/README.md)', async () => {
    const { reps, sources } = await mw.start();
    const [a] = mw.blocks(1);
    assert.ok(a !== undefined);
    // The PG moved to epoch 2 under n3; a client with the old placement still reads at n2 as its primary of epoch 1.
    sources.n2.set(mw.placement(2, 'n3', ['n1', 'n2', 'n3']));
    await assert.rejects(reps.n2.admitPrimaryRead(a, pg, 1), (e: unknown) => isGalleonError(e, 'STALE_EPOCH'));
    await reps.n2.admitPrimaryRead(a, pg, 2);
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
