import { randomBytes } from 'node:crypto';
import { BlockClient } from '../../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../../dataplane/placement.js';
import { MetadataClient } from '../../../metadata/service/client.js';
import { startMountedCluster, waitMounted } from '../../vfs/cluster-mounts.js';

async function main(): Promise<void> {
  const c = await startMountedCluster('galleon-prim-');
  try {
    await c.cli(1, ['volume', 'create', '--name', 'bench', '--size', '4G', '--access-mode', 'ReadWriteMany']);
    await waitMounted(c.path(1, 'bench'));
    const api = new MetadataClient({ addresses: c.nodes.map((n) => n.bindAddress) });
    const client = new BlockClient({ placement: new MetadataPlacementSource(api), coalesceWrites: false, maxAttempts: 20 });
    const vol = await api.getVolume('bench');
    const lease = await api.acquireLease('mount', vol.id, 'prim', 60_000, 'rw');
    const range = await api.fsAllocateInodes(vol.id, 10000);
    let ino = range.start;
    const N = 200;
    const t: Record<string, number> = { lookup: 0, create: 0, data: 0, commit: 0, getattr: 0, staleLookup: 0 };
    const body = randomBytes(4096);
    for (let i = 0; i < N; i++) {
      let s = performance.now();
      await api.fsLookup(vol.id, 1, `p${i}`).catch(() => undefined);
      t.lookup! += performance.now() - s; s = performance.now();
      await api.fsLookup(vol.id, 1, `p${i}`, { stale: true } as never).catch(() => undefined);
      t.staleLookup! += performance.now() - s; s = performance.now();
      const r = await api.fsCreate(vol.id, { uid: 0, gid: 0 }, 1, `p${i}`, ino++, 0o644, { open: lease.id });
      t.create! += performance.now() - s; s = performance.now();
      await client.writeBlocks(vol.id, [{ inode: r.attr.ino, blockNo: 0, data: body }], vol.writeConcern);
      t.data! += performance.now() - s; s = performance.now();
      await api.fsCommitWrite(vol.id, r.attr.ino, 4096, undefined, { session: lease.id, inos: [r.attr.ino] });
      t.commit! += performance.now() - s; s = performance.now();
      await api.fsGetattr(vol.id, r.attr.ino);
      t.getattr! += performance.now() - s;
    }
    for (const [k, v] of Object.entries(t)) process.stdout.write(`${k}: ${(v / N).toFixed(2)} ms\n`);
    await client.close();
    api.close();
  } finally {
    await c.teardown();
  }
}
main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
