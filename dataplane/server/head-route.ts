/**
 * GET /v1/block-head/:volume/:inode/:block[?bytes=N] — what THIS node holds of a block, without
 * its body (issue #12): the first `bytes` bytes of the live body (an encrypted body's seal header,
 * which names its generation), its seq and epoch, and the PG's contiguous watermark; or that the
 * block is deleted here (the tombstone's seq) or absent. Read with `BlockStore.readHead`: the index
 * entry and the first bytes of the body, never the whole body. Any replica answers for itself (no
 * primary check, no epoch): a reader of an encrypted volume asks the PG's other in-sync replicas
 * in parallel with its body read, to catch a primary serving an older body (dataplane/client
 * README, "Rollback"). The answer is at most `maxBlockHeadBytes` of body, whatever the block's size.
 * The POST form takes a `below` cut for reads through a view (each block's newest entry below it).
 */
import type http from 'node:http';
import { z } from 'zod';
import { GalleonError } from '../../proto/errors.js';
import type { BlockAddress, BlockHead, BlockStore } from '../store/types.js';
import { isVersionedStore } from '../store/versions.js';
import { blockHeadKindHeader, defaultBlockHeadBytes, firstIssue, Header, intParam, maxBlockHeadBytes, maxHeadsPerRequest, type BlockHeadAnswer } from '../wire.js';

export const blockHeadRoute = 'GET /v1/block-head';
/** The same for many blocks of one volume in one request: what a reader's concurrent reads ask one replica. */
export const blockHeadsRoute = 'POST /v1/block-heads';

const blockNumber = z.number().int().nonnegative().max(2 ** 48 - 1);
const headsBody = z.object({
  blocks: z.array(z.tuple([blockNumber, blockNumber])).min(1).max(maxHeadsPerRequest),
  bytes: z.number().int().nonnegative().max(maxBlockHeadBytes).optional(),
  /** A cut: answer each block's newest entry written at an epoch below it (snapshot, clone and restored-volume reads). */
  below: z.number().int().nonnegative().max(2 ** 48 - 1).optional(),
}).strict();

type PgOf = (a: BlockAddress) => Promise<number>;

/** The PG's watermark, then the entry: every write up to the watermark is reflected in the entry read after it. */
async function headOf(store: BlockStore, pgOf: PgOf, a: BlockAddress, bytes: number): Promise<{ appliedSeq: number; h: BlockHead | null }> {
  const { appliedSeq } = await store.pgState(a.volumeId, await pgOf(a));
  // The first bytes only: a 1 MiB block costs a 24-byte read here, not a 1 MiB one. They are not
  // verified (the crc covers the whole body); the reader believes a claim only after a full read.
  return { appliedSeq, h: await store.readHead(a, bytes) };
}

function addressOf(parts: readonly string[]): BlockAddress {
  const [, , volumeId, inode, blockNo] = parts;
  if (volumeId === undefined || parts.length !== 5) {
    throw new GalleonError('INVALID_ARGUMENT', 'block-head path is /v1/block-head/:volume/:inode/:block', { hint: 'name one block: volume id, inode and block number' });
  }
  return { volumeId, inode: intParam('inode', inode), blockNo: intParam('block', blockNo) };
}

/**
 * The headers of a BLOCK_NOT_FOUND answer to GET /v1/blocks (issue #12, "hiding"): the PG's
 * watermark and, when this node holds a tombstone for the address, its seq — so a reader can tell
 * "deleted at seq S" from "never written here" and judge either against the other replicas. Read
 * like a head (watermark first): an entry that turns live meanwhile (a write landed after the
 * failed read) leaves no watermark, so the reader judges by its retry rounds alone.
 */
export async function absenceStamp(store: BlockStore, a: BlockAddress, pg: number): Promise<Record<string, number>> {
  const { appliedSeq, h } = await headOf(store, () => Promise.resolve(pg), a, 0);
  if (h !== null && !h.deleted) return {};
  return h === null ? { [Header.appliedSeq]: appliedSeq } : { [Header.appliedSeq]: appliedSeq, [Header.deletedSeq]: h.seq };
}

/** Answers the route; `pgOf` places the address under this node's placement (VOLUME_NOT_FOUND when unknown). */
export async function serveBlockHead(store: BlockStore, pgOf: PgOf, parts: readonly string[], query: URLSearchParams, res: http.ServerResponse): Promise<void> {
  const address = addressOf(parts);
  const bytes = intParam('bytes', query.get('bytes'), defaultBlockHeadBytes);
  if (bytes > maxBlockHeadBytes) {
    throw new GalleonError('INVALID_ARGUMENT', `bytes must be at most ${maxBlockHeadBytes}, got ${bytes}`, { hint: 'a block head is the seal header only; read the body with GET /v1/blocks' });
  }
  const { appliedSeq, h } = await headOf(store, pgOf, address, bytes);
  const { kind } = answerOf(appliedSeq, h);
  res.writeHead(200, {
    'content-length': h?.head.length ?? 0, [blockHeadKindHeader]: kind, [Header.appliedSeq]: appliedSeq,
    ...(h === null ? {} : { [Header.seq]: h.seq, [Header.epoch]: h.epoch }),
    ...(kind === 'block' ? { 'content-type': 'application/octet-stream' } : {}),
  });
  res.end(h?.head ?? Buffer.alloc(0));
}

/** What a node holds of one block, as the heads answer it. */
function answerOf(appliedSeq: number, h: BlockHead | null): BlockHeadAnswer {
  if (h === null) return { kind: 'absent', appliedSeq };
  if (h.deleted) return { kind: 'deleted', appliedSeq, seq: h.seq, epoch: h.epoch };
  return { kind: 'block', appliedSeq, seq: h.seq, epoch: h.epoch, head: h.head.toString('base64') };
}

/**
 * A block's head as of a cut: its newest entry below `below` (`readHeadBelow`: the index entry and
 * the body's first bytes, as for a live head — a backup's check costs each replica 24 bytes per
 * block, not a whole version), the watermark read first.
 */
async function headBelow(store: BlockStore, pgOf: PgOf, a: BlockAddress, bytes: number, below: number): Promise<BlockHeadAnswer> {
  if (!isVersionedStore(store)) throw new GalleonError('FAILED_PRECONDITION', 'this data node\'s store keeps no block versions', { hint: 'heads below a cut need the LevelDB block store' });
  const { appliedSeq } = await store.pgState(a.volumeId, await pgOf(a));
  return answerOf(appliedSeq, await store.readHeadBelow(a, below, bytes));
}

/** POST /v1/block-heads/:volume: `body` is the parsed JSON (or what failed to parse: refused here). */
export async function serveBlockHeads(store: BlockStore, pgOf: PgOf, parts: readonly string[], body: unknown, res: http.ServerResponse): Promise<void> {
  const volumeId = parts[2];
  if (volumeId === undefined || parts.length !== 3) throw new GalleonError('INVALID_ARGUMENT', 'block-heads path is /v1/block-heads/:volume', { hint: 'name one volume; the blocks go in the body' });
  const parsed = headsBody.safeParse(body);
  if (!parsed.success) {
    throw new GalleonError('INVALID_ARGUMENT', `block-heads body: ${firstIssue(parsed.error)}`.slice(0, 300), {
      hint: `send {"blocks": [[inode, block], …]} with 1..${maxHeadsPerRequest} blocks and optionally "bytes" ≤ ${maxBlockHeadBytes} and "below" (a cut)`,
    });
  }
  const bytes = parsed.data.bytes ?? defaultBlockHeadBytes;
  const below = parsed.data.below;
  const heads = await Promise.all(parsed.data.blocks.map(async ([inode, blockNo]): Promise<BlockHeadAnswer> => {
    if (below !== undefined) return headBelow(store, pgOf, { volumeId, inode, blockNo }, bytes, below);
    const { appliedSeq, h } = await headOf(store, pgOf, { volumeId, inode, blockNo }, bytes);
    return answerOf(appliedSeq, h);
  }));
  const text = JSON.stringify({ heads });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
