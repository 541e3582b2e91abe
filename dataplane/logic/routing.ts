/**
 * Block -> placement group routing, shared by client and server so both agree. Consecutive
 * blocks stay together in objects of `blocksPerObject` blocks (sequential I/O hits one PG at a
 * time, one object's blocks share a journal); objects spread over PGs by a stable hash.
 */
import { crc32c } from '@node-rs/crc32';
import { GalleonError } from '../../proto/errors.js';

export const blocksPerObject = 64;

export function pgOf(inode: number, blockNo: number, pgCount: number): number {
  if (!Number.isInteger(pgCount) || pgCount < 1) throw new GalleonError('INVALID_ARGUMENT', `pgCount must be a positive integer, got ${pgCount}`);
  const key = Buffer.allocUnsafe(12);
  key.writeUIntBE(inode, 0, 6);
  key.writeUIntBE(Math.floor(blockNo / blocksPerObject), 6, 6);
  return crc32c(key) % pgCount;
}
