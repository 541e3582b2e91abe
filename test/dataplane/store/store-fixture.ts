/**
 * A LevelBlockStore in a temp dir for each test of the enclosing `describe` (opened before,
 * closed and removed after, even on failure), with `reopen()` to check what survives a restart.
 */
import assert from 'node:assert/strict';
import { metrics } from '../../../dataplane/metrics.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import type { LevelBlockStoreOptions } from '../../../dataplane/store/level-block-store.js';
import { removeDir, tempDir } from '../helpers.js';

export interface StoreFixture {
  /** The open store of the running test. */
  store: () => LevelBlockStore;
  /** Closes the store and opens the same dir again. */
  reopen: () => Promise<void>;
}

export function useStore(dirPrefix: string, opts: Omit<LevelBlockStoreOptions, 'dir'>): StoreFixture {
  let dir: string | undefined;
  let store: LevelBlockStore | undefined;
  const open = async (): Promise<void> => {
    assert.ok(dir);
    // The data plane's counters, as the data node passes them: tests read them to see what the store did.
    store = await LevelBlockStore.open({ dir, metrics, ...opts, minFreeBytes: 0 });
  };
  beforeEach(async () => {
    dir = await tempDir(dirPrefix);
    await open();
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await removeDir(dir);
  });
  return {
    store: () => { assert.ok(store); return store; },
    reopen: async () => { await store?.close(); await open(); },
  };
}
