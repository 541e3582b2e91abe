/**
 * Volume sizes: a whole number of bytes, or a number with a K/M/G/T suffix in powers of 1024
 * (`512M`, `1G`, `1Gi`, `1GiB` and `1GB` all mean 2^30 multiples). A fraction is accepted when it
 * comes to a whole number of bytes (`1.5G`, `10.5G`, `0.5K`), so nothing is silently rounded.
 */
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import { maxVolumeSizeBytes } from '../../../proto/limits.js';
import { maxBlockSizeBytes, minBlockSizeBytes } from '../../../proto/metadata-types.js';

// A volume of more than 1 PiB (maxVolumeSizeBytes) is almost certainly a typo; Number stays exact far above it.

const multiplierBySuffix: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
const sizePattern = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B|i)?$/i;
const sizeHint = 'give bytes or a number with a K, M, G or T suffix (powers of 1024), e.g. 512M, 1G, 1.5T';

export function parseSize(raw: unknown): number {
  if (typeof raw === 'number') return checkBytes(raw, String(raw));
  if (typeof raw !== 'string') throw invalid(`size must be a number or a string, got ${typeof raw}`);
  const text = raw.trim();
  const m = sizePattern.exec(text);
  if (m === null) throw invalid(`cannot read size ${JSON.stringify(raw)}`);
  const [, digits = '', suffix = '', unit] = m;
  if (suffix === '' && unit !== undefined && unit.toLowerCase() !== 'b') throw invalid(`cannot read size ${JSON.stringify(raw)}`);
  const multiplier = multiplierBySuffix[suffix.toUpperCase()];
  if (multiplier === undefined) throw invalid(`unknown size suffix in ${JSON.stringify(raw)}`);
  const [whole = '', frac = ''] = digits.split('.');
  // Exact arithmetic: whole * m + frac * m / 10^len(frac) must be an integer.
  const scale = 10n ** BigInt(frac.length);
  const num = (BigInt(whole) * scale + BigInt(frac === '' ? '0' : frac)) * BigInt(multiplier);
  if (num % scale !== 0n) throw invalid(`size ${JSON.stringify(raw)} is not a whole number of bytes`);
  const bytes = num / scale;
  if (bytes > BigInt(maxVolumeSizeBytes)) throw invalid(`size ${JSON.stringify(raw)} is larger than the 1 PiB limit`);
  return checkBytes(Number(bytes), raw);
}

/**
 * A volume's block size: a size as above that is a power of two from 4 KiB to 1 MiB (the data
 * plane takes blocks of up to 4 MiB, so 1 MiB plus headers fits with room to spare).
 */
export function parseBlockSize(raw: unknown): number {
  const bytes = parseSize(raw);
  if ((bytes & (bytes - 1)) !== 0 || bytes < minBlockSizeBytes || bytes > maxBlockSizeBytes) {
    throw new GalleonError(ErrorCode.INVALID_SIZE, `block size ${JSON.stringify(raw)} is not a power of two from 4 KiB to 1 MiB`,
      { hint: 'use 4K, 8K, 16K, 32K, 64K, 128K, 256K, 512K or 1M' });
  }
  return bytes;
}

function checkBytes(bytes: number, shown: string): number {
  if (!Number.isSafeInteger(bytes)) throw invalid(`size ${shown} is not a whole number of bytes`);
  if (bytes <= 0) throw invalid(`size must be greater than zero, got ${shown}`);
  if (bytes > maxVolumeSizeBytes) throw invalid(`size ${shown} is larger than the 1 PiB limit`);
  return bytes;
}

function invalid(message: string): GalleonError {
  return new GalleonError(ErrorCode.INVALID_SIZE, message, { hint: sizeHint });
}

/**
 * Volumes hold whole blocks: a size rounds UP to a multiple of the block size, so the last block
 * never reaches past the volume's end (a 5000-byte volume of 4096-byte blocks is 8192 bytes).
 */
export function roundUpToBlocks(bytes: number, blockSizeBytes: number): number {
  invariant(Number.isSafeInteger(bytes) && bytes > 0 && blockSizeBytes > 0, `cannot round ${bytes} to blocks of ${blockSizeBytes}`);
  return Math.ceil(bytes / blockSizeBytes) * blockSizeBytes;
}

/** 1073741824 -> "1.00 GiB": for messages. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${bytes} B` : `${v.toFixed(2)} ${units[i]}`;
}
