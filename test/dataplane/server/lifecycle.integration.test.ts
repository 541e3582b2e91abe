/**
 * Data-node lifecycle with real processes: one metadata member (short data-node timeout) and
 * four data nodes (data/server/main.ts, short heartbeats and leases), in one sequence:
 *  1. a volume never written returns to `available` after a failover: every replica reports its
 *     empty PGs, so the replacements are marked in sync;
 *  2. a node replaced while it was away hands back what only it had, then drops every PG it no
 *     longer serves (and those of a volume deleted meanwhile) — its store ends up empty — and is
 *     picked as a replacement at the next failover, resyncing the data afresh;
 *  3. a node restarted with a wiped data dir under the same id is not counted in sync: it waits
 *     until it is marked down (its PGs move) before registering again; then the PGs left short
 *     get it back as a new replica, resynced from the others before it counts as in sync.
 * Timing: heartbeats 200 ms, lease ttl 1 s, node down after 2.5 s (longer than a data node's
 * restart, so step 3 would let the wiped node back in sync without the wait).
 */
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import type { MetadataClient } from '../../../metadata/service/client.js';
import type { BlockClient } from '../../../dataplane/client/block-client.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import type { Volume } from '../../../proto/metadata-types.js';
import { pgStates, readFromNode } from '../cluster.js';
import { pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const heartbeatMs = 200;
const leaseTtlMs = 1000;
const downAfterMs = 2500;
const ids = ['d1', 'd2', 'd3', 'd4'];

describe('data-node lifecycle (1 metadata + 4 data processes)', function () {
  this.timeout(90_000);
  const env = useMetaAndData(Object.fromEntries(ids.map((id) => [id, 'z1'])), { heartbeatMs, leaseTtlMs, downAfterMs });
  const { data, groups, stateOf } = env;
  let api: MetadataClient;
  let client: BlockClient;
  let flags: string[] = [];
  before(() => { ({ api, client, flags } = env); });
  const available = (v: Volume, ms = 20_000): Promise<true> => waitFor(`${v.name} available with every PG fully in sync`, async () => {
    const [vol, gs] = await Promise.all([api.getVolume(v.id), groups(v.id)]);
    return vol.state === 'available' && gs.every((g) => g.inSync.length === v.replicas);
  }, ms, 100);

  /** One block in each of the volume's PGs (block numbers a multiple of 64: one object each). */
  function blockPerPg(pgCount: number): Map<number, number> {
    const out = new Map<number, number>();
    for (let i = 0; out.size < pgCount; i++) if (!out.has(pgOf(0, i * 64, pgCount))) out.set(pgOf(0, i * 64, pgCount), i * 64);
    return out;
  }

  it('failover of a never-written volume, drop of stale copies after hand-back, a wiped node kept out of sync', async () => {
    const empty = await api.createVolume({ name: 'never-written', size: '1G', replicas: 3 });
    const kept = await api.createVolume({ name: 'kept', size: '1G', replicas: 3 });
    const doomed = await api.createVolume({ name: 'doomed', size: '1G', replicas: 3 });
    const blocks = blockPerPg(kept.pgCount);
    const payloads = new Map<number, Buffer>();
    for (const blockNo of blocks.values()) {
      const d = pattern(blockNo + 7, 4096);
      await client.writeBlock(kept.id, 0, blockNo, d, 'replicated');
      payloads.set(blockNo, d);
    }
    for (const blockNo of blocks.values()) await client.writeBlock(doomed.id, 0, blockNo, pattern(blockNo, 4096), 'replicated');

    // -- 1. kill a node: every volume, the never-written one included, heals to `available`.
    const before = await groups(kept.id);
    const x = before[0]?.primary ?? 'd1';
    const xDir = data.node(x).dir;
    await data.kill(x);
    await waitFor(`${x} marked down`, async () => await stateOf(x) === 'down', 20_000, 100);
    const emptyAfter = await groups(empty.id);
    assert.ok(emptyAfter.some((g) => g.epoch > 1), 'the never-written volume had PGs on the dead node');
    assert.ok(emptyAfter.every((g) => !g.replicas.includes(x)));
    await available(empty);
    await available(kept);

    // While x is down: its copy of a PG it led gets a write nobody else has (as a `durable` write
    // acknowledged just before the crash would be), and `doomed` is deleted.
    const led = before.find((g) => g.primary === x);
    assert.ok(led !== undefined);
    const onlyOnX = { blockNo: 64 * 1000 + [...Array(1000).keys()].find((i) => pgOf(0, 64 * (1000 + i), kept.pgCount) === led.pg)! * 64, data: pattern(4242, 4096) };
    const xStore = await LevelBlockStore.open({ dir: xDir, layout: 'segments' });
    const st = await xStore.pgState(kept.id, led.pg);
    await xStore.write({ kind: 'put', address: { volumeId: kept.id, inode: 0, blockNo: onlyOnX.blockNo }, pg: led.pg, seq: st.highestSeq + 1, epoch: st.epoch, data: onlyOnX.data }, { sync: true });
    await xStore.close();
    await api.deleteVolume(doomed.id);

    // -- 2. x returns: hands its extra write to the new primary, then drops everything it holds.
    await data.start(x, 'z1', xDir, flags);
    await waitFor(`${x} up again`, async () => await stateOf(x) === 'up', 20_000, 100);
    const xAddress = data.node(x).address;
    await waitFor(`${x} holds no placement group`, async () => (await pgStates(xAddress)).length === 0, 20_000, 100);
    assert.deepEqual((await client.readBlock(kept.id, 0, onlyOnX.blockNo)).data, onlyOnX.data, 'the write only the returning node had was handed back before the drop');
    payloads.set(onlyOnX.blockNo, onlyOnX.data);
    for (const blockNo of blocks.values()) assert.equal((await readFromNode(xAddress, kept.id, 0, blockNo)).status, 404);
    for (const id of ids) {
      await waitFor(`${id} dropped the deleted volume`, async () => (await pgStates(data.node(id).address)).every((p) => p.volumeId !== doomed.id), 10_000, 100);
    }
    const node = (await api.listDataNodes()).find((n) => n.id === x);
    assert.equal(node?.state, 'up', 'the node stays registered');

    // ... and it is eligible again: with y down, x is the only node left to replace it.
    const y = ids.find((id) => id !== x) ?? 'd2';
    await data.kill(y);
    await waitFor(`${x} replaces ${y} in every PG of ${kept.name}`, async () => (await groups(kept.id)).every((g) => g.replicas.includes(x) && !g.replicas.includes(y)), 20_000, 100);
    await available(kept);
    for (const [blockNo, d] of payloads) {
      const r = await readFromNode(xAddress, kept.id, 0, blockNo);
      assert.equal(r.status, 200, `block ${blockNo} resynced to ${x}`);
      assert.deepEqual(r.data, d);
    }

    // -- 3. z restarts at once with a wiped data dir: not back in sync until marked down.
    const z = ids.find((id) => id !== x && id !== y) ?? 'd3';
    const zDir = data.node(z).dir;
    assert.ok((await groups(kept.id)).every((g) => g.inSync.includes(z)));
    await data.kill(z);
    const killedAt = Date.now();
    await rm(zDir, { recursive: true, force: true });
    await mkdir(zDir);
    const restart = data.start(z, 'z1', zDir, flags);
    await waitFor(`${z} out of every in-sync set`, async () => (await groups(kept.id)).every((g) => !g.inSync.includes(z)), 20_000, 50);
    const outAfterMs = Date.now() - killedAt;
    await restart;
    await waitFor(`${z} registered again`, async () => await stateOf(z) === 'up', 20_000, 100);
    // With y still down, z is the only node free: every PG left short gets it back (re-replication).
    await available(kept);
    const back = await groups(kept.id);
    assert.ok(back.every((g) => g.replicas.includes(z) && (g.addedAtEpoch?.[z] ?? 0) > 1), 'the wiped node was added back as a new replica');
    const zAddress = data.node(z).address;
    for (const [blockNo, d] of payloads) {
      assert.deepEqual((await client.readBlock(kept.id, 0, blockNo)).data, d);
      const r = await readFromNode(zAddress, kept.id, 0, blockNo);
      assert.equal(r.status, 200, `block ${blockNo} resynced to the wiped node`);
      assert.deepEqual(r.data, d);
    }
    process.stdout.write(`      wiped node left the in-sync sets ${outAfterMs} ms after its kill (down after ${downAfterMs} ms)\n`);
  });
});
