/**
 * Three Replicators in one process on MemoryBlockStores, a MemoryNetwork and a ManualClock, with
 * static placements (no metadata service): the in-memory world of the core-driving server tests
 * (catch-up-core, peering-core). Test infrastructure only.
 */
import { pino } from 'pino';
import type { PlacementGroup } from '../../../proto/metadata-types.js';
import { ManualClock } from '../../../dataplane/clock.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { StaticPlacementSource, type VolumePlacement } from '../../../dataplane/placement.js';
import { MemoryNetwork, type MemoryTransport } from '../../../dataplane/server/memory-transport.js';
import { Replicator } from '../../../dataplane/server/replication.js';
import type { CoreFaults } from '../../../dataplane/core/index.js';
import { MemoryBlockStore } from '../../../dataplane/store/memory-store.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';

export const ids = ['n1', 'n2', 'n3'] as const;
export type Id = typeof ids[number];
/** Two PGs; the tests use the second. */
export const pgCount = 2;
export const pg = 1;

export interface World {
  stores: Record<Id, MemoryBlockStore>;
  reps: Record<Id, Replicator>;
  sources: Record<Id, StaticPlacementSource>;
}

/** One volume's world: `port0 + 1..3` are the nodes' addresses (each suite its own, so none is shared). */
export class MemoryWorld {
  readonly addresses: Record<Id, string>;
  private readonly replicators: Replicator[] = [];

  constructor(readonly volumeId: string, port0: number) {
    this.addresses = { n1: `127.0.0.1:${port0 + 1}`, n2: `127.0.0.1:${port0 + 2}`, n3: `127.0.0.1:${port0 + 3}` };
  }

  /** Both PGs at `epoch`, led by `primary`, every replica in sync. */
  placement(epoch: number, primary: Id, replicas: readonly Id[]): VolumePlacement {
    const group = (p: number): PlacementGroup => ({ volumeId: this.volumeId, pg: p, replicas: [...replicas], primary, epoch, inSync: [...replicas] });
    return {
      volumeId: this.volumeId, pgCount, groups: [group(0), group(1)],
      nodes: Object.fromEntries(ids.map((id, i) => [id, { id, address: this.addresses[id], zone: `z${i + 1}` }])),
    };
  }

  /** `count` blocks of the volume that route to `pg`. */
  blocks(count: number): BlockAddress[] {
    const out: BlockAddress[] = [];
    for (let inode = 1; out.length < count; inode++) if (pgOf(inode, 0, pgCount) === pg) out.push({ volumeId: this.volumeId, inode, blockNo: 0 });
    return out;
  }

  /** A fresh world at epoch 1 led by n1; `transportOf` may give a node its own transport; `coreFaults`: the core's test-only breaks, on every node. */
  async start(transportOf: (id: Id, network: MemoryNetwork) => MemoryTransport | null = () => null, coreFaults?: CoreFaults): Promise<World> {
    const network = new MemoryNetwork();
    const clock = new ManualClock();
    const log = pino({ level: 'silent' });
    const w = { stores: {}, reps: {}, sources: {} } as World;
    for (const id of ids) {
      w.stores[id] = await MemoryBlockStore.open();
      w.sources[id] = new StaticPlacementSource();
      w.sources[id].set(this.placement(1, 'n1', ids));
      const transport = transportOf(id, network) ?? network.transport(this.addresses[id]);
      w.reps[id] = new Replicator(id, () => this.addresses[id], w.stores[id], w.sources[id], transport, log, null, clock, coreFaults === undefined ? {} : { coreFaults });
      network.attach(this.addresses[id], { replicator: w.reps[id], store: w.stores[id] });
      this.replicators.push(w.reps[id]);
    }
    return w;
  }

  /** Closes every Replicator started (an afterEach). */
  close(): void {
    for (const r of this.replicators.splice(0)) r.close();
  }
}
