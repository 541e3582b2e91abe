/** The BlockStore conformance suite (../conformance/store.conformance.ts) on real LevelDB files, for each body layout. */
import type { LevelBlockStoreOptions } from '../../../dataplane/store/level-block-store.js';
import { storeConformance } from '../conformance/store.conformance.js';
import { useStore } from './store-fixture.js';

const variants: { name: string; opts: Omit<LevelBlockStoreOptions, 'dir'> }[] = [
  { name: 'inline', opts: { layout: 'inline' } },
  { name: 'segments', opts: { layout: 'segments', inlineMaxBytes: 0 } },
  { name: 'segments, small bodies inline', opts: { layout: 'segments', inlineMaxBytes: 16 * 1024 } },
];

for (const { name, opts } of variants) {
  describe(`BlockStore conformance: LevelBlockStore (${name})`, () => {
    const fixture = useStore('store', opts);
    // In-process, a crash of LevelDB cannot drop the page cache: a close and an open is the crash
    // that loses nothing, which the contract allows (kill -9 runs: durability.test.ts).
    storeConformance({ store: fixture.store, reopen: fixture.reopen, crashRestart: fixture.reopen });
  });
}
