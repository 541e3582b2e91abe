/**
 * The keyring's per-volume cipher (dataplane/client/keyring.ts) on its real seal path: 10^5
 * block writes under one data key, by two writers at once, never repeat a (writer, nonce) pair —
 * read back from the sealed bodies themselves (10^6 at the nonce function alone:
 * block-cipher.test.ts; 10^6 here takes ~50 s on the shared machine) — and every body opens at
 * its own address only.
 * Writer ids come from a counter standing in for the metadata service's `allocateKeyWriter`
 * (its state-machine side is tested in test/metadata/state/volume-keys.test.ts).
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { generationOf, maxSealsPerWriter } from '../../../dataplane/client/block-cipher.js';
import { VolumeCipher } from '../../../dataplane/client/keyring.js';
import { isGalleonError } from '../../../proto/errors.js';

describe('keyring: VolumeCipher', () => {
  it('10^5 block writes under one data key (two writers) never repeat a nonce', async function () {
    this.timeout(60_000);
    const dataKey = randomBytes(32);
    let writers = 0;
    const allocate = (): Promise<number> => Promise.resolve(++writers);
    const a = new VolumeCipher('vol', dataKey, allocate);
    const b = new VolumeCipher('vol', dataKey, allocate);
    const seen = new Set<string>();
    const n = 100_000;
    const empty = Buffer.alloc(0);
    const at = { volumeId: 'vol', inode: 1, blockNo: 0 };
    for (let i = 0; i < n; i += 2) {
      for (const c of [a, b]) {
        const body = await c.seal(at, empty);
        const g = generationOf(at, body);
        seen.add(`${g.writerId}:${g.counter}`);
      }
    }
    assert.equal(seen.size, n);
    assert.equal(writers, 2, 'one writer id per cipher');
  });

  it('opens its own and the other writer\'s bodies; refuses a moved one; takes a new writer id when one is used up', async () => {
    const dataKey = randomBytes(32);
    let writers = 0;
    const allocate = (): Promise<number> => Promise.resolve(++writers);
    const a = new VolumeCipher('vol', dataKey, allocate);
    const reader = new VolumeCipher('vol', dataKey, () => Promise.reject(new Error('a reader never allocates')));
    const at = { volumeId: 'vol', inode: 2, blockNo: 9 };
    const body = await a.seal(at, Buffer.from('hello'));
    assert.equal((await reader.open(at, body)).toString(), 'hello');
    await assert.rejects(reader.open({ ...at, blockNo: 10 }, body), (e: unknown) => isGalleonError(e, 'INTEGRITY_ERROR'));
    // Use up writer 1: the next seal takes writer 2, never counter 2^48 of writer 1.
    (a as unknown as { writer: { seq: { next_: number } } }).writer.seq.next_ = maxSealsPerWriter;
    const next = await a.seal(at, Buffer.from('again'));
    assert.deepEqual(generationOf(at, next), { writerId: 2, counter: 0 });
    assert.equal((await reader.open(at, next)).toString(), 'again');
    // Concurrent first seals share one allocation.
    const c = new VolumeCipher('vol', dataKey, allocate);
    const bodies = await Promise.all([1, 2, 3].map((i) => c.seal({ ...at, blockNo: i }, Buffer.from([i]))));
    assert.deepEqual(bodies.map((x, i) => generationOf({ ...at, blockNo: i + 1 }, x)), [0, 1, 2].map((counter) => ({ writerId: 3, counter })));
  });
});
