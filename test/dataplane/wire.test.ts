import assert from 'node:assert/strict';
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import type { ErrorCode } from '../../proto/errors.js';
import {
  copyBodiesBelowBytes, decodeBlockBatch, decodeRangeAnswer, encodeRangeHead, decodeBlockBatchAnswers, decodeReplicateAnswers, decodeReplicateBatch,
  encodeBlockBatch, encodeBlockBatchAnswers, encodeReplicateAnswers, encodeReplicateBatch,
} from '../../dataplane/wire.js';
import type { BlockBatchFrameMeta, RangeEntry, ReplicateFrameMeta } from '../../dataplane/wire.js';

const maxSafe = Number.MAX_SAFE_INTEGER;

function joined(e: { chunks: Buffer[]; length: number }): Buffer {
  const b = Buffer.concat(e.chunks);
  assert.equal(b.length, e.length, 'declared length matches the bytes');
  return b;
}

function refusedAs(code: ErrorCode): (err: unknown) => boolean {
  return (err) => isGalleonError(err, code);
}

describe('dataplane/wire binary batches', () => {
  it('round-trips a client write batch: puts and deletes, every concern, big ids, a body sent as its own chunk', () => {
    const big = Buffer.alloc(copyBodiesBelowBytes + 3, 7);
    const writes: { meta: BlockBatchFrameMeta; data: Buffer | undefined }[] = [
      { meta: { volumeId: 'vol-ä/1', inode: 0, blockNo: 0, epoch: 1, op: 'put', concern: 'acknowledged' }, data: Buffer.from('hello') },
      { meta: { volumeId: 'v', inode: maxSafe, blockNo: 2 ** 48 - 1, epoch: 2 ** 40 + 5, op: 'delete', concern: 'durable' }, data: undefined },
      { meta: { volumeId: 'v', inode: 3, blockNo: 4, epoch: 9, op: 'put', concern: 'replicated' }, data: big },
      { meta: { volumeId: 'v', inode: 5, blockNo: 6, epoch: 9, op: 'put', concern: 'distributed' }, data: Buffer.alloc(0) },
    ];
    const enc = encodeBlockBatch(writes);
    assert.ok(enc.chunks.some((c) => c.buffer === big.buffer), 'the big body is referenced, not copied');
    const back = decodeBlockBatch(joined(enc));
    assert.deepEqual(back.map((f) => f.meta), writes.map((w) => w.meta));
    assert.deepEqual(back.map((f) => f.data), writes.map((w) => w.data ?? Buffer.alloc(0)));
  });

  it('round-trips a replicate batch with its per-op seq, epoch, sync, primary and trim', () => {
    const ops: { meta: ReplicateFrameMeta; data: Buffer | undefined }[] = [
      { meta: { volumeId: 'vol', inode: 1, blockNo: 2, pg: 7, seq: maxSafe, epoch: 3, op: 'put', sync: true, primary: '127.0.0.1:4000', trim: 2 ** 33 }, data: Buffer.from('abc') },
      { meta: { volumeId: 'vol', inode: 1, blockNo: 3, pg: 0xffffffff, seq: 1, epoch: 3, op: 'delete', sync: false, primary: 'h:1', trim: 0 }, data: undefined },
    ];
    const back = decodeReplicateBatch(joined(encodeReplicateBatch(ops)));
    assert.deepEqual(back.map((f) => f.meta), ops.map((o) => o.meta));
    assert.deepEqual(back[0]?.data, Buffer.from('abc'));
    assert.equal(back[1]?.data.length, 0);
  });

  it('round-trips answers, errors included with their code and hint', () => {
    const err = new GalleonError('STALE_EPOCH', 'epoch 1 is stale', { hint: 'refresh', details: { epoch: 2 } }).toJSON();
    const acks = decodeBlockBatchAnswers(encodeBlockBatchAnswers([{ pg: 3, seq: maxSafe, epoch: 2, concern: 'durable' }, { error: err }]));
    assert.deepEqual(acks, [{ pg: 3, seq: maxSafe, epoch: 2, concern: 'durable' }, { error: err }]);
    const applied = decodeReplicateAnswers(encodeReplicateAnswers([{ error: err }, { appliedSeq: 12 }]));
    assert.deepEqual(applied, [{ error: err }, { appliedSeq: 12 }]);
    assert.deepEqual(decodeReplicateAnswers(encodeReplicateAnswers([])), []);
  });

  it('refuses truncated bodies, a foreign format, unknown codes and unsafe integers with INVALID_ARGUMENT', () => {
    const body = joined(encodeBlockBatch([{ meta: { volumeId: 'v', inode: 1, blockNo: 2, epoch: 1, op: 'put', concern: 'durable' }, data: Buffer.from('xyz') }]));
    for (let cut = 5; cut < body.length; cut++) assert.throws(() => decodeBlockBatch(body.subarray(0, cut)), refusedAs('INVALID_ARGUMENT'), `cut at ${cut}`);
    // A replicate body is not a client batch (and JSON frames of older versions are neither).
    const replicate = joined(encodeReplicateBatch([{ meta: { volumeId: 'v', inode: 1, blockNo: 2, pg: 0, seq: 1, epoch: 1, op: 'put', sync: true, primary: 'p', trim: 0 }, data: Buffer.from('a') }]));
    assert.throws(() => decodeBlockBatch(replicate), refusedAs('INVALID_ARGUMENT'));
    assert.throws(() => decodeBlockBatch(Buffer.from('{"seq":1}')), refusedAs('INVALID_ARGUMENT'));
    const badConcern = Buffer.from(body);
    badConcern[5] = 9;
    assert.throws(() => decodeBlockBatch(badConcern), refusedAs('INVALID_ARGUMENT'));
    const badOp = Buffer.from(body);
    badOp[4] = 2;
    assert.throws(() => decodeBlockBatch(badOp), refusedAs('INVALID_ARGUMENT'));
    const unsafe = Buffer.from(body);
    unsafe.writeUInt32BE(0x00200000, 4 + 4 + 1); // inode's high half: 2^53
    assert.throws(() => decodeBlockBatch(unsafe), refusedAs('INVALID_ARGUMENT'));
    const answers = encodeReplicateAnswers([{ appliedSeq: 1 }]);
    assert.throws(() => decodeReplicateAnswers(Buffer.concat([answers, Buffer.from([0])])), refusedAs('INVALID_ARGUMENT'));
    assert.throws(() => decodeReplicateAnswers(answers.subarray(0, answers.length - 1)), refusedAs('INVALID_ARGUMENT'));
  });

  it('block-range answers: heads then bodies round-trip (bodies as views), absences keep what was said, anything malformed is refused', () => {
    const entries: RangeEntry[] = [
      { kind: 'block', seq: maxSafe, epoch: 3, data: Buffer.from('first') },
      { kind: 'missing', deletedSeq: 7, appliedSeq: 9 },
      { kind: 'missing', deletedSeq: null, appliedSeq: 2 ** 40 },
      { kind: 'missing', deletedSeq: null, appliedSeq: null },
      { kind: 'block', seq: 1, epoch: 1, data: Buffer.alloc(0) },
      { kind: 'block', seq: 2, epoch: 1, data: Buffer.from('last') },
    ];
    const buf = Buffer.concat([encodeRangeHead(entries), ...entries.map((e) => (e.kind === 'block' ? e.data : Buffer.alloc(0)))]);
    const back = decodeRangeAnswer(buf);
    assert.deepEqual(back, entries);
    const first = back[0];
    assert.ok(first?.kind === 'block' && first.data.buffer === buf.buffer, 'a body is a view into the answer, not a copy');
    assert.throws(() => decodeRangeAnswer(Buffer.concat([buf, Buffer.from([0])])), refusedAs('INTERNAL'));
    assert.throws(() => decodeRangeAnswer(buf.subarray(0, buf.length - 1)), refusedAs('INTERNAL'));
    assert.throws(() => decodeRangeAnswer(Buffer.from('GRR2\0\0\0\0')), refusedAs('INTERNAL'));
    const tooMany = Buffer.alloc(8);
    tooMany.write('GRR1');
    tooMany.writeUInt32BE(65, 4);
    assert.throws(() => decodeRangeAnswer(tooMany), refusedAs('INTERNAL'));
  });
});
