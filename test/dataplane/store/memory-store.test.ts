/**
 * `MemoryBlockStore` (dataplane/store/memory-store.ts): the BlockStore conformance suite, and
 * what only the memory store can show in-process — a power loss drops exactly the writes that
 * were not synced.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import { metrics } from '../../../dataplane/metrics.js';
import { blockStoreDisk, MemoryBlockStore } from '../../../dataplane/store/memory-store.js';
import type { BlockOp } from '../../../dataplane/store/types.js';
import { storeConformance } from '../conformance/store.conformance.js';
import { pattern } from '../helpers.js';

function useMemoryStore(): { store: () => MemoryBlockStore; reopen: () => Promise<void>; crashRestart: () => Promise<void> } {
  let disk = blockStoreDisk();
  let store: MemoryBlockStore | undefined;
  beforeEach(async () => {
    disk = blockStoreDisk();
    store = await MemoryBlockStore.open({ disk, metrics });
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });
  return {
    store: () => { assert.ok(store); return store; },
    reopen: async () => { await store?.close(); store = await MemoryBlockStore.open({ disk, metrics }); },
    crashRestart: async () => { store?.crash(); store = await MemoryBlockStore.open({ disk, metrics }); },
  };
}

const put = (blockNo: number, seq: number, sync: boolean): [BlockOp, { sync: boolean }] =>
  [{ kind: 'put', address: { volumeId: 'v', inode: 1, blockNo }, pg: 0, seq, epoch: 1, data: pattern(seq, 128) }, { sync }];

describe('BlockStore conformance: MemoryBlockStore', () => {
  storeConformance(useMemoryStore());
});

describe('MemoryBlockStore crash semantics', () => {
  const m = useMemoryStore();

  it('loses exactly the writes issued after the last sync on a crash', async () => {
    await m.store().write(...put(0, 1, false));
    await m.store().write(...put(1, 2, true)); // its fsync covers seq 1 too
    await m.store().write(...put(2, 3, false));
    await m.store().write(...put(3, 4, false));
    await m.crashRestart();
    const st = await m.store().pgState('v', 0);
    assert.deepEqual([st.appliedSeq, st.highestSeq], [2, 2]);
    assert.deepEqual((await m.store().read({ volumeId: 'v', inode: 1, blockNo: 0 })).data, pattern(1, 128));
    await assert.rejects(m.store().read({ volumeId: 'v', inode: 1, blockNo: 2 }), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
  });

  it('keeps unsynced writes across a clean restart (a process exit keeps the page cache)', async () => {
    await m.store().write(...put(0, 1, false));
    await m.reopen();
    assert.equal((await m.store().pgState('v', 0)).appliedSeq, 1);
  });

  it('fails the writes still in flight and every later call of the crashed store with UNAVAILABLE', async () => {
    const s = m.store();
    const inFlight = s.write(...put(0, 1, true));
    s.crash();
    await assert.rejects(inFlight, (e: unknown) => isGalleonError(e, 'UNAVAILABLE'));
    await assert.rejects(async () => s.read({ volumeId: 'v', inode: 1, blockNo: 0 }), (e: unknown) => isGalleonError(e, 'UNAVAILABLE'));
    await m.crashRestart();
    assert.equal((await m.store().pgState('v', 0)).appliedSeq, 0, 'the write never synced');
  });
});
