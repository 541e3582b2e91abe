/**
 * Disk error policy: transient errors get a bounded retry, a full disk becomes NO_SPACE,
 * anything else IO_ERROR. Callers branch on the errno `code`, never on a message.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GalleonError } from '../../proto/errors.js';

export const ioRetryAttempts = 4;
export const ioRetryBaseDelayMs = 5;
const transientCodes = new Set(['EAGAIN', 'EINTR', 'EBUSY', 'EMFILE', 'ENFILE']);

function errnoOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export function toStoreError(err: unknown, what: string): GalleonError {
  if (err instanceof GalleonError) return err;
  const code = errnoOf(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new GalleonError('NO_SPACE', `no space left on the data disk while ${what}`, {
      hint: 'free disk space or add capacity; the write was not applied', cause: err,
    });
  }
  return new GalleonError('IO_ERROR', `disk I/O failed while ${what} (${code ?? 'unknown error'})`, {
    hint: 'check the data disk and the node log', cause: err,
  });
}

/** Runs `fn`, retrying transient errno failures a bounded number of times. */
export async function withIoRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = errnoOf(err);
      if (code === undefined || !transientCodes.has(code) || attempt >= ioRetryAttempts) throw toStoreError(err, what);
      await sleep(ioRetryBaseDelayMs * 2 ** (attempt - 1));
    }
  }
}
