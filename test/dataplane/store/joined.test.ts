/**
 * The join record: a node tells "my data dir was wiped" from "I hold nothing yet" by it.
 */
import assert from 'node:assert/strict';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { removeDir, tempDir } from '../helpers.js';

describe('BlockStore join record', () => {
  let dir = '';
  beforeEach(async () => { dir = await tempDir('joined'); });
  afterEach(async () => { await removeDir(dir); });

  it('is absent in a new data dir, survives a reopen once marked, and is gone with a wiped dir', async () => {
    const fresh = await LevelBlockStore.open({ dir, minFreeBytes: 0 });
    assert.equal(fresh.joined, false);
    await fresh.close();
    // Not joined yet: a restart before registering still knows it never joined.
    const again = await LevelBlockStore.open({ dir, minFreeBytes: 0 });
    assert.equal(again.joined, false);
    await again.markJoined();
    await again.close();
    // Joined but empty (nothing ever written) is not mistaken for wiped.
    const joined = await LevelBlockStore.open({ dir, minFreeBytes: 0 });
    assert.equal(joined.joined, true);
    assert.deepEqual(await joined.listPgs(), []);
    await joined.close();
    await removeDir(dir);
    const wiped = await LevelBlockStore.open({ dir, minFreeBytes: 0 });
    assert.equal(wiped.joined, false);
    await wiped.close();
  });
});
