/**
 * The truncate epoch: how a truncate on one node and buffered writes on another are ordered.
 *
 * Every size set by setattr (truncate/ftruncate, shrinking, growing or equal) bumps the inode's
 * `truncEpoch`. A writer learns the epoch when it opens the file (and from the answer to its own
 * truncate or commit) and carries it into `fsCommitWrite`. The rule, as a local file system
 * would behave for the two programs:
 *
 * - Writes a node buffered before it learned of a truncate made elsewhere are ordered *before*
 *   that truncate (nothing orders them otherwise: close-to-open consistency promises no
 *   cross-node order without a close and an open). On a local disk, a write followed by
 *   `truncate(S)` leaves the file S bytes long, so such a writer's commit may not change the
 *   size at all: not past the truncation point, nor past what other writers committed since
 *   (the file is what the truncate and the writes ordered after it made it). Its mtime is set
 *   (its bytes below the size are the file's). The answer tells the writer the size and epoch,
 *   and the writer cuts its buffer and its stored blocks past that size (vfs/fs, vfs/data).
 * - A commit in the current epoch grows the size to its end and never shrinks it (two writers of
 *   the same epoch commit in any order; the larger end wins).
 * - A commit without an epoch (older clients) is treated as current.
 * - An epoch from the future is a client bug: refused, nothing changes.
 *
 * Pure (no I/O, clock or randomness); tested exhaustively over small cases in
 * test/metadata/state/ns-truncate.test.ts.
 */
import { invalidArgument } from './validate.js';

export interface CommitVerdict {
  /** The size to record. */
  sizeBytes: number;
  /** The writer's epoch is older than the inode's: it must cut its buffer to `sizeBytes`. */
  stale: boolean;
}

export function commitVerdict(inode: { size: number; truncEpoch: number }, committedBytes: number, writerEpoch: number | undefined): CommitVerdict {
  if (writerEpoch !== undefined && writerEpoch > inode.truncEpoch) {
    throw invalidArgument(`truncate epoch ${writerEpoch} is newer than the file's (${inode.truncEpoch})`, 'pass the truncEpoch the namespace last answered for this inode');
  }
  const stale = writerEpoch !== undefined && writerEpoch < inode.truncEpoch;
  return { sizeBytes: stale ? inode.size : Math.max(inode.size, committedBytes), stale };
}

/** The epoch after a setattr that sets the size (any size: truncate sets it exactly). */
export function epochAfterTruncate(truncEpoch: number): number {
  return truncEpoch + 1;
}
