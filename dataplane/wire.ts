/**
 * The data-plane HTTP contract shared by server and client: paths, header names, the binary
 * framing of journal streams, and errors as serialized GalleonError JSON.
 *
 *   PUT    /v1/blocks/:volume/:inode/:block?epoch=&concern=   primary path (body = block bytes)
 *   DELETE /v1/blocks/:volume/:inode/:block?epoch=&concern=   primary path
 *   GET    /v1/blocks/:volume/:inode/:block[?epoch=]          read (verified); a 404 carries x-galleon-applied-seq and,
 *                                                              over a tombstone, x-galleon-deleted-seq (issue #12)
 *   GET    /v1/block-head/:volume/:inode/:block[?bytes=]     what this node holds, without the body: kind, seq,
 *                                                              epoch, PG watermark, the body's first bytes (issue #12)
 *   POST   /v1/block-heads/:volume {blocks: [[inode, block]…], bytes?, below?}  the same for many blocks of one volume
 *                                                              (below: as of a cut):
 *                                                              {heads: [{kind, appliedSeq, seq?, epoch?, head? (base64)}]}
 *   POST   /v1/block-range/:volume {inode, from, count, epoch?}  read up to `maxRangeReadBlocks` consecutive blocks of one
 *                                                              object (one PG) from its primary in one request; binary
 *                                                              answer below, each block found or not found with the
 *                                                              404's absence stamp; at most `maxRangeReadBytes` of bodies
 *                                                              (fewer blocks than asked: the reader asks for the rest)
 *   POST   /v1/replicate                                      primary -> replica, one op (headers below)
 *   POST   /v1/replicate-batch                                primary -> replica, many ops (binary frames below)
 *   POST   /v1/blocks-batch                                   client -> primary, many writes (binary frames below)
 *   GET    /v1/journal/:volume/:pg?from=&maxEntries=&maxBytes= journal frames for catch-up
 *   GET    /v1/pg-blocks/:volume/:pg[?epoch=]                 every live block of a PG, then its kept versions and the
 *                                                              live tombstones over them (full resync)
 *   POST   /v1/peer/:volume/:pg?epoch=&from=                  primary -> replica, install a new epoch (peering)
 *   POST   /v1/catchup/:volume/:pg?from=&epoch=[&primary=]     primary -> replica, pull missed writes now (from the
 *                                                              primary's registered address; a different primary= is refused)
 *   GET    /v1/pgs                                            PG states of this node
 *   PUT    /v1/admin/placement                                install a placement (static source)
 *   GET    /healthz
 */
import { GalleonError, isSerializedError } from '../proto/errors.js';
import type { SerializedError } from '../proto/errors.js';
import { writeConcernOrder } from '../proto/metadata-types.js';
import type { WriteConcern } from '../proto/metadata-types.js';
import type { ZodError } from 'zod';
import type { BlockAddress } from './store/types.js';

export const Header = {
  volume: 'x-galleon-volume',
  inode: 'x-galleon-inode',
  block: 'x-galleon-block',
  pg: 'x-galleon-pg',
  seq: 'x-galleon-seq',
  epoch: 'x-galleon-epoch',
  op: 'x-galleon-op',
  sync: 'x-galleon-sync',
  primary: 'x-galleon-primary',
  trim: 'x-galleon-trim',
  appliedSeq: 'x-galleon-applied-seq',
  /** On a BLOCK_NOT_FOUND read: the seq of the node's tombstone for the block (none: no tombstone). */
  deletedSeq: 'x-galleon-deleted-seq',
  /** The primary's answer to a hand-back write: `taken` or `declined` (issue #13). */
  handBack: 'x-galleon-hand-back',
} as const;

/** GET /v1/block-head answers `block`, `deleted` or `absent` in this header. */
export const blockHeadKindHeader = 'x-galleon-head';
/** A block head carries at most this many bytes of the body (an encrypted body's seal header is 24). */
export const maxBlockHeadBytes = 64;
export const defaultBlockHeadBytes = 24;
/** Blocks one POST /v1/block-heads may name; its JSON body is at most `maxBlockHeadsBodyBytes`. */
export const maxHeadsPerRequest = 256;
export const maxBlockHeadsBodyBytes = 64 * 1024;

/** One entry of a POST /v1/block-heads answer. */
export interface BlockHeadAnswer {
  kind: 'block' | 'deleted' | 'absent';
  appliedSeq: number;
  seq?: number;
  epoch?: number;
  /** base64 of the body's first bytes (block only). */
  head?: string;
}

/** GET …?below=CUT: the block as of a cut (server/snapshot-routes.ts). */
export function versionPathOf(a: BlockAddress): string {
  return `/v1/versions/${encodeURIComponent(a.volumeId)}/${a.inode}/${a.blockNo}`;
}

export function blockPath(a: BlockAddress): string {
  return `/v1/blocks/${encodeURIComponent(a.volumeId)}/${a.inode}/${a.blockNo}`;
}

/** One journal record on the wire: u32 meta length, meta JSON, u32 data length, data. */
export interface JournalFrameMeta {
  seq: number;
  kind: 'put' | 'delete' | 'noop';
  inode: number;
  blockNo: number;
  epoch: number;
  /**
   * Full resync only (issue #11): a version the sender keeps for snapshots, to be stored as a
   * version, not as the live block (`kind` put: a body; delete: a kept tombstone).
   */
  kept?: true;
}

/** One op of a replicate batch (frame meta; the frame data is the block body for puts). */
export interface ReplicateFrameMeta {
  volumeId: string;
  inode: number;
  blockNo: number;
  pg: number;
  seq: number;
  epoch: number;
  op: 'put' | 'delete';
  sync: boolean;
  primary: string;
  trim: number;
}

/** One write of a client batch to a primary; each carries its own epoch and concern. */
export interface BlockBatchFrameMeta {
  volumeId: string;
  inode: number;
  blockNo: number;
  epoch: number;
  op: 'put' | 'delete';
  concern: WriteConcern;
}

export type ReplicateResult = { appliedSeq: number } | { error: SerializedError };

/** What a primary answers for one write of a client batch. */
export interface BatchWriteAck {
  pg: number;
  seq: number;
  epoch: number;
  concern: WriteConcern;
}
export type BlockBatchResult = BatchWriteAck | { error: SerializedError };

// ---- binary batch framing -------------------------------------------------------------------
//
// The two hot batch routes carry fixed-layout binary frames, not JSON: per small write the wire
// cost is a few field copies. Every body starts with a 4-byte magic naming its kind and format
// version, so a peer speaking another format is refused loudly instead of misread. Integers are
// big-endian; 64-bit fields hold safe integers (< 2^53) as two u32 halves.
//
//   blocks-batch request   'GBW1' then per write: u8 op, u8 concern, u16 volume length,
//                          volume, u64 inode, u64 blockNo, u64 epoch, u32 data length, data
//   blocks-batch answer    'GBA1' u32 count, then per write: u8 0, u32 pg, u64 seq, u64 epoch,
//                          u8 concern | u8 1, u32 length, error JSON
//   replicate-batch request 'GRB1' then per op: u8 op, u8 sync, u16 volume length, u16 primary
//                          length, volume, primary, u64 inode, u64 blockNo, u32 pg, u64 seq,
//                          u64 epoch, u64 trim, u32 data length, data
//   replicate-batch answer 'GRA1' u32 count, then per op: u8 0, u64 appliedSeq | u8 1, u32
//                          length, error JSON

export const BatchMagic = {
  blockWrites: 0x47425731, // 'GBW1'
  blockAnswers: 0x47424131, // 'GBA1'
  replicateOps: 0x47524231, // 'GRB1'
  replicateAnswers: 0x47524131, // 'GRA1'
  rangeAnswer: 0x47525231, // 'GRR1'
} as const;

/** Bodies up to this size are copied into the batch buffer; larger ones travel as their own chunks. */
export const copyBodiesBelowBytes = 64 * 1024;
const twoTo32 = 4294967296;
const opCodes = ['put', 'delete'] as const;

function writeU64(buf: Buffer, at: number, n: number): number {
  buf.writeUInt32BE(Math.floor(n / twoTo32), at);
  buf.writeUInt32BE(n >>> 0, at + 4);
  return at + 8;
}

function truncated(what: string): GalleonError {
  return new GalleonError('INVALID_ARGUMENT', `batch body truncated in ${what}`, { hint: 'the peer sent a malformed batch; check that both sides run the same version' });
}

/** Reads batch bodies with bounds checks; every read past the end throws INVALID_ARGUMENT. */
class BatchReader {
  at = 4;
  constructor(private readonly buf: Buffer, magic: number, what: string) {
    if (buf.length < 4 || buf.readUInt32BE(0) !== magic) {
      throw new GalleonError('INVALID_ARGUMENT', `${what} body does not start with its format magic`, { hint: 'both sides must run the same GalleonFS version' });
    }
  }

  get done(): boolean {
    return this.at >= this.buf.length;
  }

  private need(n: number, what: string): number {
    const at = this.at;
    if (at + n > this.buf.length) throw truncated(what);
    this.at = at + n;
    return at;
  }

  u8(what: string): number {
    return this.buf.readUInt8(this.need(1, what));
  }

  u16(what: string): number {
    return this.buf.readUInt16BE(this.need(2, what));
  }

  u32(what: string): number {
    return this.buf.readUInt32BE(this.need(4, what));
  }

  u64(what: string): number {
    const at = this.need(8, what);
    const hi = this.buf.readUInt32BE(at);
    if (hi >= 0x200000) throw new GalleonError('INVALID_ARGUMENT', `${what} exceeds the safe integer range`);
    return hi * twoTo32 + this.buf.readUInt32BE(at + 4);
  }

  text(n: number, what: string): string {
    const at = this.need(n, what);
    return this.buf.toString('utf8', at, at + n);
  }

  bytes(n: number, what: string): Buffer {
    const at = this.need(n, what);
    return this.buf.subarray(at, at + n);
  }

  op(what: string): 'put' | 'delete' {
    const o = opCodes[this.u8(what)];
    if (o === undefined) throw new GalleonError('INVALID_ARGUMENT', `unknown ${what} code`);
    return o;
  }

  concern(): WriteConcern {
    const c = writeConcernOrder[this.u8('write concern')];
    if (c === undefined) throw new GalleonError('INVALID_ARGUMENT', 'unknown write concern code', { hint: `use one of ${writeConcernOrder.join(', ')}` });
    return c;
  }
}

export interface EncodedBatch {
  chunks: Buffer[];
  length: number;
}

/** One frame of a batch body: its fixed fields (sized up front, written at `at`), then its data. */
interface FrameLayout<T> {
  fieldBytes: (item: T) => number;
  /** Writes the item's fields at `at`; returns the offset after them. */
  writeFields: (b: Buffer, at: number, item: T) => number;
  data: (item: T) => Uint8Array | undefined;
}

/**
 * Builds a batch body: the magic, then per item its fields and `u32 data length, data`. Fields and
 * bodies below `copyBodiesBelowBytes` go into one buffer; larger bodies are referenced as their
 * own chunks, never copied.
 */
function encodeFrames<T>(magic: number, items: readonly T[], layout: FrameLayout<T>): EncodedBatch {
  let size = 4;
  for (const item of items) {
    const n = layout.data(item)?.byteLength ?? 0;
    size += layout.fieldBytes(item) + 4 + (n < copyBodiesBelowBytes ? n : 0);
  }
  const chunks: Buffer[] = [];
  let length = 0;
  let buf = Buffer.allocUnsafe(size);
  let at = buf.writeUInt32BE(magic, 0);
  for (const item of items) {
    at = layout.writeFields(buf, at, item);
    const d = layout.data(item);
    const n = d?.byteLength ?? 0;
    at = buf.writeUInt32BE(n, at);
    if (d === undefined || n === 0) continue;
    if (n < copyBodiesBelowBytes) {
      buf.set(d, at);
      at += n;
      continue;
    }
    chunks.push(buf.subarray(0, at), Buffer.from(d.buffer, d.byteOffset, n));
    length += at + n;
    buf = buf.subarray(at);
    at = 0;
  }
  if (at > 0) { chunks.push(buf.subarray(0, at)); length += at; }
  return { chunks, length };
}

export function encodeBlockBatch(writes: readonly { meta: BlockBatchFrameMeta; data: Uint8Array | undefined }[]): EncodedBatch {
  return encodeFrames(BatchMagic.blockWrites, writes, {
    fieldBytes: (w) => 1 + 1 + 2 + Buffer.byteLength(w.meta.volumeId) + 24,
    writeFields: (b, at, { meta: m }) => {
      at = b.writeUInt8(m.op === 'put' ? 0 : 1, at);
      at = b.writeUInt8(writeConcernOrder.indexOf(m.concern), at);
      const vol = b.write(m.volumeId, at + 2, 'utf8');
      at = b.writeUInt16BE(vol, at) + vol;
      at = writeU64(b, at, m.inode);
      at = writeU64(b, at, m.blockNo);
      return writeU64(b, at, m.epoch);
    },
    data: (w) => (w.meta.op === 'put' ? w.data : undefined),
  });
}

export function decodeBlockBatch(buf: Buffer): { meta: BlockBatchFrameMeta; data: Buffer }[] {
  const r = new BatchReader(buf, BatchMagic.blockWrites, 'blocks-batch');
  const out: { meta: BlockBatchFrameMeta; data: Buffer }[] = [];
  while (!r.done) {
    const op = r.op('write op');
    const concern = r.concern();
    const volumeId = r.text(r.u16('volume length'), 'volume');
    const meta: BlockBatchFrameMeta = { volumeId, inode: r.u64('inode'), blockNo: r.u64('block number'), epoch: r.u64('epoch'), op, concern };
    out.push({ meta, data: r.bytes(r.u32('data length'), 'data') });
  }
  return out;
}

export function encodeReplicateBatch(ops: readonly { meta: ReplicateFrameMeta; data: Uint8Array | undefined }[]): EncodedBatch {
  return encodeFrames(BatchMagic.replicateOps, ops, {
    fieldBytes: (o) => 1 + 1 + 2 + 2 + Buffer.byteLength(o.meta.volumeId) + Buffer.byteLength(o.meta.primary) + 16 + 4 + 24,
    writeFields: (b, at, { meta: m }) => {
      at = b.writeUInt8(m.op === 'put' ? 0 : 1, at);
      at = b.writeUInt8(m.sync ? 1 : 0, at);
      const vol = b.write(m.volumeId, at + 4, 'utf8');
      const prim = b.write(m.primary, at + 4 + vol, 'utf8');
      at = b.writeUInt16BE(vol, at);
      at = b.writeUInt16BE(prim, at) + vol + prim;
      at = writeU64(b, at, m.inode);
      at = writeU64(b, at, m.blockNo);
      at = b.writeUInt32BE(m.pg, at);
      at = writeU64(b, at, m.seq);
      at = writeU64(b, at, m.epoch);
      return writeU64(b, at, m.trim);
    },
    data: (o) => (o.meta.op === 'put' ? o.data : undefined),
  });
}

export function decodeReplicateBatch(buf: Buffer): { meta: ReplicateFrameMeta; data: Buffer }[] {
  const r = new BatchReader(buf, BatchMagic.replicateOps, 'replicate-batch');
  const out: { meta: ReplicateFrameMeta; data: Buffer }[] = [];
  while (!r.done) {
    const op = r.op('replicate op');
    const sync = r.u8('sync flag') === 1;
    const vl = r.u16('volume length');
    const pl = r.u16('primary length');
    const volumeId = r.text(vl, 'volume');
    const primary = r.text(pl, 'primary');
    const meta: ReplicateFrameMeta = {
      volumeId, inode: r.u64('inode'), blockNo: r.u64('block number'), pg: r.u32('pg'), seq: r.u64('seq'), epoch: r.u64('epoch'),
      op, sync, primary, trim: r.u64('trim'),
    };
    out.push({ meta, data: r.bytes(r.u32('data length'), 'data') });
  }
  return out;
}

function encodeAnswers<T>(magic: number, results: readonly ({ error: SerializedError } | T)[], okBytes: number, writeOk: (b: Buffer, at: number, v: T) => number): Buffer {
  const errors = results.map((r) => (typeof r === 'object' && r !== null && 'error' in r ? Buffer.from(JSON.stringify(r.error)) : null));
  let size = 8;
  for (const e of errors) size += e === null ? 1 + okBytes : 1 + 4 + e.length;
  const b = Buffer.allocUnsafe(size);
  let at = b.writeUInt32BE(magic, 0);
  at = b.writeUInt32BE(results.length, at);
  results.forEach((r, i) => {
    const e = errors[i];
    if (e === null || e === undefined) {
      at = b.writeUInt8(0, at);
      at = writeOk(b, at, r as T);
    } else {
      at = b.writeUInt8(1, at);
      at = b.writeUInt32BE(e.length, at);
      at += e.copy(b, at);
    }
  });
  return b;
}

function decodeAnswers<T>(buf: Buffer, magic: number, what: string, readOk: (r: BatchReader) => T): ({ error: SerializedError } | T)[] {
  const r = new BatchReader(buf, magic, what);
  const count = r.u32('answer count');
  const out: ({ error: SerializedError } | T)[] = [];
  for (let i = 0; i < count; i++) {
    if (r.u8('answer status') === 0) { out.push(readOk(r)); continue; }
    const parsed: unknown = JSON.parse(r.text(r.u32('error length'), 'error'));
    if (!isSerializedError(parsed)) throw new GalleonError('INVALID_ARGUMENT', `${what} answer holds an error that is not a serialized GalleonError`);
    out.push({ error: parsed });
  }
  if (!r.done) throw new GalleonError('INVALID_ARGUMENT', `${what} answer has bytes after its ${count} results`);
  return out;
}

export function encodeBlockBatchAnswers(results: readonly BlockBatchResult[]): Buffer {
  return encodeAnswers<BatchWriteAck>(BatchMagic.blockAnswers, results, 4 + 8 + 8 + 1, (b, at, v) => {
    at = b.writeUInt32BE(v.pg, at);
    at = writeU64(b, at, v.seq);
    at = writeU64(b, at, v.epoch);
    return b.writeUInt8(writeConcernOrder.indexOf(v.concern), at);
  });
}

export function decodeBlockBatchAnswers(buf: Buffer): BlockBatchResult[] {
  return decodeAnswers<BatchWriteAck>(buf, BatchMagic.blockAnswers, 'blocks-batch', (r) => ({ pg: r.u32('pg'), seq: r.u64('seq'), epoch: r.u64('epoch'), concern: r.concern() }));
}

export function encodeReplicateAnswers(results: readonly ReplicateResult[]): Buffer {
  return encodeAnswers<{ appliedSeq: number }>(BatchMagic.replicateAnswers, results, 8, (b, at, v) => writeU64(b, at, v.appliedSeq));
}

export function decodeReplicateAnswers(buf: Buffer): ReplicateResult[] {
  return decodeAnswers(buf, BatchMagic.replicateAnswers, 'replicate-batch', (r) => ({ appliedSeq: r.u64('applied seq') }));
}

export function encodeJournalFrame(meta: JournalFrameMeta, data: Uint8Array | undefined): Buffer[] {
  const m = Buffer.from(JSON.stringify(meta));
  const head = Buffer.allocUnsafe(4 + m.length + 4);
  head.writeUInt32BE(m.length, 0);
  m.copy(head, 4);
  head.writeUInt32BE(data?.byteLength ?? 0, 4 + m.length);
  return data === undefined || data.byteLength === 0 ? [head] : [head, Buffer.from(data.buffer, data.byteOffset, data.byteLength)];
}

export function decodeJournalFrames(buf: Buffer): { meta: JournalFrameMeta; data: Buffer }[] {
  const out: { meta: JournalFrameMeta; data: Buffer }[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 4 > buf.length) throw new GalleonError('INTERNAL', 'journal stream truncated in a frame header');
    const ml = buf.readUInt32BE(at);
    const meta = JSON.parse(buf.toString('utf8', at + 4, at + 4 + ml)) as JournalFrameMeta;
    const dl = buf.readUInt32BE(at + 4 + ml);
    const start = at + 8 + ml;
    if (start + dl > buf.length) throw new GalleonError('INTERNAL', 'journal stream truncated in a frame body');
    out.push({ meta, data: buf.subarray(start, start + dl) });
    at = start + dl;
  }
  return out;
}

/** Decodes frames from a stream as they arrive, without holding the whole stream. */
export async function* streamJournalFrames(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<{ meta: JournalFrameMeta; data: Buffer }> {
  let buf = Buffer.alloc(0);
  for await (const chunk of chunks) {
    buf = buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([buf, chunk]);
    let at = 0;
    for (;;) {
      if (buf.length - at < 4) break;
      const ml = buf.readUInt32BE(at);
      if (buf.length - at < 8 + ml) break;
      const dl = buf.readUInt32BE(at + 4 + ml);
      if (buf.length - at < 8 + ml + dl) break;
      const meta = JSON.parse(buf.toString('utf8', at + 4, at + 4 + ml)) as JournalFrameMeta;
      const start = at + 8 + ml;
      yield { meta, data: Buffer.from(buf.subarray(start, start + dl)) };
      at = start + dl;
    }
    buf = buf.subarray(at);
  }
  if (buf.length > 0) throw new GalleonError('UNAVAILABLE', 'block stream ended inside a frame', { hint: 'the peer went away mid-transfer; retry' });
}

export function errorFromBody(status: number, body: unknown): GalleonError {
  if (isSerializedError(body)) return GalleonError.fromJSON(body);
  return new GalleonError(status >= 500 ? 'UNAVAILABLE' : 'INTERNAL', `data node answered HTTP ${status} without an error body`);
}

/** The GalleonError a data node sent with a non-2xx answer (its JSON body), read from the response. */
export async function errorFromResponse(res: { statusCode: number; body: { text(): Promise<string> } }): Promise<GalleonError> {
  const text = await res.body.text();
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return errorFromBody(res.statusCode, parsed);
}

/** Parses a non-negative integer query/header value, or throws INVALID_ARGUMENT. */
export function intParam(name: string, raw: string | string[] | null | undefined, fallback?: number): number {
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined || v === null || v === '') {
    if (fallback !== undefined) return fallback;
    throw new GalleonError('INVALID_ARGUMENT', `missing ${name}`, { hint: `pass ${name} as a non-negative integer` });
  }
  // Decimal digits only: Number() would also take " 1", "+1", "0x10", "1e3" and "0b1".
  const n = /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new GalleonError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${JSON.stringify(v.slice(0, 40))}`, { hint: `pass ${name} as decimal digits` });
  return n;
}

/** A zod failure as one line: the first wrong field and what is wrong with it (bad input gets one line). */
export function firstIssue(error: ZodError): string {
  const issue = error.issues[0];
  return (issue === undefined ? 'wrong shape' : `${issue.path.map(String).join('.') || 'body'} ${issue.message}`).replace(/\s+/g, ' ');
}

// ---- range reads (POST /v1/block-range) ---------------------------------------------------------
//
//   block-range answer  'GRR1' u32 count, then count entry heads of `rangeEntryHeadBytes`: u8 kind
//                       (0 block, 1 not found), u8 flags (1: deletedSeq said, 2: appliedSeq said),
//                       u64 seq, u64 epoch, u64 deletedSeq, u64 appliedSeq, u32 body length;
//                       then the bodies, in order. Heads first: the server writes the bodies as
//                       they are (no copy into one buffer) and the reader slices them in place.

/** Blocks one range read may name: one object's worth (routing.ts `blocksPerObject`), so one PG. */
export const maxRangeReadBlocks = 64;
/** Bodies one range answer carries at most (a first block larger than this still goes alone). */
export const maxRangeReadBytes = 16 * 1024 * 1024;
/** The JSON body of a range read request is tiny. */
export const maxRangeReadBodyBytes = 1024;
export const rangeEntryHeadBytes = 1 + 1 + 8 * 4 + 4;

/** One block of a range answer: its body (a view into the answer) or what the primary said of its absence. */
export type RangeEntry =
  | { kind: 'block'; seq: number; epoch: number; data: Buffer }
  | { kind: 'missing'; deletedSeq: number | null; appliedSeq: number | null };

/** The answer's head (magic, count, entry heads); the bodies follow it in order, sent as they are. */
export function encodeRangeHead(entries: readonly RangeEntry[]): Buffer {
  const head = Buffer.alloc(8 + entries.length * rangeEntryHeadBytes);
  head.writeUInt32BE(BatchMagic.rangeAnswer, 0);
  head.writeUInt32BE(entries.length, 4);
  let at = 8;
  for (const e of entries) {
    at = head.writeUInt8(e.kind === 'block' ? 0 : 1, at);
    const flags = e.kind === 'block' ? 0 : (e.deletedSeq === null ? 0 : 1) | (e.appliedSeq === null ? 0 : 2);
    at = head.writeUInt8(flags, at);
    at = writeU64(head, at, e.kind === 'block' ? e.seq : 0);
    at = writeU64(head, at, e.kind === 'block' ? e.epoch : 0);
    at = writeU64(head, at, e.kind === 'missing' ? e.deletedSeq ?? 0 : 0);
    at = writeU64(head, at, e.kind === 'missing' ? e.appliedSeq ?? 0 : 0);
    at = head.writeUInt32BE(e.kind === 'block' ? e.data.byteLength : 0, at);
  }
  return head;
}

/** Decodes a range answer; bodies are views into `buf` (no copy). Anything malformed is INTERNAL. */
export function decodeRangeAnswer(buf: Buffer): RangeEntry[] {
  const bad = (why: string): GalleonError => new GalleonError('INTERNAL', `block-range answer ${why}`, { hint: 'client and data node speak different versions; upgrade them together' });
  if (buf.length < 8 || buf.readUInt32BE(0) !== BatchMagic.rangeAnswer) throw bad('has no GRR1 magic');
  const count = buf.readUInt32BE(4);
  if (count > maxRangeReadBlocks || buf.length < 8 + count * rangeEntryHeadBytes) throw bad(`is too short for ${count} entries`);
  const u64 = (at: number): number => buf.readUInt32BE(at) * twoTo32 + buf.readUInt32BE(at + 4);
  let body = 8 + count * rangeEntryHeadBytes;
  const out: RangeEntry[] = [];
  for (let i = 0, at = 8; i < count; i++, at += rangeEntryHeadBytes) {
    const kind = buf.readUInt8(at);
    const flags = buf.readUInt8(at + 1);
    const len = buf.readUInt32BE(at + 34);
    if (kind === 1) {
      out.push({ kind: 'missing', deletedSeq: (flags & 1) === 0 ? null : u64(at + 18), appliedSeq: (flags & 2) === 0 ? null : u64(at + 26) });
      continue;
    }
    if (kind !== 0 || body + len > buf.length) throw bad(`entry ${i} is malformed`);
    out.push({ kind: 'block', seq: u64(at + 2), epoch: u64(at + 10), data: buf.subarray(body, body + len) });
    body += len;
  }
  if (body !== buf.length) throw bad(`has ${buf.length - body} bytes after its bodies`);
  return out;
}
