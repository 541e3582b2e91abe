/** The checks every `BlockStore` makes on an op before anything is queued (shared by both implementations). */
import { GalleonError } from '../../proto/errors.js';
import type { BlockOp } from './types.js';

/** Throws INVALID_ARGUMENT for a bad pg/seq/epoch, INVALID_SIZE for a body above `maxBlockBytes`. */
export function checkOp(op: BlockOp, maxBlockBytes: number): void {
  for (const [name, v] of [['pg', op.pg], ['seq', op.seq], ['epoch', op.epoch]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 2 ** 48 - 1) throw new GalleonError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${v}`);
  }
  if (op.seq < 1) throw new GalleonError('INVALID_ARGUMENT', `seq starts at 1, got ${op.seq}`);
  if (op.kind === 'put' && op.data.byteLength > maxBlockBytes) {
    throw new GalleonError('INVALID_SIZE', `block of ${op.data.byteLength} bytes exceeds maxBlockBytes ${maxBlockBytes}`, {
      hint: 'split the write into blocks of the volume\'s block size',
    });
  }
}
