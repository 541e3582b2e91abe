/**
 * The snapshot format: one buffer of
 *   magic "GSNP" | version u8 | index u64 BE | count u32 BE | count x (keyLen u32 | key | valueLen u32 | value) | crc32c u32 BE
 * where the CRC covers every byte before it. Keys and values are the raw UTF-8 of the database.
 */
import { crc32c } from '@node-rs/crc32';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

const magic = Buffer.from('GSNP', 'ascii');
const formatVersion = 1;
const headerBytes = magic.length + 1 + 8 + 4;
const crcBytes = 4;

export interface SnapshotEntry {
  key: Buffer;
  value: Buffer;
}

export function encodeSnapshot(index: number, entries: readonly SnapshotEntry[]): Buffer {
  let size = headerBytes + crcBytes;
  for (const e of entries) size += 8 + e.key.length + e.value.length;
  const out = Buffer.allocUnsafe(size);
  let at = magic.copy(out, 0);
  at = out.writeUInt8(formatVersion, at);
  at = out.writeBigUInt64BE(BigInt(index), at);
  at = out.writeUInt32BE(entries.length, at);
  for (const e of entries) {
    at = out.writeUInt32BE(e.key.length, at);
    at += e.key.copy(out, at);
    at = out.writeUInt32BE(e.value.length, at);
    at += e.value.copy(out, at);
  }
  out.writeUInt32BE(crc32c(out.subarray(0, at)), at);
  return out;
}

/** Bytes per chunk the writer fills before starting another (entries larger than this get their own). */
export const snapshotChunkBytes = 4 * 2 ** 20;

/**
 * Encodes entries as they come (from a database iterator), in bounded chunks, instead of holding
 * every key and value as its own Buffer until the end: at a million inodes that list cost ~6x the
 * snapshot's size. `finish()` copies the chunks into the one buffer the contract hands over,
 * releasing each as it goes. Same format as encodeSnapshot.
 */
export class SnapshotWriter {
  private readonly chunks: Buffer[] = [];
  private cur: Buffer = Buffer.allocUnsafe(snapshotChunkBytes);
  private at = 0;
  private count = 0;

  constructor() {
    this.at = headerBytes;
  }

  add(key: Buffer, value: Buffer): void {
    this.reserve(8 + key.length + value.length);
    this.at = this.cur.writeUInt32BE(key.length, this.at);
    this.at += key.copy(this.cur, this.at);
    this.at = this.cur.writeUInt32BE(value.length, this.at);
    this.at += value.copy(this.cur, this.at);
    this.count += 1;
  }

  /** `index`: the applied index the entries carry (read from them while iterating). */
  finish(index: number): Buffer {
    this.chunks.push(this.cur.subarray(0, this.at));
    let size = crcBytes;
    for (const c of this.chunks) size += c.length;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < this.chunks.length; i += 1) {
      at += this.chunks[i]!.copy(out, at);
      this.chunks[i] = Buffer.alloc(0);
    }
    let h = magic.copy(out, 0);
    h = out.writeUInt8(formatVersion, h);
    h = out.writeBigUInt64BE(BigInt(index), h);
    out.writeUInt32BE(this.count, h);
    out.writeUInt32BE(crc32c(out.subarray(0, at)), at);
    return out;
  }

  private reserve(bytes: number): void {
    if (this.at + bytes <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.at));
    this.cur = Buffer.allocUnsafe(Math.max(snapshotChunkBytes, bytes));
    this.at = 0;
  }
}

/**
 * Checks a snapshot (header, CRC, version) and returns its index and a generator over its entries
 * (views into `data`, not copies), for a restore that never holds every entry at once.
 */
export function openSnapshot(data: Uint8Array): { index: number; count: number; entries: () => Generator<SnapshotEntry> } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const corrupt = (what: string): GalleonError => new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `state snapshot is corrupt: ${what}`,
    { hint: 'fetch the snapshot again from the leader' });
  if (buf.length < headerBytes + crcBytes || !buf.subarray(0, magic.length).equals(magic)) throw corrupt('bad header');
  const body = buf.subarray(0, buf.length - crcBytes);
  if (crc32c(body) !== buf.readUInt32BE(body.length)) throw corrupt('checksum mismatch');
  if (buf.readUInt8(magic.length) !== formatVersion) throw corrupt(`unknown format version ${buf.readUInt8(magic.length)}`);
  const index = Number(buf.readBigUInt64BE(magic.length + 1));
  const count = buf.readUInt32BE(magic.length + 9);
  const entries = (): Generator<SnapshotEntry> => entriesOf(body, headerBytes, count, corrupt);
  return { index, count, entries };
}

export function decodeSnapshot(data: Uint8Array): { index: number; entries: SnapshotEntry[] } {
  const snap = openSnapshot(data);
  return { index: snap.index, entries: [...snap.entries()] };
}

/*
 * The streamed format (what the Raft driver ships): a snapshot is a sequence of chunks, each
 * checkable on its own:
 *   magic "GSNC" | version u8 | flags u8 (bit 0: last chunk) | index u64 BE | seq u32 BE |
 *   count u32 BE | count x (keyLen u32 | key | valueLen u32 | value) | crc32c u32 BE
 * Entries are in key order across the whole sequence; seq counts chunks from 0. A receiver can
 * apply each chunk as it comes and tell a lost, repeated or foreign chunk from the header.
 */
const chunkMagic = Buffer.from('GSNC', 'ascii');
const chunkVersion = 1;
const chunkHeaderBytes = chunkMagic.length + 1 + 1 + 8 + 4 + 4;
const lastChunkFlag = 1;

export interface SnapshotChunk {
  index: number;
  seq: number;
  last: boolean;
  count: number;
  entries: () => Generator<SnapshotEntry>;
}

/** Fills chunks of about `maxChunkBytes` from entries as they come; never holds more than one chunk. */
export class SnapshotChunkEncoder {
  private cur: Buffer;
  private at = chunkHeaderBytes;
  private count = 0;
  private seq = 0;

  constructor(private readonly index: number, private readonly maxChunkBytes: number) {
    if (!Number.isSafeInteger(index) || index < 0) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot index ${index} is not a count`, { hint: 'pass the applied index' });
    if (!(maxChunkBytes >= 64)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot chunk size ${maxChunkBytes} is below 64 bytes`, { hint: 'use at least a few KiB' });
    this.cur = Buffer.allocUnsafe(maxChunkBytes + crcBytes);
  }

  /** Adds one entry; returns the chunk it completed, if any (the entry then starts the next one). */
  add(key: Buffer, value: Buffer): Buffer | null {
    const need = 8 + key.length + value.length;
    let done: Buffer | null = null;
    if (this.count > 0 && this.at + need > this.maxChunkBytes) done = this.seal(false);
    if (this.at + need + crcBytes > this.cur.length) {
      const bigger = Buffer.allocUnsafe(this.at + need + crcBytes);
      this.cur.copy(bigger, 0, 0, this.at);
      this.cur = bigger;
    }
    this.at = this.cur.writeUInt32BE(key.length, this.at);
    this.at += key.copy(this.cur, this.at);
    this.at = this.cur.writeUInt32BE(value.length, this.at);
    this.at += value.copy(this.cur, this.at);
    this.count += 1;
    return done;
  }

  /** The last chunk (possibly empty of entries: it still says "last"). */
  finish(): Buffer {
    return this.seal(true);
  }

  private seal(last: boolean): Buffer {
    let h = chunkMagic.copy(this.cur, 0);
    h = this.cur.writeUInt8(chunkVersion, h);
    h = this.cur.writeUInt8(last ? lastChunkFlag : 0, h);
    h = this.cur.writeBigUInt64BE(BigInt(this.index), h);
    h = this.cur.writeUInt32BE(this.seq, h);
    this.cur.writeUInt32BE(this.count, h);
    this.cur.writeUInt32BE(crc32c(this.cur.subarray(0, this.at)), this.at);
    const out = Buffer.from(this.cur.subarray(0, this.at + crcBytes));
    this.seq += 1;
    this.count = 0;
    this.at = chunkHeaderBytes;
    return out;
  }
}

/** Checks one chunk (header, CRC) and returns its header and a generator over its entries (views into `data`). */
export function decodeSnapshotChunk(data: Uint8Array): SnapshotChunk {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const corrupt = (what: string): GalleonError => new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `state snapshot chunk is corrupt: ${what}`,
    { hint: 'the transfer restarts from the leader' });
  if (buf.length < chunkHeaderBytes + crcBytes || !buf.subarray(0, chunkMagic.length).equals(chunkMagic)) throw corrupt('bad header');
  const body = buf.subarray(0, buf.length - crcBytes);
  if (crc32c(body) !== buf.readUInt32BE(body.length)) throw corrupt('checksum mismatch');
  let h = chunkMagic.length;
  if (buf.readUInt8(h) !== chunkVersion) throw corrupt(`unknown format version ${buf.readUInt8(h)}`);
  const last = (buf.readUInt8(h + 1) & lastChunkFlag) !== 0;
  h += 2;
  const index = Number(buf.readBigUInt64BE(h));
  const seq = buf.readUInt32BE(h + 8);
  const count = buf.readUInt32BE(h + 12);
  const entries = (): Generator<SnapshotEntry> => entriesOf(body, chunkHeaderBytes, count, corrupt);
  return { index, seq, last, count, entries };
}

/** The `count` length-prefixed key/value pairs of `body` from byte `start`, checked to fill it exactly. */
function* entriesOf(body: Buffer, start: number, count: number, corrupt: (what: string) => GalleonError): Generator<SnapshotEntry> {
  let at = start;
  const take = (): Buffer => {
    if (at + 4 > body.length) throw corrupt('truncated entry');
    const len = body.readUInt32BE(at);
    at += 4;
    if (at + len > body.length) throw corrupt('truncated entry');
    const b = body.subarray(at, at + len);
    at += len;
    return b;
  };
  for (let i = 0; i < count; i += 1) yield { key: take(), value: take() };
  if (at !== body.length) throw corrupt('trailing bytes');
}
