/**
 * The per-block header kept in the index entry. The crc covers the header fields and the
 * body, so a torn or misdirected body, a flipped bit, or a header that points at the wrong
 * bytes all fail verification.
 *
 *   crc32c(4) | flags(1) | reserved(3) | epoch(6) | seq(6) | pg(4) | length(4)   = 28 bytes
 * then either the body itself (inline layout) or segmentId(4) | offset(6) (segment layout).
 */
import { crc32c } from '@node-rs/crc32';
import { GalleonError } from '../../proto/errors.js';

export const headerBytes = 28;
export const segmentPointerBytes = 10;

export const HeaderFlag = { tombstone: 1, inSegment: 2 } as const;

export interface BlockHeader {
  crc: number;
  flags: number;
  epoch: number;
  seq: number;
  pg: number;
  length: number;
}

export function computeCrc(h: Omit<BlockHeader, 'crc'>, body: Uint8Array): number {
  const fields = Buffer.allocUnsafe(headerBytes - 4);
  writeFields(fields, 0, h);
  return crc32c(body, crc32c(fields));
}

function writeFields(buf: Buffer, at: number, h: Omit<BlockHeader, 'crc'>): void {
  buf[at] = h.flags;
  buf[at + 1] = 0;
  buf[at + 2] = 0;
  buf[at + 3] = 0;
  buf.writeUIntBE(h.epoch, at + 4, 6);
  buf.writeUIntBE(h.seq, at + 10, 6);
  buf.writeUInt32BE(h.pg, at + 16);
  buf.writeUInt32BE(h.length, at + 20);
}

export function encodeHeader(buf: Buffer, h: BlockHeader): void {
  buf.writeUInt32BE(h.crc >>> 0, 0);
  writeFields(buf, 4, h);
}

export function decodeHeader(buf: Buffer): BlockHeader {
  if (buf.length < headerBytes) {
    throw new GalleonError('CHECKSUM_MISMATCH', `block index entry is ${buf.length} bytes, shorter than its ${headerBytes}-byte header`, {
      hint: 'the block is damaged; the scrubber repairs it from another replica',
    });
  }
  return {
    crc: buf.readUInt32BE(0),
    flags: buf[4] ?? 0,
    epoch: buf.readUIntBE(8, 6),
    seq: buf.readUIntBE(14, 6),
    pg: buf.readUInt32BE(20),
    length: buf.readUInt32BE(24),
  };
}
