/**
 * Human sizes both ways: `1G` → bytes for input (powers of 1024, as the spec's K/M/G/T), and
 * bytes → `1.00 GiB` for display. Pure: shared by the CLI, the daemon config and tests.
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { maxVolumeSizeBytes } from '../../proto/limits.js';

const unitShift = { '': 0, B: 0, K: 10, M: 20, G: 30, T: 40, P: 50 } as const;
type Unit = keyof typeof unitShift;

const sizePattern = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i;

/** A limit on a parsed size, named for the message ("1 PiB"). */
export interface SizeLimit { bytes: number; label: string }
/** The metadata service's limit on a volume (metadata/state/logic/size.ts), checked here first so the message is the same. */
export const volumeSizeLimit: SizeLimit = { bytes: maxVolumeSizeBytes, label: '1 PiB' };
const exactLimit: SizeLimit = { bytes: Number.MAX_SAFE_INTEGER, label: '2^53 - 1 bytes' };
const sizeHint = 'use a number with an optional K, M, G or T suffix, e.g. 512M or 10G';

/** Parses `512`, `4K`, `1G`, `1.5GiB`, `10MB` into bytes. Rejects zero, negatives, fractions of a byte, and sizes beyond `limit`. */
export function parseSize(input: string | number, what = 'size', limit: SizeLimit = exactLimit): number {
  if (typeof input === 'number') return checkBytes(input, String(input), what, limit);
  const match = sizePattern.exec(input.trim());
  if (match === null) {
    throw new GalleonError(ErrorCode.INVALID_SIZE, `invalid ${what} "${input}"`, { hint: sizeHint });
  }
  const unit = (match[2] ?? '').toUpperCase() as Unit;
  const bytes = Number(match[1]) * 2 ** unitShift[unit];
  return checkBytes(bytes, input, what, limit);
}

/** A volume size (create, expand): at most 1 PiB, which a typo like 99999T exceeds. */
export function parseVolumeSize(input: string): number {
  return parseSize(input, 'size', volumeSizeLimit);
}

function checkBytes(bytes: number, input: string, what: string, limit: SizeLimit): number {
  // Checked first: beyond 2^53 a byte count is no longer exact, and "not whole" would mislead.
  if (Number.isFinite(bytes) && bytes > limit.bytes) {
    throw new GalleonError(ErrorCode.INVALID_SIZE, `${what} "${input}" is larger than the ${limit.label} limit`, { hint: `give at most ${formatBytes(limit.bytes)}` });
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new GalleonError(ErrorCode.INVALID_SIZE, `invalid ${what} "${input}": must be a whole number of bytes above zero`, { hint: sizeHint });
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

/** The line `volume create` / `expand` add when the service rounded the size up to whole blocks; null when it did not. */
export function roundingNote(requestedBytes: number, volume: { sizeBytes: number; blockSizeBytes: number }): string | null {
  if (volume.sizeBytes === requestedBytes) return null;
  return `Note: ${requestedBytes} bytes rounded up to ${volume.sizeBytes} (${volume.sizeBytes / volume.blockSizeBytes} whole block(s) of ${volume.blockSizeBytes} bytes).`;
}
