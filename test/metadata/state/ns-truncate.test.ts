import assert from 'node:assert/strict';
import { GalleonError } from '../../../proto/errors.js';
import { commitVerdict, epochAfterTruncate } from '../../../metadata/state/logic/ns-truncate.js';

/**
 * The truncate epoch rule against a model of two programs on a local disk: a writer's commit
 * carries bytes written before it learned of any truncate made since its epoch, so on a local
 * disk they came first and the truncate (and whatever was committed after it) decides the size.
 */
function localDiskSize(size: number, epoch: number, committed: number, writer: number): number {
  if (writer < epoch) return size;
  return committed > size ? committed : size;
}

describe('metadata/state truncate epoch (pure)', () => {
  it('matches the local-disk model on every small case, and refuses an epoch from the future', () => {
    for (let size = 0; size <= 6; size++) {
      for (let epoch = 0; epoch <= 3; epoch++) {
        for (let committed = 0; committed <= 6; committed++) {
          for (let writer = 0; writer <= 4; writer++) {
            const inode = { size, truncEpoch: epoch };
            const c = `size ${size} epoch ${epoch} commit ${committed} at ${writer}`;
            if (writer > epoch) {
              assert.throws(() => commitVerdict(inode, committed, writer), (e: unknown) => e instanceof GalleonError && e.code === 'INVALID_ARGUMENT', c);
              continue;
            }
            const v = commitVerdict(inode, committed, writer);
            assert.equal(v.sizeBytes, localDiskSize(size, epoch, committed, writer), c);
            assert.equal(v.stale, writer < epoch, c);
            // A stale commit never moves the size, in either direction.
            if (v.stale) assert.equal(v.sizeBytes, size, c);
            else assert.ok(v.sizeBytes >= size && v.sizeBytes >= committed, c);
          }
          // No epoch (an older client): the size only grows, as before the epoch existed.
          assert.deepEqual(commitVerdict({ size, truncEpoch: epoch }, committed, undefined), { sizeBytes: Math.max(size, committed), stale: false });
        }
      }
    }
    assert.equal(epochAfterTruncate(0), 1);
    assert.equal(epochAfterTruncate(41), 42);
  });
});
