/**
 * Binary key layout of the index database. Integers are big-endian so LevelDB's byte order is
 * numeric order: a journal range scan walks seqs in order, a block scan walks a volume's blocks.
 *
 *   b | vol | inode(6) | blockNo(6)       -> block index (header + inline body or segment pointer)
 *   j | vol | pg(4) | seq(6)               -> journal entry: kind(1) + block key
 *   p | vol | pg(4)                        -> PG state
 *   m | name                               -> store metadata
 *   v | vol | inode(6) | blockNo(6) | epoch(6) | seq(6) -> a kept older version of a block (snapshots)
 * where vol = len(1) + utf8 volume id.
 */
import { GalleonError } from '../../proto/errors.js';
import type { BlockAddress } from './types.js';

export const maxVolumeIdBytes = 255;
const maxUint48 = 2 ** 48 - 1;

export const Prefix = { block: 0x62, journal: 0x6a, pg: 0x70, meta: 0x6d, version: 0x76 } as const;

function volBytes(volumeId: string): Buffer {
  const v = Buffer.from(volumeId, 'utf8');
  if (v.length === 0 || v.length > maxVolumeIdBytes) {
    throw new GalleonError('INVALID_ARGUMENT', `volume id must be 1..${maxVolumeIdBytes} bytes, got ${v.length}`);
  }
  return v;
}

function checkUint48(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > maxUint48) {
    throw new GalleonError('INVALID_ARGUMENT', `${name} must be an integer in 0..2^48-1, got ${n}`);
  }
}

export function blockKey(a: BlockAddress): Buffer {
  checkUint48('inode', a.inode);
  checkUint48('blockNo', a.blockNo);
  const v = volBytes(a.volumeId);
  const k = Buffer.allocUnsafe(2 + v.length + 12);
  k[0] = Prefix.block;
  k[1] = v.length;
  v.copy(k, 2);
  k.writeUIntBE(a.inode, 2 + v.length, 6);
  k.writeUIntBE(a.blockNo, 8 + v.length, 6);
  return k;
}

export function decodeBlockKey(k: Buffer): BlockAddress {
  const len = k[1] ?? 0;
  return {
    volumeId: k.toString('utf8', 2, 2 + len),
    inode: k.readUIntBE(2 + len, 6),
    blockNo: k.readUIntBE(8 + len, 6),
  };
}

/**
 * A kept version of a block: the block key with prefix `v` and the version's epoch and seq, so
 * one reverse seek below (block, cut, 0) finds the newest version written before a cut.
 */
export function versionKey(a: BlockAddress, epoch: number, seq: number): Buffer {
  checkUint48('epoch', epoch);
  checkUint48('seq', seq);
  const b = blockKey(a);
  const k = Buffer.allocUnsafe(b.length + 12);
  b.copy(k);
  k[0] = Prefix.version;
  k.writeUIntBE(epoch, b.length, 6);
  k.writeUIntBE(seq, b.length + 6, 6);
  return k;
}

/** The version key of a block key (same address) at (epoch, seq). */
export function versionKeyOf(bkey: Buffer, epoch: number, seq: number): Buffer {
  const k = Buffer.allocUnsafe(bkey.length + 12);
  bkey.copy(k);
  k[0] = Prefix.version;
  k.writeUIntBE(epoch, bkey.length, 6);
  k.writeUIntBE(seq, bkey.length + 6, 6);
  return k;
}

/** Epoch and seq of a version key. */
export function decodeVersionStamp(k: Buffer): { epoch: number; seq: number } {
  return { epoch: k.readUIntBE(k.length - 12, 6), seq: k.readUIntBE(k.length - 6, 6) };
}

/** Prefix of the versions of one block, or of every block of a volume (or all versions). */
export function versionPrefix(of?: BlockAddress | string): Buffer {
  if (of === undefined) return Buffer.from([Prefix.version]);
  const p = typeof of === 'string' ? blockPrefix(of) : blockKey(of);
  const k = Buffer.from(p);
  k[0] = Prefix.version;
  return k;
}

/** Prefix of all block keys (of one volume when given). */
export function blockPrefix(volumeId?: string): Buffer {
  if (volumeId === undefined) return Buffer.from([Prefix.block]);
  const v = volBytes(volumeId);
  return Buffer.concat([Buffer.from([Prefix.block, v.length]), v]);
}

function pgPrefixed(prefix: number, volumeId: string, pg: number, extra: number): Buffer {
  if (!Number.isInteger(pg) || pg < 0 || pg > 0xffffffff) throw new GalleonError('INVALID_ARGUMENT', `pg must be a uint32, got ${pg}`);
  const v = volBytes(volumeId);
  const k = Buffer.allocUnsafe(2 + v.length + 4 + extra);
  k[0] = prefix;
  k[1] = v.length;
  v.copy(k, 2);
  k.writeUInt32BE(pg, 2 + v.length);
  return k;
}

export function journalKey(volumeId: string, pg: number, seq: number): Buffer {
  checkUint48('seq', seq);
  const k = pgPrefixed(Prefix.journal, volumeId, pg, 6);
  k.writeUIntBE(seq, k.length - 6, 6);
  return k;
}

export function journalSeqOf(k: Buffer): number {
  return k.readUIntBE(k.length - 6, 6);
}

export function pgKey(volumeId: string, pg: number): Buffer {
  return pgPrefixed(Prefix.pg, volumeId, pg, 0);
}

export function decodePgKey(k: Buffer): { volumeId: string; pg: number } {
  const len = k[1] ?? 0;
  return { volumeId: k.toString('utf8', 2, 2 + len), pg: k.readUInt32BE(2 + len) };
}

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([Prefix.meta]), Buffer.from(name, 'utf8')]);
}

/** Smallest key greater than every key that starts with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0xff, 0xff, 0xff, 0xff]);
}
