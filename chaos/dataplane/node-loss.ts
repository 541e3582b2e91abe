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
import { delay, withTimeout } from '../lib/wait.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import type { BlockWrite, WriteHistory } from './history.js';

export interface NodeLossOptions {
  volumeId: string;
  pgCount: number;
  replicas: number;
  /** How long to wait for the target to acknowledge a write before striking anyway. */
  ackTimeoutMs: number;
  placementTimeoutMs: number;
  /**
   * A node is lost only once every PG has all its replicas in sync again: losing a second disk
   * before the first loss was repaired is a double fault that 3 replicas do not promise to
   * survive. Not so within this long: no loss this time (the caller kills a node instead).
   */
  fullReplicasWaitMs: number;
  pollMs: number;
  /**
   * Other volumes of the run on the same nodes (the snapshot actor's): a loss waits for theirs
   * too — a second loss before one of them was repaired is the same double fault.
   */
  alsoVolumes?: () => string[];
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

  /**
   * Picks a primary, waits for its next acknowledgement, kills it and wipes its disk; null (and
   * nothing done) when the PGs did not all get their full replica set in sync in time.
   */
  async strike(rnd: Random): Promise<NodeLossStrike | null> {
    const groups = await this.fullyReplicated();
    if (groups === null) return null;
    const primaries = new Map<string, number[]>();
    for (const g of groups) primaries.set(g.primary, [...(primaries.get(g.primary) ?? []), g.pg]);
    const target = rnd.pick([...primaries.keys()]);
    const pgs = new Set(primaries.get(target) ?? []);
    const lastAck = pgs.size === 0 ? null : await this.history.nextAck((w) => pgs.has(pgOfKey(w.key, this.options.pgCount)), this.options.ackTimeoutMs);
    await this.data.killNode(target);
    await this.data.wipeNode(target);
    return { target, lastAck, primaryOf: [...pgs].sort((a, b) => a - b) };
  }

  private async fullyReplicated(): Promise<PlacementGroup[] | null> {
    const deadline = Date.now() + this.options.fullReplicasWaitMs;
    do {
      try {
        const groups = await withTimeout(this.api.getPlacement(this.options.volumeId), this.options.placementTimeoutMs);
        const others = await Promise.all((this.options.alsoVolumes?.() ?? []).map((v) => withTimeout(this.api.getPlacement(v), this.options.placementTimeoutMs)));
        const down = this.data.downNodes();
        const whole = (gs: readonly PlacementGroup[]): boolean => gs.every((g) => g.replicas.length === this.options.replicas && g.inSync.length === this.options.replicas && !g.replicas.some((r) => down.includes(r)));
        if (whole(groups) && others.every(whole) && groups.length > 0) return groups;
      } catch {
        // The metadata leader may be moving: ask again.
      }
      await delay(this.options.pollMs);
    } while (Date.now() < deadline);
    return null;
  }
}
