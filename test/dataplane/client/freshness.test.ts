/**
 * The client's side of the not-found check (dataplane/client/freshness.ts): what a 404's seq
 * headers are taken to say (a malformed one says nothing), and the one line a refused not-found
 * read gives for each thing the primary may have claimed.
 */
import assert from 'node:assert/strict';
import { notFoundClaimOf, staleReadError, type StaleReadEvent } from '../../../dataplane/client/freshness.js';
import { isGalleonError } from '../../../proto/errors.js';

describe('freshness (client): a primary\'s not-found', () => {
  it('reads the tombstone seq and watermark of a 404; absent or malformed headers count as not said', () => {
    assert.deepEqual(notFoundClaimOf({ 'x-galleon-deleted-seq': '12', 'x-galleon-applied-seq': '20' }), { deletedSeq: 12, appliedSeq: 20 });
    assert.deepEqual(notFoundClaimOf({ 'x-galleon-applied-seq': '20' }), { deletedSeq: null, appliedSeq: 20 });
    assert.deepEqual(notFoundClaimOf({}), { deletedSeq: null, appliedSeq: null });
    for (const bad of ['1e3', '-1', ' 5', '0x10', '', '12345678901234567']) {
      assert.deepEqual(notFoundClaimOf({ 'x-galleon-deleted-seq': bad, 'x-galleon-applied-seq': bad }), { deletedSeq: null, appliedSeq: null }, bad);
    }
    assert.deepEqual(notFoundClaimOf({ 'x-galleon-deleted-seq': ['7', '9'] }), { deletedSeq: 7, appliedSeq: null });
  });

  it('a refused not-found is one INTEGRITY_ERROR line naming the primary, the replica and what each said', () => {
    const base = { address: { volumeId: 'v', inode: 3, blockNo: 9 }, reason: 'hidden-block', node: 'n1', witness: 'n2', shown: { gen: { writerId: 4, counter: 2 }, seq: 15 } } as const;
    const cases: [StaleReadEvent['served'], string][] = [
      [{ notFound: { deletedSeq: null, appliedSeq: 20 } }, 'data node n1 answered not found (no entry, its watermark at seq 20) for a block in-sync replica n2 holds (generation 4:2, seq 15)'],
      [{ notFound: { deletedSeq: 12, appliedSeq: 20 } }, 'data node n1 answered not found (deleted at seq 12, its watermark at seq 20) for a block in-sync replica n2 holds (generation 4:2, seq 15)'],
      [{ notFound: { deletedSeq: null, appliedSeq: null } }, 'data node n1 answered not found (no entry) for a block in-sync replica n2 holds (generation 4:2, seq 15)'],
    ];
    for (const [served, what] of cases) {
      const e = staleReadError({ ...base, served });
      assert.ok(isGalleonError(e, 'INTEGRITY_ERROR'));
      assert.equal(e.message, `block 9 (inode 3) of volume v: ${what}; refused rather than return a rolled-back or hidden block`);
      assert.deepEqual(e.details, { volumeId: 'v', inode: 3, blockNo: 9, node: 'n1', witness: 'n2' });
    }
  });
});
