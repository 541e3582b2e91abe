/**
 * POST /v1/block-range/:volume {inode, from, count, epoch?} — up to `maxRangeReadBlocks`
 * consecutive blocks of one inode in one request (issue #14: a mount's read-ahead window cost one
 * HTTP request per block, and the request, not the bytes, was the largest item of the reading
 * daemon's profile). The range stays inside one object of `blocksPerObject` blocks, so one PG and
 * one primary answer for all of it, admitted at the reader's epoch once, as GET /v1/blocks admits
 * one block. Each block is answered as GET answers it: its verified body (read-repaired like GET),
 * or "not found" with the same absence stamp as GET's 404, so an encrypted reader judges every
 * block of the range against the other replicas' heads (client/freshness.ts) exactly as it judges a
 * single read. Bodies stop at `maxRangeReadBytes` (a first block larger than that goes alone): the
 * reader asks again from the first block it did not get.
 */
import type http from 'node:http';
import { z } from 'zod';
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import { blocksPerObject } from '../logic/routing.js';
import type { BlockAddress, StoredBlock } from '../store/types.js';
import { encodeRangeHead, firstIssue, maxRangeReadBlocks, maxRangeReadBytes, type RangeEntry } from '../wire.js';

export const blockRangeRoute = 'POST /v1/block-range';
/** Blocks read from the store at once while answering one range: bounds the bytes read past the answer's limit. */
export const rangeReadParallelBlocks = 8;

const count48 = z.number().int().nonnegative().max(2 ** 48 - 1);
/** The request body (exported for the hardening fuzz: bodies it refuses must be refused). */
export const rangeBody = z.object({
  inode: count48,
  from: count48,
  count: z.number().int().min(1).max(maxRangeReadBlocks),
  /** The reader's placement epoch: a node that is not the PG's primary at it refuses (as GET ?epoch=). */
  epoch: count48.optional(),
}).strict();

export interface RangeRouteHost {
  pgOf(a: BlockAddress): Promise<number>;
  admitPrimaryRead(a: BlockAddress, pg: number, epoch: number): Promise<void>;
  /** GET's read: verified, a damaged copy repaired from a replica. */
  read(a: BlockAddress, pg: number): Promise<StoredBlock>;
  /** GET's 404 headers for an absent block (head-route.ts `absenceStamp`). */
  absence(a: BlockAddress, pg: number): Promise<{ deletedSeq: number | null; appliedSeq: number | null }>;
}

/** The validated request, or INVALID_ARGUMENT in one line. */
export function parseRangeRequest(parts: readonly string[], body: unknown): { volumeId: string; inode: number; from: number; count: number; epoch: number | null } {
  const volumeId = parts[2];
  if (volumeId === undefined || parts.length !== 3) throw new GalleonError('INVALID_ARGUMENT', 'block-range path is /v1/block-range/:volume', { hint: 'name one volume; inode, from and count go in the body' });
  const parsed = rangeBody.safeParse(body);
  if (!parsed.success) {
    throw new GalleonError('INVALID_ARGUMENT', `block-range body: ${firstIssue(parsed.error)}`.slice(0, 300), {
      hint: `send {"inode": N, "from": BLOCK, "count": 1..${maxRangeReadBlocks}, "epoch"?: E}`,
    });
  }
  const { inode, from, count, epoch } = parsed.data;
  const last = from + count - 1;
  if (Math.floor(from / blocksPerObject) !== Math.floor(last / blocksPerObject)) {
    throw new GalleonError('INVALID_ARGUMENT', `block-range ${from}..${last} crosses an object boundary (objects are ${blocksPerObject} blocks, one PG each)`, {
      hint: `split the range at multiples of ${blocksPerObject}: each object may live on another primary`,
    });
  }
  return { volumeId, inode, from, count, epoch: epoch ?? null };
}

/** Reads the range in order, a few blocks at a time, and stops at the byte limit. */
async function readRange(host: RangeRouteHost, volumeId: string, inode: number, from: number, count: number, pg: number): Promise<RangeEntry[]> {
  const out: RangeEntry[] = [];
  let bytes = 0;
  for (let at = from; at < from + count;) {
    const n = Math.min(rangeReadParallelBlocks, from + count - at);
    const got = await Promise.all(Array.from({ length: n }, (_, i) => readOne(host, { volumeId, inode, blockNo: at + i }, pg)));
    for (const e of got) {
      const len = e.kind === 'block' ? e.data.byteLength : 0;
      if (out.length > 0 && bytes + len > maxRangeReadBytes) return out;
      out.push(e);
      bytes += len;
    }
    at += n;
  }
  return out;
}

async function readOne(host: RangeRouteHost, a: BlockAddress, pg: number): Promise<RangeEntry> {
  try {
    const b = await host.read(a, pg);
    return { kind: 'block', seq: b.seq, epoch: b.epoch, data: b.data };
  } catch (err) {
    if (!isGalleonError(err, 'BLOCK_NOT_FOUND')) throw err;
    return { kind: 'missing', ...await host.absence(a, pg) };
  }
}

/** Answers the route: the head, then each body written as it is. */
export async function serveBlockRange(host: RangeRouteHost, parts: readonly string[], body: unknown, res: http.ServerResponse): Promise<void> {
  const q = parseRangeRequest(parts, body);
  const first = { volumeId: q.volumeId, inode: q.inode, blockNo: q.from };
  const pg = await host.pgOf(first);
  if (q.epoch !== null) await host.admitPrimaryRead(first, pg, q.epoch);
  const entries = await readRange(host, q.volumeId, q.inode, q.from, q.count, pg);
  const head = encodeRangeHead(entries);
  let length = head.length;
  for (const e of entries) if (e.kind === 'block') length += e.data.byteLength;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': length });
  res.cork();
  res.write(head);
  for (const e of entries) if (e.kind === 'block' && e.data.byteLength > 0) res.write(e.data);
  res.end();
}
