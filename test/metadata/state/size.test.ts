import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import { formatSize, parseSize, roundUpToBlocks } from '../../../metadata/state/logic/size.js';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { Volume } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, useStateMachine } from './helpers.js';

describe('metadata/state size parsing', () => {
  const good: [unknown, number][] = [
    [4096, 4096], ['4096', 4096], ['512B', 512], ['1K', 1024], ['1k', 1024], ['512M', 512 * 2 ** 20],
    ['1G', 2 ** 30], ['1Gi', 2 ** 30], ['1GiB', 2 ** 30], ['1GB', 2 ** 30], ['2T', 2 * 2 ** 40],
    ['10.5G', 10.5 * 2 ** 30], ['1.5T', 1.5 * 2 ** 40], ['0.5K', 512], [' 1G ', 2 ** 30], ['1024T', 2 ** 50],
  ];
  for (const [input, bytes] of good) {
    it(`reads ${JSON.stringify(input)} as ${bytes} bytes`, () => assert.equal(parseSize(input), bytes));
  }

  const bad: unknown[] = [0, '0', '0G', -1, '-1G', 1.5, 'abc', '', 'G', '1X', '1.1K', '1.G', '1 G B', '1e9', 'NaN',
    Infinity, null, undefined, {}, '1025T', 2 ** 53, '1iB'];
  for (const input of bad) {
    it(`rejects ${JSON.stringify(input) ?? String(input)} with INVALID_SIZE and a format hint`, () => {
      assert.throws(() => parseSize(input), (err) => isGalleonError(err, 'INVALID_SIZE') && (err.hint ?? '').includes('512M'));
    });
  }

  it('formats sizes for messages', () => {
    assert.equal(formatSize(2 ** 30), '1.00 GiB');
    assert.equal(formatSize(100), '100 B');
  });
});

describe('metadata/state volume sizes are whole blocks', () => {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });

  it('rounds create and expand UP to whole 4096-byte blocks', async () => {
    assert.deepEqual([1, 4096, 4097, 5000, 8192].map((b) => roundUpToBlocks(b, 4096)), [4096, 4096, 8192, 8192, 8192]);
    await addNodes(f, 1);
    const one = await f.ok<Volume>('createVolume', { name: 'one', size: 1, replicas: 1, storageClass: 'fast-local-ssd', blockSize: '4K' });
    const odd = await f.ok<Volume>('createVolume', { name: 'odd', size: '5000', replicas: 1, storageClass: 'fast-local-ssd', blockSize: '4K' });
    assert.deepEqual([one.sizeBytes, odd.sizeBytes], [4096, 8192]);
    const grown = await f.ok<Volume>('expandVolume', 'one', 4097);
    assert.equal(grown.sizeBytes, 8192);
    // 5000 rounds to 8192, which is not larger than 8192: still only growth.
    await f.fails('INVALID_SIZE', 'expandVolume', 'odd', 5000);
    assert.equal((await sm.query('getVolume', ['odd']) as Volume).sizeBytes, 8192);
  });
});
