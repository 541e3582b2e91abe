/**
 * The block seal (dataplane/client/block-cipher.ts): round trips, and every way a stored body
 * can be wrong — a flipped byte, a body moved to another address or volume, another writer's
 * key, a truncated body — fails authentication with INTEGRITY_ERROR. The nonce construction is
 * checked at the scale the issue names: 10^6 seals under one key, no nonce twice.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { isGalleonError } from '../../../proto/errors.js';
import {
  generationOf, maxSealsPerWriter, NonceSequence, nonceOf, openBlock, sealBlock, sealHeaderBytes,
  sealOverheadBytes, writerKey,
} from '../../../dataplane/client/block-cipher.js';

const dataKey = randomBytes(32);
const vol = '3f1c2a9e-0000-4000-8000-000000000001';
const at = { volumeId: vol, inode: 7, blockNo: 42 };

function integrity(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => isGalleonError(e, 'INTEGRITY_ERROR') && /failed authentication/.test(e.message) && e.hint !== undefined);
}

describe('block seal (AES-256-GCM per block)', () => {
  const k1 = writerKey(dataKey, vol, 1);

  it('round-trips, adds exactly the overhead, and hides the plaintext', () => {
    const pt = Buffer.alloc(4096, 'secret-pattern ');
    const body = sealBlock(k1, { writerId: 1, counter: 0 }, at, pt);
    assert.equal(body.length, pt.length + sealOverheadBytes);
    assert.equal(body.indexOf('secret-pattern'), -1);
    assert.ok(openBlock(k1, at, body).equals(pt));
    assert.deepEqual(generationOf(at, body), { writerId: 1, counter: 0 });
    assert.equal(openBlock(k1, at, sealBlock(k1, { writerId: 1, counter: 1 }, at, Buffer.alloc(0))).length, 0);
  });

  it('refuses a flipped byte anywhere: header, ciphertext or tag', () => {
    const body = sealBlock(k1, { writerId: 1, counter: 5 }, at, randomBytes(1000));
    for (const i of [2, 5, 20, sealHeaderBytes, sealHeaderBytes + 500, body.length - 1]) {
      const bad = Buffer.from(body);
      bad[i] = (bad[i] ?? 0) ^ 0x01;
      integrity(() => openBlock(k1, at, bad));
    }
    integrity(() => openBlock(k1, at, body.subarray(0, body.length - 1)));
    integrity(() => openBlock(k1, at, body.subarray(0, 10)));
  });

  it('refuses a body read at another address, inode, volume, or under another writer\'s key', () => {
    const body = sealBlock(k1, { writerId: 1, counter: 9 }, at, randomBytes(100));
    integrity(() => openBlock(k1, { ...at, blockNo: 43 }, body));
    integrity(() => openBlock(k1, { ...at, inode: 8 }, body));
    integrity(() => openBlock(writerKey(dataKey, 'another-volume', 1), { ...at, volumeId: 'another-volume' }, body));
    integrity(() => openBlock(writerKey(dataKey, vol, 2), at, body));
    integrity(() => openBlock(writerKey(randomBytes(32), vol, 1), at, body));
  });

  it('derives distinct subkeys per writer id and per volume', () => {
    const keys = new Set<string>();
    for (let w = 1; w <= 1000; w++) keys.add(writerKey(dataKey, vol, w).toString('hex'));
    keys.add(writerKey(dataKey, 'other', 1).toString('hex'));
    assert.equal(keys.size, 1001);
  });

  it('10^6 seals under one writer never repeat a nonce (the nonce function at that scale)', function () {
    this.timeout(60_000);
    const seq = new NonceSequence(1);
    const seen = new Set<string>();
    const n = 1_000_000;
    for (let i = 0; i < n; i++) {
      const c = seq.take();
      assert.notEqual(c, null);
      seen.add(nonceOf(c as number).toString('latin1'));
    }
    assert.equal(seen.size, n);
    assert.equal(seq.used, n);
  });

  it('a writer id used up yields no more counters; counters past the bound are refused', () => {
    const seq = new NonceSequence(3);
    (seq as unknown as { next_: number }).next_ = maxSealsPerWriter - 1;
    assert.equal(seq.take(), maxSealsPerWriter - 1);
    assert.equal(seq.take(), null);
    assert.throws(() => nonceOf(maxSealsPerWriter), /invariant/);
    assert.throws(() => new NonceSequence(0), /invariant/);
  });
});
