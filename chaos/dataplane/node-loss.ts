/**
 * Node loss for the data-plane chaos run: a PG primary is killed right after it acknowledged a
 * write and its disk is wiped, then it comes back as the same id with an empty store (the
 * replacement the system supports: see `DataNodes.wipeNode`). Unlike kill -9, which leaves the
 * kernel's page cache and lets replication catch up, this loses everything the node alone had:
 * writes acknowledged at `replicated` or stronger must survive on the other replicas; writes
 * acknowledged at `acknowledged`/`durable` by that primary may be gone.
 */
import { pgOf } from '../../dataplane/logic/routing.js';
import type { ChaosClient } from '../cluster/client.js';
import type { DataNodes } from '../cluster/data-nodes.js';
import type { Random } from '../lib/random.js';
import { withTimeout } from '../lib/wait.js';
import type { BlockWrite, WriteHistory } from './history.js';

export interface NodeLossOptions {
  volumeId: string;
  pgCount: number;
  /** How long to wait for the target to acknowledge a write before striking anyway. */
  ackTimeoutMs: number;
  placementTimeoutMs: number;
}

export interface NodeLossStrike {
  target: string;
  /** The write the target acknowledged (as primary) right before it was killed, if one came. */
  lastAck: BlockWrite | null;
  /** PGs the target was primary of when it was lost. */
  primaryOf: number[];
}

/** `inode/blockNo` → its PG. */
export function pgOfKey(key: string, pgCount: number): number {
  const [inode, blockNo] = key.split('/').map(Number);
  return pgOf(inode ?? 0, blockNo ?? 0, pgCount);
}

export class NodeLoss {
  constructor(
    private readonly api: ChaosClient,
    private readonly data: DataNodes,
    private readonly history: WriteHistory,
    private readonly options: NodeLossOptions,
  ) {}

  /** Picks a primary, waits for its next acknowledgement, kills it and wipes its disk. */
  async strike(rnd: Random): Promise<NodeLossStrike> {
    const primaries = new Map<string, number[]>();
    try {
      for (const g of await withTimeout(this.api.getPlacement(this.options.volumeId), this.options.placementTimeoutMs)) {
        if (this.data.downNodes().includes(g.primary)) continue;
        primaries.set(g.primary, [...(primaries.get(g.primary) ?? []), g.pg]);
      }
    } catch {
      // No placement now (the metadata leader may be moving): lose a node at random instead.
    }
    const target = primaries.size > 0 ? rnd.pick([...primaries.keys()]) : rnd.pick(this.data.nodes).id;
    const pgs = new Set(primaries.get(target) ?? []);
    const lastAck = pgs.size === 0 ? null : await this.history.nextAck((w) => pgs.has(pgOfKey(w.key, this.options.pgCount)), this.options.ackTimeoutMs);
    await this.data.killNode(target);
    await this.data.wipeNode(target);
    return { target, lastAck, primaryOf: [...pgs].sort((a, b) => a - b) };
  }
}
