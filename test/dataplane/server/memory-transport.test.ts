/**
 * The PeerTransport conformance suite (../conformance/transport.conformance.ts) for
 * `MemoryTransport`: two Replicators in this process on MemoryBlockStores, joined by a
 * MemoryNetwork; plus what only the memory network shows (a node cut off and reconnected).
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { isGalleonError } from '../../../proto/errors.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { StaticPlacementSource } from '../../../dataplane/placement.js';
import { MemoryNetwork } from '../../../dataplane/server/memory-transport.js';
import { Replicator } from '../../../dataplane/server/replication.js';
import { MemoryBlockStore } from '../../../dataplane/store/memory-store.js';
import { transportConformance, twoNodePlacement } from '../conformance/transport.conformance.js';

const addresses = { n1: '127.0.0.1:7001', n2: '127.0.0.1:7002' } as const;

async function memoryWorld(): Promise<{ network: MemoryNetwork; replicators: Replicator[] }> {
  const network = new MemoryNetwork();
  const log = pino({ level: 'silent' });
  const replicators: Replicator[] = [];
  const placement = twoNodePlacement(addresses);
  for (const id of ['n1', 'n2'] as const) {
    const store = await MemoryBlockStore.open();
    const source = new StaticPlacementSource();
    source.set(placement);
    const r = new Replicator(id, () => addresses[id], store, source, network.transport(addresses[id]), log);
    network.attach(addresses[id], { replicator: r, store });
    replicators.push(r);
  }
  return { network, replicators };
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
});
