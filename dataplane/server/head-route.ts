/**
 * GET /v1/block-head/:volume/:inode/:block[?bytes=N] — what THIS node holds of a block, without
 * its body (issue #12): the first `bytes` bytes of the live body (an encrypted body's seal header,
 * which names its generation), its seq and epoch, and the PG's contiguous watermark; or that the
 * block is deleted here (the tombstone's seq) or absent. Any replica answers for itself (no
 * primary check, no epoch): a reader of an encrypted volume asks the PG's other in-sync replicas
 * in parallel with its body read, to catch a primary serving an older body (dataplane/client
 * README, "Rollback"). The answer is at most `maxBlockHeadBytes` of body, whatever the block's size.
 */
import type http from 'node:http';
import { GalleonError, isGalleonError } from '../../proto/errors.js';
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
  let head: Buffer;
  let stamp: { seq: number; epoch: number };
  try {
    const b = await store.read(address);
    head = b.data.subarray(0, bytes);
    stamp = b;
  } catch (err) {
    if (!isGalleonError(err, 'BLOCK_NOT_FOUND')) throw err;
    const s = await store.readStamp(address);
    const kind = s?.deleted === true ? 'deleted' : 'absent';
    res.writeHead(200, {
      'content-length': 0, [blockHeadKindHeader]: kind, [Header.appliedSeq]: appliedSeq,
      ...(s !== null && kind === 'deleted' ? { [Header.seq]: s.seq, [Header.epoch]: s.epoch } : {}),
    });
    res.end();
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/octet-stream', 'content-length': head.length, [blockHeadKindHeader]: 'block',
    [Header.seq]: stamp.seq, [Header.epoch]: stamp.epoch, [Header.appliedSeq]: appliedSeq,
  });
  res.end(head);
}
