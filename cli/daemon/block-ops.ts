/**
 * Block reads and writes of the admin endpoint (`galleon volume write-block` / `read-block`):
 * validates against the volume (block number within its size, data within its block size,
 * known write concern), then goes through the data plane's BlockClient.
 *
 * A requested concern weaker than the volume's class default is upgraded to the default (the
 * class is the floor an operator promised); the answer says so (`requestedConcern`).
 */
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import { writeConcernOrder } from '../../proto/metadata-types.js';
import type { MetadataApi, WriteConcern } from '../../proto/metadata-types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';

export interface BlockWriteRequest {
  /** The block's bytes, base64. */
  dataBase64: string;
  concern?: string;
  /** A number, or the path segment as sent (checked by volumeBlock). */
  inode?: number | string;
}

export interface BlockWriteResult {
  volume: string;
  volumeId: string;
  inode: number;
  blockNo: number;
  bytes: number;
  /** The concern the write met. */
  concern: WriteConcern;
  requestedConcern: WriteConcern | null;
  pg: number;
  seq: number;
  epoch: number;
}

export interface BlockReadResult {
  volume: string;
  volumeId: string;
  inode: number;
  blockNo: number;
  bytes: number;
  dataBase64: string;
  /** False for a block never written: it reads as zeros of the block size, as a block device reads. */
  written: boolean;
  seq: number;
  epoch: number;
}

function checkInt(what: string, raw: unknown, hint: string): number {
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${what} must be a non-negative integer, got ${JSON.stringify(raw)}`, { hint });
  return n;
}

async function volumeBlock(api: MetadataApi, ref: string, blockNoRaw: unknown, inodeRaw: unknown): Promise<{ name: string; id: string; blockNo: number; inode: number; blockSizeBytes: number; writeConcern: WriteConcern }> {
  const vol = await api.getVolume(ref);
  const blockNo = checkInt('block number', blockNoRaw, 'blocks are numbered from 0');
  const inode = inodeRaw === undefined || inodeRaw === null ? 0 : checkInt('inode', inodeRaw, 'pass --inode N (default 0)');
  const blocks = Math.ceil(vol.sizeBytes / vol.blockSizeBytes);
  if (blockNo >= blocks) {
    throw new GalleonError(ErrorCode.OUT_OF_RANGE, `block ${blockNo} is beyond volume ${vol.name} (${blocks} blocks of ${vol.blockSizeBytes} bytes)`, {
      hint: `use a block number from 0 to ${blocks - 1}, or expand the volume`,
    });
  }
  return { name: vol.name, id: vol.id, blockNo, inode, blockSizeBytes: vol.blockSizeBytes, writeConcern: vol.writeConcern };
}

export async function writeBlock(api: MetadataApi, client: BlockClient, ref: string, blockNoRaw: unknown, req: BlockWriteRequest): Promise<BlockWriteResult> {
  const v = await volumeBlock(api, ref, blockNoRaw, req.inode);
  let requested: WriteConcern | null = null;
  if (req.concern !== undefined) {
    if (!(writeConcernOrder as readonly string[]).includes(req.concern)) {
      throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `unknown write concern ${JSON.stringify(req.concern)}`, { hint: `use one of ${writeConcernOrder.join(', ')}` });
    }
    requested = req.concern as WriteConcern;
  }
  const concern = requested !== null && writeConcernOrder.indexOf(requested) > writeConcernOrder.indexOf(v.writeConcern) ? requested : v.writeConcern;
  const data = Buffer.from(req.dataBase64, 'base64');
  if (data.length > v.blockSizeBytes) {
    throw new GalleonError(ErrorCode.INVALID_SIZE, `${data.length} bytes do not fit in a block of volume ${v.name} (${v.blockSizeBytes} bytes)`, {
      hint: `write at most ${v.blockSizeBytes} bytes per block`,
    });
  }
  const ack = await client.writeBlock(v.id, v.inode, v.blockNo, data, concern);
  return { volume: v.name, volumeId: v.id, inode: v.inode, blockNo: v.blockNo, bytes: data.length, concern: ack.concern, requestedConcern: requested, pg: ack.pg, seq: ack.seq, epoch: ack.epoch };
}

/**
 * A clone, a restored volume, or a snapshot (`snapshotRef`) is read through its view
 * (dataplane/client/snapshot-reads.ts); a plain volume with one ordinary read.
 */
export async function readBlock(api: MetadataApi, client: BlockClient, ref: string, blockNoRaw: unknown, inodeRaw: unknown, snapshotRef?: string): Promise<BlockReadResult> {
  const snapshot = snapshotRef === undefined ? undefined : await api.getSnapshot(snapshotRef);
  const v = await volumeBlock(api, snapshot?.volumeId ?? ref, blockNoRaw, inodeRaw);
  const { isPlainView, readBlockAt, viewOf } = await import('../../dataplane/client/snapshot-reads.js');
  const view = await viewOf(await api.getVolume(v.id), snapshot, (id) => api.getVolume(id));
  let r;
  try {
    r = isPlainView(view) ? await client.readBlock(v.id, v.inode, v.blockNo) : await readBlockAt(client, view, v.inode, v.blockNo);
    if (r === null) throw new GalleonError(ErrorCode.BLOCK_NOT_FOUND, 'no data at this view');
  } catch (err) {
    if (!isGalleonError(err, ErrorCode.BLOCK_NOT_FOUND)) throw err;
    // A block device reads a never-written sector as zeros; so does a volume (seq 0: no write yet).
    const zeros = Buffer.alloc(v.blockSizeBytes);
    return { volume: v.name, volumeId: v.id, inode: v.inode, blockNo: v.blockNo, bytes: zeros.length, dataBase64: zeros.toString('base64'), written: false, seq: 0, epoch: 0 };
  }
  return { volume: v.name, volumeId: v.id, inode: v.inode, blockNo: v.blockNo, bytes: r.data.length, dataBase64: r.data.toString('base64'), written: true, seq: r.seq, epoch: r.epoch };
}
