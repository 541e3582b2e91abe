/**
 * What the data nodes of a `galleon up` cluster hold, asked of each node itself (not through a
 * primary): for tests that a block's bytes are gone from every replica, or still there. Talks as a
 * mount's block client does — the node credential over mutual TLS with the operator's certificate.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { loadTlsDir } from '../../cli/lib/tls.js';
import { defaultNodeTokenFileName } from '../../cli/local/cluster.js';
import { upClientEnv } from './tls.js';

export interface Holdings {
  /** `node/inode/block` of every listed block whose newest entry on that node holds bytes, or any kept version of it. */
  held(volumeId: string, inode: number, blocks: number): Promise<string[]>;
  close(): void;
}

export async function holdingsOf(clusterDir: string, bindAddresses: string[]): Promise<Holdings> {
  const { GALLEON_TLS_DIR: tlsDir } = upClientEnv(clusterDir);
  const tls = tlsDir === '' ? null : await loadTlsDir(tlsDir, 'cli');
  const token = (await readFile(join(clusterDir, defaultNodeTokenFileName), 'utf8').catch(() => '')).trim();
  const auth = { tls, ...(token === '' ? {} : { token }) };
  const api = new MetadataClient({ addresses: bindAddresses, ...auth });
  const client = new BlockClient({ placement: new MetadataPlacementSource(api), coalesceWrites: false, maxAttempts: 5, ...auth });
  return {
    async held(volumeId, inode, blocks) {
      const out: string[] = [];
      for (const node of await api.listDataNodes()) {
        const versions = (await client.nodeGetJson(node.address, `/v1/volume-versions/${encodeURIComponent(volumeId)}`)) as { versions: [number, number, number, number][] };
        for (const [ino, blockNo, epoch] of versions.versions) if (ino === inode) out.push(`${node.id}/${ino}/${blockNo}@${epoch} (kept version)`);
        for (let b = 0; b < blocks; b++) if (await client.heldOn(node.address, volumeId, inode, b) === 'block') out.push(`${node.id}/${inode}/${b}`);
      }
      return out.sort();
    },
    close() { api.close(); },
  };
}
