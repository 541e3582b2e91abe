import { strict as assert } from 'node:assert';
import { formatBytes, isPowerOfTwo, parseSize } from '../../cli/lib/size.js';
import { isGalleonError } from '../../proto/errors.js';

describe('cli/lib/size', () => {
  it('parses K/M/G/T suffixes as powers of 1024', () => {
    assert.equal(parseSize('512'), 512);
    assert.equal(parseSize('4K'), 4096);
    assert.equal(parseSize('10M'), 10 * 1024 ** 2);
    assert.equal(parseSize('1G'), 1024 ** 3);
    assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
    assert.equal(parseSize('2t'), 2 * 1024 ** 4);
    assert.equal(parseSize('64KB'), 65536);
    assert.equal(parseSize(4096), 4096);
  });

  for (const bad of ['', '0', '-1G', '1Q', 'G', '1.5', '1 G B', 'ten']) {
    it(`rejects ${JSON.stringify(bad)} with INVALID_SIZE`, () => {
      assert.throws(() => parseSize(bad), (err) => isGalleonError(err, 'INVALID_SIZE') && err.hint !== undefined);
    });
  }

  it('formats bytes for humans with two decimals', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1024), '1.00 KiB');
    assert.equal(formatBytes(1024 ** 3), '1.00 GiB');
    assert.equal(formatBytes(1.5 * 1024 ** 4), '1.50 TiB');
  });

  it('knows powers of two', () => {
    assert.deepEqual([512, 4096, 1 << 20].map(isPowerOfTwo), [true, true, true]);
    assert.deepEqual([0, 3, 1000, -4, 1.5].map(isPowerOfTwo), [false, false, false, false, false]);
  });
});
