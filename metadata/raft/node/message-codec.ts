/**
 * Compact encoding of a batch of Raft messages for one transport frame:
 *
 *   u32 headerBytes | header (JSON array, one short-keyed object per message) | body
 *
 * The body holds, message by message, each entry (u32 length + entry-codec record) and then the
 * snapshot data (length given in the header). Entry payloads therefore never pass through JSON
 * or base64: a batch of small proposals costs one JSON.parse of the header and a few slices.
 */
import { MessageType, type Entry, type Message, type SnapshotMeta } from '../core/types.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { decodeEntry, encodeEntry } from './entry-codec.js';

interface WireMessage {
  y: MessageType;
  f: string;
  t: string;
  e: number; // term
  lt: number;
  i: number;
  c: number;
  r?: 1;
  rh?: number;
  rht?: number;
  n?: number; // entry count
  sm?: SnapshotMeta;
  sl?: number; // snapshot data bytes
  x?: string; // context
}

/** Rough wire size, used to cut batches into frames before encoding them. */
export function estimateMessageBytes(m: Message): number {
  let n = 96;
  for (const e of m.entries) n += 21 + e.data.byteLength;
  if (m.snapshot !== undefined) n += 256 + m.snapshot.data.byteLength;
  return n;
}

export function encodeMessages(messages: readonly Message[]): Buffer {
  const header: WireMessage[] = [];
  const parts: Uint8Array[] = [];
  let bodyBytes = 0;
  for (const m of messages) {
    const w: WireMessage = { y: m.type, f: m.from, t: m.to, e: m.term, lt: m.logTerm, i: m.index, c: m.commit };
    if (m.reject) w.r = 1;
    if (m.rejectHint !== 0) w.rh = m.rejectHint;
    if (m.rejectHintTerm !== undefined) w.rht = m.rejectHintTerm;
    if (m.context !== undefined) w.x = m.context;
    if (m.entries.length > 0) {
      w.n = m.entries.length;
      for (const e of m.entries) {
        const rec = encodeEntry(e);
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32BE(rec.byteLength, 0);
        parts.push(len, rec);
        bodyBytes += 4 + rec.byteLength;
      }
    }
    if (m.snapshot !== undefined) {
      w.sm = m.snapshot.meta;
      w.sl = m.snapshot.data.byteLength;
      parts.push(m.snapshot.data);
      bodyBytes += m.snapshot.data.byteLength;
    }
    header.push(w);
  }
  const headerBuf = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.allocUnsafe(4 + headerBuf.byteLength + bodyBytes);
  out.writeUInt32BE(headerBuf.byteLength, 0);
  headerBuf.copy(out, 4);
  let off = 4 + headerBuf.byteLength;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function malformed(what: string): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, `malformed raft frame: ${what}`, {
    hint: 'a peer runs an incompatible version or the stream is corrupt; the frame was dropped',
  });
}

const messageTypes = new Set<string>(Object.values(MessageType));
/** A batch never holds more entries per message than this (the sender cuts frames far below). */
export const maxEntriesPerMessage = 1_000_000;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isOptCount = (v: unknown): boolean => v === undefined || isCount(v);

/**
 * The header fields of one wire message, checked before anything reaches the Raft core: a frame
 * from a broken or foreign peer must be dropped, never stepped (the core asserts its invariants
 * and would stop the member on a NaN term). Cheap typeof checks: this runs per message.
 */
function checkWireMessage(w: unknown): WireMessage {
  if (typeof w !== 'object' || w === null || Array.isArray(w)) throw malformed('a message is not an object');
  const m = w as Record<string, unknown>;
  if (typeof m.y !== 'string' || !messageTypes.has(m.y)) throw malformed('unknown message type');
  if (typeof m.f !== 'string' || m.f === '' || typeof m.t !== 'string' || m.t === '') throw malformed('message without sender or receiver');
  if (!isCount(m.e) || !isCount(m.lt) || !isCount(m.i) || !isCount(m.c)) throw malformed('term, index or commit is not a non-negative integer');
  if (!isOptCount(m.rh) || !isOptCount(m.rht) || !isOptCount(m.sl) || !isOptCount(m.n) || (m.n !== undefined && (m.n as number) > maxEntriesPerMessage)) throw malformed('a count is not a non-negative integer');
  if ((m.r !== undefined && m.r !== 1) || (m.x !== undefined && typeof m.x !== 'string')) throw malformed('reject flag or context of the wrong type');
  if (m.sm !== undefined && (typeof m.sm !== 'object' || m.sm === null || !isCount((m.sm as Record<string, unknown>).index) || !isCount((m.sm as Record<string, unknown>).term))) throw malformed('snapshot meta of the wrong shape');
  return m as unknown as WireMessage;
}

export function decodeMessages(buf: Uint8Array): Message[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.byteLength < 4) throw malformed('shorter than its length prefix');
  const headerBytes = b.readUInt32BE(0);
  if (4 + headerBytes > b.byteLength) throw malformed('header runs past the frame');
  let header: WireMessage[];
  try {
    header = JSON.parse(b.toString('utf8', 4, 4 + headerBytes)) as WireMessage[];
  } catch {
    throw malformed('header is not JSON');
  }
  if (!Array.isArray(header)) throw malformed('header is not a list');
  // One copy of the body for the whole frame: entries and snapshot data are views into it, so
  // they never pin the (larger, pooled) receive buffer and no entry costs an allocation.
  const body = Buffer.from(b.subarray(4 + headerBytes));
  let off = 0;
  const out: Message[] = [];
  for (const raw of header) {
    const w = checkWireMessage(raw);
    const entries: Entry[] = [];
    for (let k = 0; k < (w.n ?? 0); k++) {
      if (off + 4 > body.byteLength) throw malformed('entry length runs past the frame');
      const len = body.readUInt32BE(off);
      off += 4;
      if (off + len > body.byteLength) throw malformed('entry runs past the frame');
      entries.push(decodeEntry(body.subarray(off, off + len)));
      off += len;
    }
    const m: Message = {
      type: w.y, from: w.f, to: w.t, term: w.e, logTerm: w.lt, index: w.i, entries, commit: w.c,
      reject: w.r === 1, rejectHint: w.rh ?? 0,
    };
    if (w.rht !== undefined) m.rejectHintTerm = w.rht;
    if (w.x !== undefined) m.context = w.x;
    if (w.sm !== undefined) {
      const sl = w.sl ?? 0;
      if (off + sl > body.byteLength) throw malformed('snapshot data runs past the frame');
      m.snapshot = { meta: w.sm, data: new Uint8Array(body.buffer, body.byteOffset + off, sl) };
      off += sl;
    }
    out.push(m);
  }
  if (off !== body.byteLength) throw malformed(`${body.byteLength - off} trailing bytes`);
  return out;
}
