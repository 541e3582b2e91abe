/**
 * The block server's peering as a new primary carries out the core's peering plan
 * (dataplane/core/peering-plan.ts, issue #13 task 2): three Replicators in this process on
 * MemoryBlockStores, a MemoryNetwork and a ManualClock, static placements (no metadata service:
 * members that do not answer, and seqs nobody holds, are left behind).
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { PlacementGroup } from '../../../proto/metadata-types.js';
import { ManualClock } from '../../../dataplane/clock.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { StaticPlacementSource, type VolumePlacement } from '../../../dataplane/placement.js';
import { MemoryNetwork } from '../../../dataplane/server/memory-transport.js';
import { Replicator } from '../../../dataplane/server/replication.js';
import { MemoryBlockStore } from '../../../dataplane/store/memory-store.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';

const ids = ['n1', 'n2', 'n3'] as const;
type Id = typeof ids[number];
const addresses: Record<Id, string> = { n1: '127.0.0.1:7201', n2: '127.0.0.1:7202', n3: '127.0.0.1:7203' };
const volumeId = 'pp';
const pgCount = 2;
const pg = 1;

function placement(epoch: number, primary: Id, replicas: readonly Id[]): VolumePlacement {
  const group = (p: number): PlacementGroup => ({ volumeId, pg: p, replicas: [...replicas], primary, epoch, inSync: [...replicas] });
  return {
    volumeId, pgCount, groups: [group(0), group(1)],
    nodes: Object.fromEntries(ids.map((id, i) => [id, { id, address: addresses[id], zone: `z${i + 1}` }])),
  };
}

function blocks(count: number): BlockAddress[] {
  const out: BlockAddress[] = [];
  for (let inode = 1; out.length < count; inode++) if (pgOf(inode, 0, pgCount) === pg) out.push({ volumeId, inode, blockNo: 0 });
  return out;
}

describe('peering as a new primary follows the core\'s plan', () => {
  const replicators: Replicator[] = [];
  afterEach(() => { for (const r of replicators.splice(0)) r.close(); });

  async function world(): Promise<{ stores: Record<Id, MemoryBlockStore>; reps: Record<Id, Replicator>; sources: Record<Id, StaticPlacementSource> }> {
    const network = new MemoryNetwork();
    const clock = new ManualClock();
    const log = pino({ level: 'silent' });
    const stores = {} as Record<Id, MemoryBlockStore>;
    const reps = {} as Record<Id, Replicator>;
    const sources = {} as Record<Id, StaticPlacementSource>;
    for (const id of ids) {
      stores[id] = await MemoryBlockStore.open();
      sources[id] = new StaticPlacementSource();
      sources[id].set(placement(1, 'n1', ids));
      reps[id] = new Replicator(id, () => addresses[id], stores[id], sources[id], network.transport(addresses[id]), log, null, clock);
      network.attach(addresses[id], { replicator: reps[id], store: stores[id] });
      replicators.push(reps[id]);
    }
    return { stores, reps, sources };
  }

  it('pulls what the most complete member holds, then assigns above the group\'s highest seq', async () => {
    const { stores, reps, sources } = await world();
    const [a, b, c, d] = blocks(4) as [BlockAddress, BlockAddress, BlockAddress, BlockAddress];
    // n1 (primary at epoch 1) wrote seqs 1–3; n2 got them all, n3 only seq 1. Then n1 is gone: n3 primary at epoch 2.
    for (const [seq, addr] of [[1, a], [2, b], [3, c]] as const) {
      for (const s of seq === 1 ? [stores.n1, stores.n2, stores.n3] : [stores.n1, stores.n2]) {
        await s.write({ kind: 'put', address: addr, pg, seq, epoch: 1, data: pattern(seq, 64) }, { sync: true });
      }
    }
    const p2 = placement(2, 'n3', ['n2', 'n3']);
    sources.n2.set(p2);
    sources.n3.set(p2);
    const w = await reps.n3.primaryWrite(d, pattern(9, 64), 2, 'replicated');
    assert.deepEqual([w.seq, w.epoch], [4, 2], 'the first write of epoch 2 goes above every seq a member held');
    for (const [addr, seq] of [[b, 2], [c, 3]] as const) assert.deepEqual((await stores.n3.read(addr)).data, pattern(seq, 64), `n3 pulled seq ${seq} from n2`);
    assert.equal((await stores.n3.pgState(volumeId, pg)).appliedSeq, 4);
    assert.equal((await stores.n2.pgState(volumeId, pg)).appliedSeq, 4);
  });

  it('without a metadata service a seq no member holds is left behind, and no seq below the group\'s highest is given again', async () => {
    const { stores, reps, sources } = await world();
    const [a, b, c] = blocks(3) as [BlockAddress, BlockAddress, BlockAddress];
    // n2 holds seqs 1 and 3 (seq 2 reached nobody alive); n3 holds seq 1.
    for (const s of [stores.n2, stores.n3]) await s.write({ kind: 'put', address: a, pg, seq: 1, epoch: 1, data: pattern(1, 64) }, { sync: true });
    await stores.n2.write({ kind: 'put', address: b, pg, seq: 3, epoch: 1, data: pattern(3, 64) }, { sync: true });
    const p2 = placement(2, 'n3', ['n2', 'n3']);
    sources.n2.set(p2);
    sources.n3.set(p2);
    const w = await reps.n3.primaryWrite(c, pattern(9, 64), 2, 'acknowledged');
    assert.deepEqual([w.seq, w.epoch], [4, 2]);
    assert.deepEqual((await stores.n3.read(b)).data, pattern(3, 64), 'the held seq above the hole was pulled too');
    assert.equal((await stores.n3.pgState(volumeId, pg)).appliedSeq, 1, 'the hole at seq 2 stays: static placements leave it');
  });
});
