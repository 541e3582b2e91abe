/**
 * RepairSource over HTTP: asks the other replicas of the block's PG, in placement order, for
 * their copy (their store verifies it before answering) and takes the first good one. Also the
 * source side of a full resync (`pgBlockFrames`).
 */
import { Agent, request } from 'undici';
import { GalleonError } from '../../proto/errors.js';
import { httpUrl, undiciConnect, type TlsMaterial } from '../../proto/tls.js';
import { groupOf, nodeOf } from '../placement.js';
import type { PlacementSource } from '../placement.js';
import type { RepairSource } from '../store/scrubber.js';
import type { BlockAddress, BlockStore, ReplicationStore, StoredBlock } from '../store/types.js';
import { isVersionedStore } from '../store/versions.js';
import { blockPath, Header } from '../wire.js';
import type { JournalFrameMeta } from '../wire.js';
import { credentialHeaders } from '../credential.js';

export const repairFetchTimeoutMs = 10_000;

/**
 * What a full resync copies from this node (`GET /v1/pg-blocks`): every live block of the PG,
 * then — when the store keeps versions — every version it keeps and every live tombstone, so the
 * rebuilt replica serves the same snapshots (issue #11; the receiver is `Peering.resync`).
 */
export async function* pgBlockFrames(store: BlockStore, volumeId: string, pg: number): AsyncGenerator<{ meta: JournalFrameMeta; data: Uint8Array | undefined }> {
  for await (const { address, block } of store.iterateBlocks({ volumeId, pg })) {
    yield { meta: { seq: block.seq, kind: 'put', inode: address.inode, blockNo: address.blockNo, epoch: block.epoch }, data: block.data };
  }
  if (!isVersionedStore(store)) return;
  for await (const e of store.iterateKept(volumeId, pg)) {
    const meta: JournalFrameMeta = { seq: e.seq, kind: e.data === null ? 'delete' : 'put', inode: e.address.inode, blockNo: e.address.blockNo, epoch: e.epoch };
    yield { meta: e.kept ? { ...meta, kept: true } : meta, data: e.data ?? undefined };
  }
}

/** The receiver's side: stores one frame of a full resync (a live block or tombstone, or a kept version). */
export function storeResyncFrame(store: ReplicationStore, address: BlockAddress, pg: number, meta: JournalFrameMeta, data: Buffer): Promise<void> {
  if (meta.kept === true) {
    const entry = meta.kind === 'put' ? { data, seq: meta.seq, epoch: meta.epoch, pg } : { tombstone: true as const, seq: meta.seq, epoch: meta.epoch, pg };
    // A store without versions (the in-memory one) serves no snapshots: nothing to keep.
    return isVersionedStore(store) ? store.keepVersion(address, entry) : Promise.resolve();
  }
  return meta.kind === 'put' ? store.rewriteBlock(address, { data, seq: meta.seq, epoch: meta.epoch, pg }) : store.dropBlock(address, pg, meta.seq, meta.epoch);
}

export class HttpRepairSource implements RepairSource {
  /** With TLS, repairs go through an agent that presents this node's certificate. */
  private readonly dispatcher: Agent | undefined;

  constructor(private readonly nodeId: string, private readonly placement: PlacementSource, private readonly tls: TlsMaterial | null = null, private readonly nodeToken?: string) {
    const connect = undiciConnect(tls);
    this.dispatcher = connect === undefined ? undefined : new Agent({ connect });
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  async fetchBlock(address: BlockAddress, pg: number): Promise<StoredBlock> {
    const p = await this.placement.getPlacement(address.volumeId);
    const group = groupOf(p, pg);
    const failures: string[] = [];
    for (const id of group.replicas) {
      if (id === this.nodeId) continue;
      try {
        const res = await request(`${httpUrl(nodeOf(p, id).address, this.tls)}${blockPath(address)}`, {
          headersTimeout: repairFetchTimeoutMs, bodyTimeout: repairFetchTimeoutMs, headers: credentialHeaders(this.nodeToken), ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }),
        });
        const data = Buffer.from(await res.body.arrayBuffer());
        if (res.statusCode !== 200) { failures.push(`${id}: HTTP ${res.statusCode}`); continue; }
        return { data, seq: Number(res.headers[Header.seq]), epoch: Number(res.headers[Header.epoch]), pg };
      } catch (err) {
        failures.push(`${id}: ${err instanceof Error ? err.message : 'unreachable'}`);
      }
    }
    throw new GalleonError('UNAVAILABLE', `no replica of ${address.volumeId}/${pg} could supply block ${address.inode}/${address.blockNo} (${failures.join('; ')})`, {
      hint: 'every copy is damaged or unreachable; restore the block from a backup',
    });
  }
}
