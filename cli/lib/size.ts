/**
 * Human sizes both ways: `1G` → bytes for input (powers of 1024, as the spec's K/M/G/T), and
 * bytes → `1.00 GiB` for display. Pure: shared by the CLI, the daemon config and tests.
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';

const unitShift = { '': 0, B: 0, K: 10, M: 20, G: 30, T: 40, P: 50 } as const;
type Unit = keyof typeof unitShift;

const sizePattern = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i;

/** Parses `512`, `4K`, `1G`, `1.5GiB`, `10MB` into bytes. Rejects zero, negatives and fractions of a byte. */
export function parseSize(input: string | number, what = 'size'): number {
  if (typeof input === 'number') return checkBytes(input, String(input), what);
  const match = sizePattern.exec(input.trim());
  if (match === null) {
    throw new GalleonError(ErrorCode.INVALID_SIZE, `invalid ${what} "${input}"`, {
      hint: 'use a number with an optional K, M, G or T suffix, e.g. 512M or 10G',
    });
  }
  const unit = (match[2] ?? '').toUpperCase() as Unit;
  const bytes = Number(match[1]) * 2 ** unitShift[unit];
  return checkBytes(bytes, input, what);
}

function checkBytes(bytes: number, input: string, what: string): number {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new GalleonError(ErrorCode.INVALID_SIZE, `invalid ${what} "${input}": must be a whole number of bytes above zero`, {
      hint: 'use a number with an optional K, M, G or T suffix, e.g. 512M or 10G',
    });
  }
  return bytes;
}

const displayUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** `1073741824` → `1.00 GiB`; below 1 KiB the exact byte count. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < displayUnits.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(2)} ${displayUnits[unit]}`;
}

/** 4096 → true; block sizes must be powers of two so blocks align with pages and sectors. */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
