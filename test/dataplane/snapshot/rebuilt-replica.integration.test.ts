/**
 * A replica rebuilt from scratch keeps what snapshots need (issue #11, real processes: one
 * metadata member, three data nodes, a 2-replica volume; heartbeats 200 ms, lease ttl 1 s, node
 * down after 4 s). Block B is written (v1), snapshotted, written again (v2); block C is written,
 * snapshotted and deleted; a clone of the snapshot is made. Then the PG's replica is killed for
 * good, the metadata service replaces it and the primary rebuilds the replacement — by journal
 * catch-up, or (second case) by a full resync because the journal was trimmed first. Then the
 * primary is killed too, so the rebuilt replacement becomes the primary, and the snapshot and the
 * clone are read through it: B must be v1 and C its old bytes, the live volume v2 and no C.
 * Before the fix the rebuilt replica held only the newest entry of each block: B at the snapshot
 * was absent (catch-up served the overwritten v1 as a noop) and C was missing.
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import { readBlockAt, takeSnapshot, viewOf } from '../../../dataplane/client/snapshot-reads.js';
import { trimEveryEntries } from '../../../dataplane/server/replication.js';
import type { Volume } from '../../../proto/metadata-types.js';
import { pgStates } from '../cluster.js';
import { blocksInPg, pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from '../server/meta-and-data.js';

const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3' };

for (const rebuild of ['journal catch-up', 'full resync'] as const) {
  describe(`a replica rebuilt by ${rebuild} serves the snapshot's versions after a failover`, function () {
    this.timeout(180_000);
    const env = useMetaAndData(zones, { heartbeatMs: 200, leaseTtlMs: 1000, downAfterMs: 4000 });


    it('reads at the snapshot and through its clone see the old data on the rebuilt new primary', async () => {
      const vol = await env.api.createVolume({ name: 'rebuilt', size: '1G', replicas: 2 });
      const inPg = blocksInPg(vol.pgCount, 0, trimEveryEntries + 200);
      const [bB, bC, bE, ...rest] = inPg as [number, number, number, ...number[]];
      const v1 = pattern(1, 4096);
      const v2 = pattern(2, 4096);
      const c1 = pattern(3, 4096);
      const e1 = pattern(4, 4096);
      await env.client.writeBlock(vol.id, 0, bB, v1, 'replicated');
      await env.client.writeBlock(vol.id, 0, bC, c1, 'replicated');
      await env.client.writeBlock(vol.id, 0, bE, e1, 'replicated');
      const snap = await takeSnapshot(env.api, vol.id, 'before-v2');
      await env.client.writeBlock(vol.id, 0, bB, v2, 'replicated');
      await env.client.deleteBlock(vol.id, 0, bC, 'replicated');
      const clone: Volume = await env.api.cloneVolume(snap.id, 'rebuilt-clone');

      const g = await env.group(vol.id, 0);
      const [replica] = g.replicas.filter((id) => id !== g.primary);
      assert.ok(replica !== undefined);
      if (rebuild === 'full resync') {
        await env.client.writeBlocks(vol.id, rest.map((b, i) => ({ inode: 0, blockNo: b, data: pattern(100 + i, 512) })), 'replicated');
        await waitFor('the primary trimmed its journal', async () => {
          const st = (await pgStates(env.data.node(g.primary).address)).find((s) => s.volumeId === vol.id && s.pg === 0);
          return st !== undefined && st.trimmedSeq > 0;
        }, 30_000, 100);
      }

      // The replica is lost for good: the service replaces it and the primary rebuilds the replacement.
      await env.data.kill(replica);
      const replaced = await waitFor('the lost replica replaced and the replacement in sync', async () => {
        const now = await env.group(vol.id, 0);
        const fresh = now.replicas.find((id) => id !== g.primary && id !== replica);
        return fresh !== undefined && !now.replicas.includes(replica) && now.inSync.includes(fresh) ? fresh : undefined;
      }, 60_000, 100);

      const res = await request(`http://${env.data.node(replaced).address}/v1/volume-versions/${vol.id}`);
      const { versions } = (await res.body.json()) as { versions: [number, number, number, number][] };
      assert.ok(versions.some(([, b, epoch]) => b === bB && epoch < snap.cut), `the rebuilt ${replaced} keeps B's version below the cut: ${JSON.stringify(versions)}`);

      // Then the primary is lost: the rebuilt replacement is the only in-sync copy left.
      await env.data.kill(g.primary);
      await waitFor('the rebuilt replica became the primary', async () => (await env.group(vol.id, 0)).primary === replaced ? true : undefined, 60_000, 100);

      const getVolume = (id: string): Promise<Volume> => env.api.getVolume(id);
      const atSnap = await viewOf(await env.api.getVolume(vol.id), snap, getVolume);
      const live = await viewOf(await env.api.getVolume(vol.id), undefined, getVolume);
      const cloned = await viewOf(await env.api.getVolume(clone.id), undefined, getVolume);
      const read = async (view: typeof live, b: number): Promise<Buffer | null> => (await readBlockAt(env.client, view, 0, b))?.data ?? null;
      assert.deepEqual(await read(live, bB), v2, 'live B is v2');
      assert.equal(await read(live, bC), null, 'live C is deleted');
      assert.deepEqual(await read(atSnap, bB), v1, `B at the snapshot is v1 on ${replaced}`);
      assert.deepEqual(await read(atSnap, bC), c1, 'C at the snapshot is its old bytes');
      assert.deepEqual(await read(atSnap, bE), e1, 'E (never rewritten) at the snapshot');
      assert.deepEqual(await read(cloned, bB), v1, 'the clone reads v1 through its parent snapshot');
      assert.deepEqual(await read(cloned, bC), c1, 'the clone reads C through its parent snapshot');
    });
  });
}
