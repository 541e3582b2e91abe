/**
 * GET /v1/block-head/:volume/:inode/:block[?bytes=N] — what THIS node holds of a block, without
 * its body (issue #12): the first `bytes` bytes of the live body (an encrypted body's seal header,
 * which names its generation), its seq and epoch, and the PG's contiguous watermark; or that the
 * block is deleted here (the tombstone's seq) or absent. Read with `BlockStore.readHead`: the index
 * entry and the first bytes of the body, never the whole body. Any replica answers for itself (no
 * primary check, no epoch): a reader of an encrypted volume asks the PG's other in-sync replicas
 * in parallel with its body read, to catch a primary serving an older body (dataplane/client
 * README, "Rollback"). The answer is at most `maxBlockHeadBytes` of body, whatever the block's size.
 */
import type http from 'node:http';
import { GalleonError } from '../../proto/errors.js';
import type { BlockAddress, BlockStore } from '../store/types.js';
import { blockHeadKindHeader, defaultBlockHeadBytes, Header, intParam, maxBlockHeadBytes } from '../wire.js';

export const blockHeadRoute = 'GET /v1/block-head';

function addressOf(parts: readonly string[]): BlockAddress {
  const [, , volumeId, inode, blockNo] = parts;
  if (volumeId === undefined || parts.length !== 5) {
    throw new GalleonError('INVALID_ARGUMENT', 'block-head path is /v1/block-head/:volume/:inode/:block', { hint: 'name one block: volume id, inode and block number' });
  }
  return { volumeId, inode: intParam('inode', inode), blockNo: intParam('block', blockNo) };
}

/** Answers the route; `pgOf` places the address under this node's placement (VOLUME_NOT_FOUND when unknown). */
export async function serveBlockHead(store: BlockStore, pgOf: (a: BlockAddress) => Promise<number>, parts: readonly string[], query: URLSearchParams, res: http.ServerResponse): Promise<void> {
  const address = addressOf(parts);
  const bytes = intParam('bytes', query.get('bytes'), defaultBlockHeadBytes);
  if (bytes > maxBlockHeadBytes) {
    throw new GalleonError('INVALID_ARGUMENT', `bytes must be at most ${maxBlockHeadBytes}, got ${bytes}`, { hint: 'a block head is the seal header only; read the body with GET /v1/blocks' });
  }
  const pg = await pgOf(address);
  // The watermark first: every write up to it is reflected in the entry read after it.
  const { appliedSeq } = await store.pgState(address.volumeId, pg);
  // The first bytes only: a 1 MiB block costs a 24-byte read here, not a 1 MiB one. They are not
  // verified (the crc covers the whole body); the reader believes a claim only after a full read.
  const h = await store.readHead(address, bytes);
  const kind = h === null ? 'absent' : h.deleted ? 'deleted' : 'block';
  res.writeHead(200, {
    'content-length': h?.head.length ?? 0, [blockHeadKindHeader]: kind, [Header.appliedSeq]: appliedSeq,
    ...(h === null ? {} : { [Header.seq]: h.seq, [Header.epoch]: h.epoch }),
    ...(kind === 'block' ? { 'content-type': 'application/octet-stream' } : {}),
  });
  res.end(h?.head ?? Buffer.alloc(0));
}
