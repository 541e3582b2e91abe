/**
 * RepairSource over HTTP: asks the other replicas of the block's PG, in placement order, for
 * their copy (their store verifies it before answering) and takes the first good one.
 */
import { Agent, request } from 'undici';
import { GalleonError } from '../../proto/errors.js';
import { httpUrl, undiciConnect, type TlsMaterial } from '../../proto/tls.js';
import { groupOf, nodeOf } from '../placement.js';
import type { PlacementSource } from '../placement.js';
import type { RepairSource } from '../store/scrubber.js';
import type { BlockAddress, StoredBlock } from '../store/types.js';
import { blockPath, Header } from '../wire.js';
import { credentialHeaders } from '../credential.js';

export const repairFetchTimeoutMs = 10_000;

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
