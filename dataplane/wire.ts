/**
 * The data-plane HTTP contract shared by server and client: paths, header names, the binary
 * framing of journal streams, and errors as serialized GalleonError JSON.
 *
 *   PUT    /v1/blocks/:volume/:inode/:block?epoch=&concern=   primary path (body = block bytes)
 *   DELETE /v1/blocks/:volume/:inode/:block?epoch=&concern=   primary path
 *   GET    /v1/blocks/:volume/:inode/:block[?epoch=]          read (verified)
 *   POST   /v1/replicate                                      primary -> replica, one op (headers below)
 *   POST   /v1/replicate-batch                                primary -> replica, many ops (frames)
 *   POST   /v1/blocks-batch                                   client -> primary, many writes (frames)
 *   GET    /v1/journal/:volume/:pg?from=&maxEntries=&maxBytes= journal frames for catch-up
 *   GET    /v1/pg-blocks/:volume/:pg[?epoch=]                 every live block of a PG (full resync)
 *   POST   /v1/catchup/:volume/:pg?primary=&epoch=            pull missed writes now
 *   GET    /v1/pgs                                            PG states of this node
 *   PUT    /v1/admin/placement                                install a placement (static source)
 *   GET    /healthz
 */
import { GalleonError, isSerializedError } from '../proto/errors.js';
import type { SerializedError } from '../proto/errors.js';
import type { WriteConcern } from '../proto/metadata-types.js';
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
} as const;

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

export function encodeFrame(meta: object, data: Uint8Array | undefined): Buffer[] {
  return encodeJournalFrame(meta as JournalFrameMeta, data);
}

export function decodeFrames<T>(buf: Buffer): { meta: T; data: Buffer }[] {
  return decodeJournalFrames(buf) as unknown as { meta: T; data: Buffer }[];
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

/** Parses a non-negative integer query/header value, or throws INVALID_ARGUMENT. */
export function intParam(name: string, raw: string | string[] | null | undefined, fallback?: number): number {
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (v === undefined || v === null || v === '') {
    if (fallback !== undefined) return fallback;
    throw new GalleonError('INVALID_ARGUMENT', `missing ${name}`, { hint: `pass ${name} as a non-negative integer` });
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new GalleonError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}
