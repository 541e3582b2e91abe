import assert from 'node:assert/strict';
import { BodyPool, slabStepBytes } from '../../../dataplane/server/body-pool.js';

const MiB = 1024 * 1024;

describe('BodyPool (reused request bodies)', () => {
  it('gives small bodies their own buffer and keeps nothing for them', () => {
    const pool = new BodyPool(256 * 1024);
    const lease = pool.take(1000);
    assert.equal(lease.body.length, 1000);
    lease.release();
    assert.equal(pool.pooledBytes, 0);
  });

  it('reuses a released slab for the next body of its size, most recently released first', () => {
    const pool = new BodyPool(256 * 1024);
    const a = pool.take(MiB + 100);
    const b = pool.take(MiB + 200);
    assert.equal(a.body.length, MiB + 100);
    assert.notEqual(a.body.buffer, b.body.buffer, 'two leases held at once never share memory');
    a.release();
    b.release();
    assert.equal(pool.pooledBytes, 2 * (MiB + slabStepBytes));
    const c = pool.take(MiB + 50);
    assert.equal(c.body.buffer, b.body.buffer, 'the slab released last comes back first');
    assert.equal(pool.pooledBytes, MiB + slabStepBytes);
    const other = pool.take(3 * MiB);
    assert.notEqual(other.body.buffer, a.body.buffer, 'a slab of another size is not handed out');
  });

  it('ignores a second release of the same lease (the slab is never handed to two users)', () => {
    const pool = new BodyPool(256 * 1024);
    const a = pool.take(MiB);
    a.release();
    a.release();
    assert.equal(pool.pooledBytes, MiB);
    const b = pool.take(MiB);
    const c = pool.take(MiB);
    assert.notEqual(b.body.buffer, c.body.buffer);
  });

  it('keeps at most maxFreeBytes for reuse', () => {
    const pool = new BodyPool(256 * 1024, 2 * MiB);
    const leases = [pool.take(MiB), pool.take(MiB), pool.take(MiB)];
    for (const l of leases) l.release();
    assert.equal(pool.pooledBytes, 2 * MiB);
  });
});
