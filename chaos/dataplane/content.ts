/**
 * Block contents that name the write they came from: `value` (writer id + counter, unique per
 * write) at the front, a deterministic filler derived from it, and a crc32c of everything
 * before it in the last four bytes. A read therefore tells which write it returned, and a torn
 * or mixed block cannot pass as any write.
 */
import { crc32c } from '@node-rs/crc32';

export const valueFieldBytes = 32;
export const crcBytes = 4;

export function encodeBlock(value: string, sizeBytes: number): Buffer {
  if (Buffer.byteLength(value) > valueFieldBytes) throw new RangeError(`value ${value} is longer than ${valueFieldBytes} bytes`);
  if (sizeBytes < valueFieldBytes + crcBytes) throw new RangeError(`blocks of ${sizeBytes} bytes are too small for the header`);
  const buf = Buffer.alloc(sizeBytes);
  buf.write(value, 0, 'utf8');
  // Filler that differs per write, so two writes never share a body by accident.
  const seed = crc32c(value);
  for (let i = valueFieldBytes; i < sizeBytes - crcBytes; i++) buf[i] = (seed >>> ((i % 4) * 8)) ^ (i & 0xff);
  buf.writeUInt32BE(crc32c(buf.subarray(0, sizeBytes - crcBytes)), sizeBytes - crcBytes);
  return buf;
}

/** The value a block carries, or a description starting with `corrupt:` when it fails its check. */
export function decodeBlock(buf: Buffer): string {
  if (buf.length < valueFieldBytes + crcBytes) return `corrupt:short block of ${buf.length} bytes`;
  const end = buf.length - crcBytes;
  if (crc32c(buf.subarray(0, end)) !== buf.readUInt32BE(end)) return 'corrupt:crc mismatch';
  const nul = buf.indexOf(0);
  return buf.toString('utf8', 0, nul === -1 || nul > valueFieldBytes ? valueFieldBytes : nul);
}
