/**
 * The one place where an error thrown by a file-system op becomes the negative errno the
 * kernel gets. Pure: no I/O. Recognised, in order:
 *  - `details.errno` of a GalleonError, or the `code` of any error, when it is a POSIX name
 *    ('ENOENT', 'ENOTEMPTY', ...: what Node's fs errors and the namespace's errors carry);
 *  - a GalleonError code with a POSIX meaning (table below);
 * anything else (a bug, a TypeError, an unknown code) is EIO, and the caller logs it.
 */
import { constants } from 'node:os';
import { ErrorCode } from '../../proto/errors.js';

const errnoByName: Readonly<Record<string, number>> = constants.errno;

export const EIO = -(errnoByName.EIO ?? 5);

/** GalleonError codes that have a POSIX meaning; the rest are EIO. */
const errnoByGalleonCode: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.INVALID_ARGUMENT]: 'EINVAL',
  [ErrorCode.INVALID_SIZE]: 'EINVAL',
  [ErrorCode.VOLUME_NOT_FOUND]: 'ENODEV',
  [ErrorCode.NO_SPACE]: 'ENOSPC',
  [ErrorCode.OUT_OF_RANGE]: 'EFBIG',
  [ErrorCode.TIMEOUT]: 'ETIMEDOUT',
  [ErrorCode.LEASE_CONFLICT]: 'EROFS',
  [ErrorCode.FAILED_PRECONDITION]: 'EPERM',
  [ErrorCode.IO_ERROR]: 'EIO',
  [ErrorCode.CHECKSUM_MISMATCH]: 'EIO',
};

export interface ErrnoVerdict {
  /** Negative errno for the kernel. */
  errno: number;
  /** True when the error was not a recognised file-system answer: log it, it may be a bug. */
  unexpected: boolean;
}

function posixErrno(name: unknown): number | undefined {
  if (typeof name !== 'string' || !/^E[A-Z0-9]+$/.test(name)) return undefined;
  const n = errnoByName[name];
  return n === undefined ? undefined : -n;
}

export function errnoOf(err: unknown): ErrnoVerdict {
  if (typeof err !== 'object' || err === null) return { errno: EIO, unexpected: true };
  const e = err as { code?: unknown; details?: { errno?: unknown } };
  const fromDetails = posixErrno(e.details?.errno);
  if (fromDetails !== undefined) return { errno: fromDetails, unexpected: false };
  const fromCode = posixErrno(e.code);
  if (fromCode !== undefined) return { errno: fromCode, unexpected: false };
  if (typeof e.code === 'string' && e.code in errnoByGalleonCode) {
    const name = errnoByGalleonCode[e.code as ErrorCode];
    const n = posixErrno(name);
    if (n !== undefined) return { errno: n, unexpected: n === EIO };
  }
  return { errno: EIO, unexpected: true };
}

/** A POSIX error for ops to throw: `throw fsError('ENOENT')`. */
export class FsError extends Error {
  readonly code: string;
  constructor(code: string, message?: string) {
    // An errno answer to the kernel (ENOENT for every new name's lookup), not a fault: no stack
    // trace to capture (2.4 % of the mount's thread in a small-file loop went to making them).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message ?? code);
    } finally {
      Error.stackTraceLimit = limit;
    }
    if (posixErrno(code) === undefined) throw new TypeError(`not a POSIX errno name: ${code}`);
    this.name = 'FsError';
    this.code = code;
  }
}

export function fsError(code: string, message?: string): FsError {
  return new FsError(code, message);
}

export function errnoNumber(name: string): number {
  const n = posixErrno(name);
  if (n === undefined) throw new TypeError(`not a POSIX errno name: ${name}`);
  return n;
}
