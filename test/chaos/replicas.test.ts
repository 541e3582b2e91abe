/**
 * The chaos run's comparison of replicas at snapshot cuts (chaos/dataplane/replicas.ts): built
 * from the frames a full resync sends, with the numbers of the kept run kept-divergence-q27654
 * (pg 12, block 1/2220): the final primary kept seq 17 of epoch 2, the replicas rebuilt from its
 * journal did not.
 */
import assert from 'node:assert/strict';
import { contentsOf, diffAtCuts, type PgContents } from '../../chaos/dataplane/replicas.js';
import { encodeBlock } from '../../chaos/dataplane/content.js';
import type { JournalFrameMeta } from '../../dataplane/wire.js';

const blockBytes = 4096;

interface Held { seq: number; epoch: number; value: string | null; kept?: boolean }

async function contents(held: readonly Held[]): Promise<PgContents> {
  const frames = held.map((h) => {
    const meta: JournalFrameMeta = { seq: h.seq, epoch: h.epoch, kind: h.value === null ? 'delete' : 'put', inode: 1, blockNo: 2220 };
    return { meta: h.kept === true ? { ...meta, kept: true as const } : meta, data: h.value === null ? Buffer.alloc(0) : encodeBlock(h.value, blockBytes) };
  });
  return contentsOf(frames, 'test');
}

const cuts = [1, 2, 3, 4, 9];

describe('chaos replica comparison at snapshot cuts', () => {
  it('finds the kept run\'s divergence: the same live block, another read at cut 3', async () => {
    const primary = await contents([{ seq: 18, epoch: 3, value: 'w0-78' }, { seq: 7, epoch: 1, value: 'w3-7', kept: true }, { seq: 13, epoch: 2, value: 'w3-54', kept: true }, { seq: 17, epoch: 2, value: 'w0-78', kept: true }]);
    const replica = await contents([{ seq: 18, epoch: 3, value: 'w0-78' }, { seq: 7, epoch: 1, value: 'w3-7', kept: true }, { seq: 13, epoch: 2, value: 'w3-54', kept: true }]);
    assert.equal(primary.digest, replica.digest, 'the live blocks agree');
    assert.deepEqual(diffAtCuts(primary, replica, cuts), ['1/2220 at cut 3: w0-78@2/17 vs w3-54@2/13']);
  });

  it('versions no cut reads differently do not count: one kept only on one side, a tombstone against nothing', async () => {
    // 13/2 is shadowed by 17/2 at every cut; a tombstone reads as an absent block.
    const a = await contents([{ seq: 18, epoch: 3, value: 'w0-78' }, { seq: 13, epoch: 2, value: 'w3-54', kept: true }, { seq: 17, epoch: 2, value: 'w0-78', kept: true }, { seq: 3, epoch: 1, value: null, kept: true }]);
    const b = await contents([{ seq: 18, epoch: 3, value: 'w0-78' }, { seq: 17, epoch: 2, value: 'w0-78', kept: true }]);
    assert.deepEqual(diffAtCuts(a, b, cuts), []);
  });
});
