/**
 * The PeerTransport conformance suite (../conformance/transport.conformance.ts) for
 * `MemoryTransport`: two Replicators in this process on MemoryBlockStores, joined by a
 * MemoryNetwork; plus what only the memory network shows (a node cut off and reconnected).
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { isGalleonError } from '../../../proto/errors.js';
import { ManualClock, systemClock, type Clock } from '../../../dataplane/clock.js';
import { defaultCoreLimits } from '../../../dataplane/core/index.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { StaticPlacementSource } from '../../../dataplane/placement.js';
import { MemoryNetwork } from '../../../dataplane/server/memory-transport.js';
import { gapGraceMs, primaryTickMs, Replicator } from '../../../dataplane/server/replication.js';
import { MemoryBlockStore } from '../../../dataplane/store/memory-store.js';
import { blockIn, pgForwarded, transportConformance, twoNodePlacement } from '../conformance/transport.conformance.js';
import { pattern, waitFor } from '../helpers.js';

const addresses = { n1: '127.0.0.1:7001', n2: '127.0.0.1:7002' } as const;

async function memoryWorld(clock: Clock = systemClock): Promise<{ network: MemoryNetwork; replicators: Replicator[]; stores: MemoryBlockStore[] }> {
  const network = new MemoryNetwork();
  const log = pino({ level: 'silent' });
  const replicators: Replicator[] = [];
  const stores: MemoryBlockStore[] = [];
  const placement = twoNodePlacement(addresses);
  for (const id of ['n1', 'n2'] as const) {
    const store = await MemoryBlockStore.open();
    const source = new StaticPlacementSource();
    source.set(placement);
    const r = new Replicator(id, () => addresses[id], store, source, network.transport(addresses[id]), log, null, clock);
    network.attach(addresses[id], { replicator: r, store });
    replicators.push(r);
    stores.push(store);
  }
  return { network, replicators, stores };
}

describe('PeerTransport conformance: MemoryTransport', () => {
  let world: Awaited<ReturnType<typeof memoryWorld>> | undefined;
  before(async () => {
    world = await memoryWorld();
    const p = twoNodePlacement(addresses);
    for (const r of world.replicators) await r.adoptPlacement(p);
  });
  after(() => { for (const r of world?.replicators ?? []) r.close(); });

  transportConformance({
    transport: () => { if (world === undefined) throw new Error('not started'); return world.network.transport(addresses.n1); },
    address: (id) => addresses[id],
    deadAddress: () => '127.0.0.1:7999',
  }, (inode, blockNo) => pgOf(inode, blockNo, 2));
});

describe('MemoryNetwork', () => {
  it('a node cut off is unreachable, in both directions, until reconnected', async () => {
    const { network, replicators } = await memoryWorld();
    try {
      const p = twoNodePlacement(addresses);
      for (const r of replicators) await r.adoptPlacement(p);
      const a = { volumeId: 'tv', inode: 1, blockNo: 0 };
      network.setReachable(addresses.n2, false);
      await assert.rejects(network.transport(addresses.n1).blockVersion(addresses.n2, a), (e: unknown) => isGalleonError(e, 'UNAVAILABLE'));
      await assert.rejects(network.transport(addresses.n2).blockVersion(addresses.n1, a), (e: unknown) => isGalleonError(e, 'UNAVAILABLE'));
      network.setReachable(addresses.n2, true);
      assert.equal(await network.transport(addresses.n1).blockVersion(addresses.n2, a), null);
    } finally {
      for (const r of replicators) r.close();
    }
  });

  it('link faults delay a call on the clock, and a dropped answer loses the answer to work the target did', async () => {
    const clock = new ManualClock();
    const { network, replicators, stores } = await memoryWorld(clock);
    try {
      const p = twoNodePlacement(addresses);
      for (const r of replicators) await r.adoptPlacement(p);
      const seen: string[] = [];
      let dropAnswers = false;
      network.setFaults({
        request: (from, to) => { seen.push(`request ${from}->${to}`); return new Promise((resolve) => { clock.setTimeout(resolve, 5); }); },
        answer: (from, to) => {
          seen.push(`answer ${to}->${from}`);
          return dropAnswers ? Promise.reject(new Error('answer lost')) : Promise.resolve();
        },
        broken: () => new Promise<never>(() => undefined),
      });
      const a = blockIn(pgForwarded, 1, (inode, blockNo) => pgOf(inode, blockNo, 2));
      const t = network.transport(addresses.n1);
      const opts = { sync: true, primary: addresses.n1, trimSeq: 0 };
      let settled = false;
      const first = t.replicate(addresses.n2, { kind: 'put', address: a, pg: pgForwarded, seq: 1, epoch: 1, data: pattern(1, 64) }, opts).finally(() => { settled = true; });
      await waitFor('the request to wait on its link', () => clock.pendingTimers === 1);
      clock.advance(4);
      await new Promise<void>((resolve) => { setImmediate(resolve); });
      assert.equal(settled, false, 'not delivered before its delay');
      clock.advance(1);
      assert.deepEqual(await first, { appliedSeq: 1 });
      dropAnswers = true;
      const second = t.replicate(addresses.n2, { kind: 'put', address: a, pg: pgForwarded, seq: 2, epoch: 1, data: pattern(2, 64) }, opts);
      await waitFor('the second request to wait on its link', () => clock.pendingTimers === 1);
      clock.advance(5);
      await assert.rejects(second, (e: unknown) => isGalleonError(e, 'INTERNAL'), 'the lost answer reaches the caller as the wire\'s error');
      assert.equal((await (stores[1] as MemoryBlockStore).pgState('tv', pgForwarded)).appliedSeq, 2, 'the replica applied the write whose answer was lost');
      assert.deepEqual(seen, [`request ${addresses.n1}->${addresses.n2}`, `answer ${addresses.n2}->${addresses.n1}`, `request ${addresses.n1}->${addresses.n2}`, `answer ${addresses.n2}->${addresses.n1}`]);
      network.setFaults(null);
    } finally {
      for (const r of replicators) r.close();
    }
  });
});

describe('Replicator on the in-memory store, transport and clock', () => {
  it('a replica pulls a missed write from its primary when the gap outlives gapGraceMs on the injected clock', async () => {
    const clock = new ManualClock();
    const { network, replicators, stores } = await memoryWorld(clock);
    try {
      const p = twoNodePlacement(addresses);
      for (const r of replicators) await r.adoptPlacement(p);
      const [n1, n2] = stores as [MemoryBlockStore, MemoryBlockStore];
      const a = blockIn(pgForwarded, 1, (inode, blockNo) => pgOf(inode, blockNo, 2));
      // Seq 1 is in the primary's journal, but its forward never reached n2; seq 2 does.
      await n1.write({ kind: 'put', address: a, pg: pgForwarded, seq: 1, epoch: 1, data: pattern(1, 256) }, { sync: true });
      const b = { ...a, blockNo: 1 };
      const answer = await network.transport(addresses.n1).replicate(addresses.n2, { kind: 'put', address: b, pg: pgForwarded, seq: 2, epoch: 1, data: pattern(2, 256) }, { sync: true, primary: addresses.n1, trimSeq: 0 });
      assert.deepEqual(answer, { appliedSeq: 0 });
      assert.equal(clock.pendingTimers, 1, 'the gap watch runs on the injected clock');
      clock.advance(gapGraceMs - 1);
      assert.equal((await n2.pgState('tv', pgForwarded)).appliedSeq, 0, 'not before the grace period');
      clock.advance(1);
      await waitFor('n2 to pull seq 1 from n1', async () => (await n2.pgState('tv', pgForwarded)).appliedSeq === 2);
      // When to pull was the core's: its record was ticked gapTicks times (gapTickMs each) and returned the pull.
      assert.equal(replicators[1]?.coreRecord('tv', pgForwarded)?.now, defaultCoreLimits.gapTicks);
      assert.deepEqual((await n2.read(a)).data, pattern(1, 256));
    } finally {
      for (const r of replicators) r.close();
    }
  });

  it('a primary\'s record is ticked on the injected clock while it serves the epoch, and no more once a placement names another primary', async () => {
    const clock = new ManualClock();
    const { replicators } = await memoryWorld(clock);
    try {
      const p = twoNodePlacement(addresses);
      for (const r of replicators) await r.adoptPlacement(p);
      const [r1] = replicators as [Replicator, Replicator];
      const a = blockIn(pgForwarded, 1, (inode, blockNo) => pgOf(inode, blockNo, 2));
      const w = await r1.primaryWrite(a, pattern(1, 256), 1, 'replicated');
      assert.deepEqual([w.seq, w.epoch], [1, 1]);
      const rec = r1.coreRecord('tv', pgForwarded);
      assert.deepEqual([rec?.role, rec?.phase, rec?.now], ['primary', 'active', 0]);
      clock.advance(primaryTickMs * 3);
      assert.equal(rec?.now, 3, 'one tick per primaryTickMs of the clock');
      // The metadata service moved the PG to n2 at epoch 2: n1's placement step is `stepDown`.
      const moved = { ...p, groups: p.groups.map((g) => ({ ...g, primary: 'n2', epoch: 2 })) };
      await r1.adoptPlacement(moved, true);
      clock.advance(primaryTickMs * 3);
      assert.equal(rec?.now, 3, 'a primary that stepped down is not ticked as one');
    } finally {
      for (const r of replicators) r.close();
    }
  });

  it('a forward is a step of the replica\'s one core record: it mirrors the store, restores from it when the store got ahead, and a seq it holds is not stored again', async () => {
    const { network, replicators, stores } = await memoryWorld();
    try {
      const p = twoNodePlacement(addresses);
      for (const r of replicators) await r.adoptPlacement(p);
      const [, n2] = stores as [MemoryBlockStore, MemoryBlockStore];
      const [, r2] = replicators as [Replicator, Replicator];
      const t = network.transport(addresses.n1);
      const opts = { sync: true, primary: addresses.n1, trimSeq: 0 };
      const a = blockIn(pgForwarded, 1, (inode, blockNo) => pgOf(inode, blockNo, 2));
      const b = { ...a, blockNo: 1 };
      assert.deepEqual(await t.replicate(addresses.n2, { kind: 'put', address: a, pg: pgForwarded, seq: 1, epoch: 1, data: pattern(1, 256) }, opts), { appliedSeq: 1 });
      const rec = r2.coreRecord('tv', pgForwarded);
      assert.deepEqual([rec?.role, rec?.epoch, rec?.applied], ['replica', 1, 1]);
      // Written behind the record's back (as catch-up does): the next forward finds the store ahead.
      await n2.write({ kind: 'put', address: a, pg: pgForwarded, seq: 2, epoch: 1, data: pattern(2, 256) }, { sync: true });
      assert.deepEqual(await t.replicate(addresses.n2, { kind: 'put', address: a, pg: pgForwarded, seq: 3, epoch: 1, data: pattern(3, 256) }, opts), { appliedSeq: 3 });
      assert.equal(r2.coreRecord('tv', pgForwarded)?.applied, 3);
      // A seq the record holds is acknowledged without a store write (the core's decision, not the store's onlyIfNewer).
      assert.deepEqual(await t.replicate(addresses.n2, { kind: 'put', address: b, pg: pgForwarded, seq: 1, epoch: 1, data: pattern(9, 256) }, opts), { appliedSeq: 3 });
      await assert.rejects(n2.read(b), (e: unknown) => isGalleonError(e, 'BLOCK_NOT_FOUND'));
    } finally {
      for (const r of replicators) r.close();
    }
  });
});
