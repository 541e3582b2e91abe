/**
 * POST /v1/replicate-batch on a real data-node process (a second one stands as the primary): ops of several PGs in one binary batch,
 * each with its own result; a stale epoch is refused per op, malformed bodies as a whole.
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import { decodeReplicateAnswers, encodeReplicateBatch } from '../../../dataplane/wire.js';
import type { ReplicateFrameMeta } from '../../../dataplane/wire.js';
import { pgStates, readFromNode, TestCluster } from '../cluster.js';
import { pattern } from '../helpers.js';

describe('replicate batches on a data node (2 processes)', function () {
  this.timeout(30_000);
  const cluster = new TestCluster();
  before(async () => {
    await cluster.start('n1', 'z1');
    await cluster.start('n2', 'z2');
  });
  after(async () => {
    await cluster.stopAll();
  });

  async function post(body: Buffer): Promise<{ status: number; body: Buffer }> {
    const res = await request(`http://${cluster.node('n1').address}/v1/replicate-batch`, { method: 'POST', body });
    return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
  }

  it('applies the current ops of every PG and refuses the stale ones, each with its own result', async () => {
    // n1 is a replica of both PGs; PG 1 has moved on to epoch 3.
    const p = cluster.placement('vol-rb', [
      { replicas: ['n2', 'n1'], primary: 'n2', epoch: 2 }, { replicas: ['n2', 'n1'], primary: 'n2', epoch: 3 },
    ]);
    await cluster.install(p, ['n1']);
    const primary = cluster.node('n2').address;
    const op = (pg: number, seq: number, epoch: number): { meta: ReplicateFrameMeta; data: Buffer } => ({
      meta: { volumeId: 'vol-rb', inode: 1, blockNo: pg * 1000 + seq, pg, seq, epoch, op: 'put', sync: true, primary, trim: 0 },
      data: pattern(pg * 100 + seq, 4096),
    });
    const ops = [op(0, 1, 2), op(1, 1, 2), op(0, 2, 2), op(1, 2, 2), op(0, 3, 2)];
    const { chunks } = encodeReplicateBatch(ops);
    const res = await post(Buffer.concat(chunks));
    assert.equal(res.status, 200);
    const results = decodeReplicateAnswers(res.body);
    assert.equal(results.length, ops.length);
    results.forEach((r, i) => {
      if (ops[i]?.meta.pg === 0) assert.deepEqual(r, { appliedSeq: 3 }, `op ${i}`);
      else assert.ok('error' in r && r.error.code === 'STALE_EPOCH', `op ${i} at a stale epoch was not refused: ${JSON.stringify(r)}`);
    });
    for (const o of ops) {
      const got = await readFromNode(cluster.node('n1').address, 'vol-rb', o.meta.inode, o.meta.blockNo);
      if (o.meta.pg === 0) assert.ok(got.status === 200 && got.data.equals(o.data), `block of seq ${o.meta.seq} missing`);
      else assert.equal(got.status, 404, 'a refused op was written');
    }
    const states = await pgStates(cluster.node('n1').address);
    assert.equal(states.find((s) => s.volumeId === 'vol-rb' && s.pg === 0)?.appliedSeq, 3);
    assert.equal(states.find((s) => s.volumeId === 'vol-rb' && s.pg === 1)?.epoch, 3, 'the newer epoch is kept');
  });

  it('keeps every body intact when large batches run at once (their request buffers are reused once written)', async () => {
    await cluster.install(cluster.placement('vol-pool', [{ replicas: ['n2', 'n1'], primary: 'n2', epoch: 1 }]), ['n1']);
    const primary = cluster.node('n2').address;
    const MiB = 1024 * 1024;
    const total = 48;
    const body = (seq: number): Buffer => pattern(7000 + seq, MiB);
    const batches: { meta: ReplicateFrameMeta; data: Buffer }[][] = [];
    for (let seq = 1; seq <= total;) {
      const n = Math.min(1 + (seq % 3), total - seq + 1);
      batches.push(Array.from({ length: n }, (_, i) => ({
        meta: { volumeId: 'vol-pool', inode: 1, blockNo: seq + i, pg: 0, seq: seq + i, epoch: 1, op: 'put', sync: false, primary, trim: 0 },
        data: body(seq + i),
      })));
      seq += n;
    }
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < batches.length) {
        const ops = batches[next++] ?? [];
        const res = await post(Buffer.concat(encodeReplicateBatch(ops).chunks));
        assert.equal(res.status, 200);
        for (const r of decodeReplicateAnswers(res.body)) assert.ok(!('error' in r), JSON.stringify(r));
      }
    }));
    for (let seq = 1; seq <= total; seq++) {
      const got = await readFromNode(cluster.node('n1').address, 'vol-pool', 1, seq);
      assert.equal(got.status, 200, `block ${seq}`);
      assert.ok(got.data.equals(body(seq)), `block ${seq} holds other bytes than were sent`);
    }
  });

  it('refuses a malformed or foreign batch body as a whole with INVALID_ARGUMENT', async () => {
    const { chunks } = encodeReplicateBatch([{ meta: { volumeId: 'vol-rb', inode: 2, blockNo: 1, pg: 0, seq: 9, epoch: 2, op: 'put', sync: true, primary: 'x:1', trim: 0 }, data: pattern(1, 100) }]);
    const whole = Buffer.concat(chunks);
    for (const body of [whole.subarray(0, whole.length - 10), Buffer.from(JSON.stringify([{ seq: 1 }]))]) {
      const res = await post(body);
      assert.equal(res.status, 400);
      const err: unknown = JSON.parse(res.body.toString('utf8'));
      assert.ok(typeof err === 'object' && err !== null && 'code' in err && err.code === 'INVALID_ARGUMENT', res.body.toString('utf8'));
    }
    const got = await readFromNode(cluster.node('n1').address, 'vol-rb', 2, 1);
    assert.equal(got.status, 404);
  });
});
