/**
 * Self-test of the divergence check: overwrites one block on one replica behind its primary's
 * back, through the replica's own replicate route, as the next journal position after its
 * watermark (contiguous: no gap opens, so nothing pulls it back before the digests are
 * compared). It is what a primary that crashed after forwarding a write it never stored
 * itself would leave behind.
 */
import { request } from 'undici';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import type { DataNodes } from '../cluster/data-nodes.js';
import { Header } from '../../dataplane/wire.js';
import { encodeBlock } from './content.js';
import { fetchPgContents, fetchPgStates, inspectTimeoutMs, type NodeAccess } from './replicas.js';

export const injectedDivergentValue = 'injected-divergent';

export async function injectDivergence(data: DataNodes, volumeId: string, groups: readonly PlacementGroup[], blockSizeBytes: number, access: NodeAccess): Promise<string> {
  for (const g of groups) {
    const replica = g.replicas.find((r) => r !== g.primary);
    if (replica === undefined) continue;
    const address = data.node(replica).address;
    const st = (await fetchPgStates(address, access, replica)).find((s) => s.volumeId === volumeId && s.pg === g.pg);
    if (st === undefined) continue;
    const contents = await fetchPgContents(address, volumeId, g.pg, access, replica);
    const victim = [...contents.blocks][0];
    const seq = st.appliedSeq + 1;
    if (victim === undefined) continue;
    const [inode, blockNo] = victim[0].split('/');
    // As the primary would: under TLS with its certificate (a node certificate speaks only for its node).
    const res = await request(`${access.url(address)}/v1/replicate`, {
      ...await access.as(g.primary), method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        [Header.volume]: encodeURIComponent(volumeId), [Header.inode]: inode ?? '0', [Header.block]: blockNo ?? '0',
        [Header.pg]: String(g.pg), [Header.seq]: String(seq), [Header.epoch]: String(Math.max(g.epoch, st.epoch)),
        [Header.op]: 'put', [Header.sync]: '1', [Header.primary]: data.node(g.primary).address, [Header.trim]: '0',
      },
      body: encodeBlock(injectedDivergentValue, blockSizeBytes),
      headersTimeout: inspectTimeoutMs, bodyTimeout: inspectTimeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`injecting on ${replica} answered ${res.statusCode}: ${text}`);
    return `block ${victim[0]} of pg ${g.pg} on replica ${replica} overwritten at seq ${seq}`;
  }
  throw new Error('no replica holds a block yet: nothing to inject');
}
