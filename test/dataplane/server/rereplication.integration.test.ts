/**
 * Re-replication with real processes: one metadata member and three data nodes (the normal
 * `galleon up` shape), a volume with 3 replicas written at `replicated`.
 *  - kill -9 of a data node until it is marked down: every PG drops it (no other node is free),
 *    2 replicas left, volume degraded;
 *  - more writes meanwhile, and (as a `durable` write acknowledged just before the crash would
 *    leave it) one write only the dead node's copy holds, at a seq the new primary has since
 *    given to another write;
 *  - the node restarts: every PG gets it back (3 replicas, all in sync, volume available), the
 *    write only it had was handed back, and each PG's blocks are identical on all three nodes —
 *    which they would not be had the node caught up from its old watermark.
 * Timing: heartbeats 200 ms, lease ttl 1 s, node down after 2.5 s.
 */
import assert from 'node:assert/strict';
import type { MetadataClient } from '../../../metadata/service/client.js';
import type { BlockClient } from '../../../dataplane/client/block-client.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { pgBlockEntries } from '../cluster.js';
import { pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const heartbeatMs = 200;
const leaseTtlMs = 1000;
const downAfterMs = 2500;
const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3' };

/**
 * The live blocks of a PG on one node. Kept versions (snapshots, issue #11) are left out: which
 * versions a copy keeps depends on the order a catch-up and a newer epoch's forward reach it, and
 * a copy may keep one no snapshot cut needs (dataplane/store/README.md, "Kept versions for
 * snapshots"; the chaos run compares reads at every epoch cut instead). With them in, this check
 * timed out about 1 run in 11 when the first write after the node loss reached a primary at the
 * old epoch.
 */
async function pgDigest(address: string, volumeId: string, pg: number): Promise<string> {
  return (await pgBlockEntries(address, volumeId, pg, true)).join(',');
}

describe('re-replication of PGs left short (1 metadata + 3 data processes)', function () {
  this.timeout(90_000);
  const env = useMetaAndData(zones, { heartbeatMs, leaseTtlMs, downAfterMs });
  const { data, groups, stateOf } = env;
  let api: MetadataClient;
  let client: BlockClient;
  let flags: string[] = [];
  before(() => { ({ api, client, flags } = env); });

  it('a node marked down and restarted is added back to every PG, resynced from empty, identical on all replicas', async () => {
    const vol = await api.createVolume({ name: 'rerep', size: '1G', replicas: 3 });
    const payloads = new Map<number, Buffer>();
    const write = async (blockNo: number, seed: number): Promise<void> => {
      const d = pattern(seed, 4096);
      await client.writeBlock(vol.id, 0, blockNo, d, 'replicated');
      payloads.set(blockNo, d);
    };
    // Two blocks per PG, so every PG has history on every node.
    const perPg = new Map<number, number[]>();
    for (let i = 0; [...perPg.values()].reduce((n, l) => n + l.length, 0) < 2 * vol.pgCount; i++) {
      const blockNo = i * 64;
      const list = perPg.get(pgOf(0, blockNo, vol.pgCount)) ?? [];
      if (list.length < 2) perPg.set(pgOf(0, blockNo, vol.pgCount), [...list, blockNo]);
    }
    for (const blocks of perPg.values()) for (const b of blocks) await write(b, b + 1);

    const before = await groups(vol.id);
    const x = before[0]?.primary ?? 'd1';
    const led = before.find((g) => g.primary === x);
    assert.ok(led !== undefined);
    const xDir = data.node(x).dir;
    await data.kill(x);
    await waitFor(`${x} marked down`, async () => await stateOf(x) === 'down', 20_000, 100);
    const short = await groups(vol.id);
    assert.ok(short.every((g) => g.replicas.length === 2 && !g.replicas.includes(x)), 'every PG is left with 2 replicas');
    assert.equal((await api.getVolume(vol.id)).state, 'degraded');

    // Writes while x is away: each PG's seqs move on without it (overwrites and new blocks).
    for (const blocks of perPg.values()) {
      const [first] = blocks;
      if (first !== undefined) await write(first, first + 100);
      await write((blocks[1] ?? 0) + 64 * 1024, first ?? 0);
    }
    // x's copy of a PG it led gets a write nobody else has, at the next seq it knew of: the new
    // primary has given that seq to another write since.
    const xStore = await LevelBlockStore.open({ dir: xDir, layout: 'segments' });
    const st = await xStore.pgState(vol.id, led.pg);
    let onlyOnX = 64 * 2048;
    while (pgOf(0, onlyOnX, vol.pgCount) !== led.pg) onlyOnX += 64;
    const onlyData = pattern(4242, 4096);
    await xStore.write({ kind: 'put', address: { volumeId: vol.id, inode: 0, blockNo: onlyOnX }, pg: led.pg, seq: st.highestSeq + 1, epoch: st.epoch, data: onlyData }, { sync: true });
    await xStore.close();

    // x returns: every PG gets a third replica again (x, the only node free), resynced, in sync.
    await data.start(x, zones[x] ?? 'z1', xDir, flags);
    const healedIn = Date.now();
    await waitFor('every PG back to 3 in-sync replicas and the volume available', async () => {
      const [v, gs] = await Promise.all([api.getVolume(vol.id), groups(vol.id)]);
      return v.state === 'available' && gs.every((g) => g.replicas.length === 3 && g.inSync.length === 3 && g.replicas.includes(x));
    }, 30_000, 100);
    const healMs = Date.now() - healedIn;
    const healed = await groups(vol.id);
    for (const g of healed) assert.ok((g.addedAtEpoch?.[x] ?? 0) > (short[g.pg]?.epoch ?? Infinity), `pg ${g.pg} records when ${x} was added back`);
    assert.deepEqual((await client.readBlock(vol.id, 0, onlyOnX)).data, onlyData, 'the write only the returning node had was handed back');
    payloads.set(onlyOnX, onlyData);

    const addresses = Object.keys(zones).map((id) => data.node(id).address);
    for (const g of healed) {
      await waitFor(`pg ${g.pg} identical on all three nodes`, async () => {
        const digests = await Promise.all(addresses.map((a) => pgDigest(a, vol.id, g.pg)));
        return digests.every((d) => d === digests[0]) && digests[0] !== '';
      }, 10_000, 100);
    }
    for (const [blockNo, d] of payloads) assert.deepEqual((await client.readBlock(vol.id, 0, blockNo)).data, d, `block ${blockNo}`);
    process.stdout.write(`      ${vol.pgCount} PGs back to 3 in-sync replicas ${healMs} ms after the restart\n`);
  });
});
