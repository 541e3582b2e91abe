/**
 * The shell simulator's clients: each writes (at every concern, through `primaryWrite`, the
 * block server's PUT) and reads (`admitPrimaryRead`, then the node's store, as the GET route
 * does) the blocks of one volume at the primary of its own placement, read from the metadata
 * service and refreshed only after an error — so it may be stale. A request not answered within
 * `clientTimeoutMs` is given up (its write may still land). Test infrastructure only.
 */
import { isGalleonError } from '../../../proto/errors.js';
import type { PlacementGroup, WriteConcern } from '../../../proto/metadata-types.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { groupOfMeta } from './meta-api.js';
import type { ShellChecker } from './checks.js';
import { blocksPerVolume, volumeId, type ShellWorld } from './world.js';

export const clientCount = 3;
/** A client gives a request up after this long (its write may still land). */
export const clientTimeoutMs = 1_000;
const concerns: readonly WriteConcern[] = ['acknowledged', 'durable', 'replicated', 'distributed'];
/**
 * With `replicaReads`, the share of reads sent to a random other replica of the client's placement
 * instead of its primary, as the core simulator's clients do. Off by default: the server serves a
 * read that names a current epoch at any member (`admitPrimaryRead`), so such reads are not
 * linearizable without any break (test/sim-dataplane/README.md, "The shell simulator").
 */
export const replicaReadShare = 0.1;

export interface WriteRecord { client: number; value: string; block: number; pg: number; concern: WriteConcern }

export class ShellClients {
  private stopped = false;
  private readonly groups: (PlacementGroup[] | null)[] = Array.from({ length: clientCount }, () => null);
  private written = 0;

  constructor(private readonly w: ShellWorld, private readonly check: ShellChecker, private readonly replicaReads = false) {}

  start(): void {
    for (let c = 0; c < clientCount; c++) this.next(c);
  }

  stop(): void {
    this.stopped = true;
  }

  private next(c: number): void {
    if (this.stopped) return;
    this.w.clock.setTimeout(() => { void this.op(c); }, this.w.rng.between(1, 15));
  }

  private address(block: number): BlockAddress {
    return { volumeId, inode: 1, blockNo: block };
  }

  private async op(c: number): Promise<void> {
    if (this.stopped) return;
    const block = this.w.rng.nextInt(blocksPerVolume);
    const pg = pgOf(1, block, this.w.pgCount);
    const groups = this.groups[c] ?? this.w.meta.pgs.map((_, p) => groupOfMeta(this.w.meta, volumeId, p));
    this.groups[c] = groups;
    const g = groups[pg];
    if (g === undefined) return;
    const write = this.w.rng.chance(0.7);
    const concern = this.w.rng.pick(concerns);
    const timeout = this.w.after(clientTimeoutMs).then(() => 'timeout' as const);
    const work = write ? this.write(c, block, pg, g, concern) : this.read(c, block, pg, g);
    const outcome = await Promise.race([work.then(() => 'done' as const, (err: unknown) => err), timeout]);
    if (outcome !== 'done') {
      // An error or no answer: read the placement again before the next request.
      this.groups[c] = null;
      this.w.trace(`client ${c} ${write ? 'write' : 'read'} b${block} at ${g.primary}@${g.epoch}: ${outcome === 'timeout' ? 'timeout' : isGalleonError(outcome) ? outcome.code : String(outcome)}`);
    }
    this.next(c);
  }

  private async write(c: number, block: number, pg: number, g: PlacementGroup, concern: WriteConcern): Promise<void> {
    const value = `c${c}.${++this.written}`;
    const n = this.w.node(g.primary);
    this.check.onWriteSent({ client: c, value, block, pg, concern });
    if (!n.alive) { this.w.stats.writesFailed++; throw new Error('primary down'); }
    const rep = n.rep;
    try {
      const r = await rep.primaryWrite(this.address(block), Buffer.from(value), g.epoch, concern);
      this.w.stats.writesAcked++;
      this.w.trace(`ack ${value} b${block} ${concern} by ${n.id} at ${r.epoch}/${r.seq}`);
      this.check.onAck(n.id, { client: c, value, block, pg, concern }, r.epoch, r.seq);
    } catch (err) {
      this.w.stats.writesFailed++;
      throw err;
    }
  }

  private async read(c: number, block: number, pg: number, g: PlacementGroup): Promise<void> {
    const others = g.replicas.filter((id) => id !== g.primary);
    const n = this.w.node(this.replicaReads && others.length > 0 && this.w.rng.chance(replicaReadShare) ? this.w.rng.pick(others) : g.primary);
    if (!n.alive) throw new Error(n.id === g.primary ? 'primary down' : 'replica down');
    const startedAt = this.w.clock.now();
    const rep = n.rep;
    const store = n.store;
    await rep.admitPrimaryRead(this.address(block), pg, g.epoch);
    let got: { value: string; epoch: number; seq: number } | null = null;
    try {
      const b = await store.read(this.address(block));
      got = { value: b.data.toString(), epoch: b.epoch, seq: b.seq };
    } catch (err) {
      if (!isGalleonError(err, 'BLOCK_NOT_FOUND')) throw err;
    }
    this.w.stats.readsServed++;
    this.w.trace(`read c${c} b${block} at ${n.id}@${g.epoch}: ${got === null ? 'none' : `${got.value}@${got.epoch}/${got.seq}`}`);
    this.check.onRead(n.id, block, pg, startedAt, got);
  }
}
