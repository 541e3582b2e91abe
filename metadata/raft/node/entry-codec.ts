/**
 * Binary encoding of one Raft entry, shared by the log store (values on disk) and the
 * transport (entries inside App messages). Layout: term (f64, exact for safe integers),
 * index (f64), type (u8: 0 normal, 1 conf-change), then the data bytes.
 */
import type { Entry } from '../core/types.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';

export const entryHeaderBytes = 17;

export function encodeEntry(e: Entry): Buffer {
  const out = Buffer.allocUnsafe(entryHeaderBytes + e.data.byteLength);
  out.writeDoubleBE(e.term, 0);
  out.writeDoubleBE(e.index, 8);
  out.writeUInt8(e.type === 'conf-change' ? 1 : 0, 16);
  out.set(e.data, entryHeaderBytes);
  return out;
}

export function decodeEntry(buf: Uint8Array): Entry {
  if (buf.byteLength < entryHeaderBytes) {
    throw new GalleonError(ErrorCode.IO_ERROR, `raft entry record is ${buf.byteLength} bytes, shorter than its header`, {
      hint: 'the log store is corrupt; restore this member from a snapshot of a healthy peer',
    });
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const typeByte = b.readUInt8(16);
  return {
    term: b.readDoubleBE(0),
    index: b.readDoubleBE(8),
    type: typeByte === 1 ? 'conf-change' : 'normal',
    // Copy so the entry does not pin a larger shared buffer (e.g. a whole transport frame).
    data: new Uint8Array(b.subarray(entryHeaderBytes)),
  };
}
