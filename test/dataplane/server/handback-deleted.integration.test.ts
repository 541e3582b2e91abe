/**
 * The hand-back gap of issue #13 on real processes (1 metadata member, 4 data nodes; heartbeats
 * 200 ms, lease ttl 1 s, node down after 4 s): block X is written to all three replicas; the
 * primary is killed and replaced; the new primary deletes X and then takes more than a journal's
 * trim step of writes, so its journal no longer shows the delete; the old primary comes back, no
 * longer a member, and hands its copy of X back. On the old code the new primary found no copy
 * of X (a tombstone reads as missing) and took it: the deleted block came back. Now the
 * primary's compare counts its tombstone as the block's newest version and declines.
 */
import assert from 'node:assert/strict';
import { trimEveryEntries } from '../../../dataplane/server/replication.js';
import { pgStates } from '../cluster.js';
import { blocksInPg, pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3', d4: 'z1' };

describe('hand-back of a block the new primary deleted and trimmed past (issue #13 gap)', function () {
  this.timeout(180_000);
  const env = useMetaAndData(zones, { heartbeatMs: 200, leaseTtlMs: 1000, downAfterMs: 4000 });


  it('the returning node\'s copy of a deleted block stays deleted', async () => {
    const vol = await env.api.createVolume({ name: 'hb-deleted', size: '1G', replicas: 3 });
    const inPg0 = blocksInPg(vol.pgCount, 0, trimEveryEntries + 200);
    const [x, ...rest] = inPg0 as [number, ...number[]];
    await env.client.writeBlock(vol.id, 0, x, pattern(7, 4096), 'replicated');
    const g = await env.group(vol.id, 0);
    const old = g.primary;
    await env.data.kill(old);

    const moved = await waitFor('PG 0 failed over and got a replacement', async () => {
      const now = await env.group(vol.id, 0);
      return now.primary !== old && !now.replicas.includes(old) && now.replicas.length === 3 ? now : undefined;
    }, 30_000, 100);
    const del = await env.client.deleteBlock(vol.id, 0, x, 'replicated');
    assert.ok(del.epoch > g.epoch);
    await env.client.writeBlocks(vol.id, rest.map((b, i) => ({ inode: 0, blockNo: b, data: pattern(100 + i, 512) })), 'replicated');
    const primaryAddress = env.data.node(moved.primary).address;
    await waitFor('the new primary trimmed its journal past the delete', async () => {
      const st = (await pgStates(primaryAddress)).find((s) => s.volumeId === vol.id && s.pg === 0);
      return st !== undefined && st.trimmedSeq >= del.seq;
    }, 30_000, 100);

    await env.startNode(old);
    // The returning node drops its stale copy once its hand-back is done.
    await waitFor(`${old} handed back and dropped its copy of PG 0`, async () => {
      const mine = (await pgStates(env.data.node(old).address)).find((s) => s.volumeId === vol.id && s.pg === 0);
      return mine === undefined || mine.highestSeq === 0;
    }, 30_000, 200);
    await assert.rejects(env.client.readBlock(vol.id, 0, x), (err: { code?: string }) => err.code === 'BLOCK_NOT_FOUND', 'the deleted block stays deleted');
  });
});
