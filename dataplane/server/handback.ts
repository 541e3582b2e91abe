/**
 * Hand-back: a node replaced in a PG while it was away may hold writes nobody else got (`durable`
 * ones are acknowledged by the primary alone and forwarded later). Once the new primary exists,
 * each block goes to it as a hand-back write; the primary takes the ones whose data is newer than
 * its own copy (compare and seq in one step, `Replicator.handBackWrite`; server/README.md).
 */
import { isGalleonError } from '../../proto/errors.js';
import type { PlacementGroup, WriteConcern } from '../../proto/metadata-types.js';
import type { Logger } from '../log.js';
import { nodeOf } from '../placement.js';
import type { VolumePlacement } from '../placement.js';
import type { ReplicationStore } from '../store/types.js';
import type { PeerTransport } from './peers.js';
import type { PgRuntime } from './pg-runtime.js';

export interface HandBackDeps {
  store: ReplicationStore;
  peers: PeerTransport;
  log: Logger;
  rt: (key: string) => PgRuntime;
  /** Bytes per journal read from the new primary. */
  journalMaxBytes: number;
}

/**
 * Hands this node's copy of a PG it is no longer in to the PG's primary (`handBack`), once per
 * (PG, epoch) — whether it must is the core's `placementStep`; a failure is retried at the next
 * heartbeat.
 */
export async function handBackLeft(d: HandBackDeps, p: VolumePlacement, g: PlacementGroup): Promise<void> {
  const r = d.rt(`${p.volumeId}/${g.pg}`);
  if (r.handedBack.has(g.epoch) || r.handingBack.has(g.epoch)) return;
  r.handingBack.add(g.epoch);
  try {
    const mine = await d.store.pgState(p.volumeId, g.pg);
    await handBack(d, p, g, mine.epoch, 'replicated');
    r.handedBack.add(g.epoch);
  } catch (err) {
    d.log.warn({ volumeId: p.volumeId, pg: g.pg, code: isGalleonError(err) ? err.code : undefined }, 'hand-back to the new primary failed; retrying later');
  } finally {
    r.handingBack.delete(g.epoch);
  }
}

/**
 * Offers every local block of the PG to the primary of `g` as a hand-back write at `g.epoch` with
 * `concern`; the primary takes a block only when the offered data is newer than its own copy, and
 * compares and orders it in one step (`Replicator.handBackWrite`; issue #13 rules 2 and 3). Blocks
 * the primary deleted after `ourEpoch` are skipped while its journal still shows the delete (a
 * deleted block has no version to compare with there). Returns how many blocks were taken.
 * Throws when the primary cannot be reached.
 */
export async function handBack(d: HandBackDeps, p: VolumePlacement, g: PlacementGroup, ourEpoch: number, concern: WriteConcern): Promise<number> {
  const primary = nodeOf(p, g.primary).address;
  const deleted = await deletedSince(d, primary, p.volumeId, g, ourEpoch);
  let handed = 0;
  let declined = 0;
  for await (const { address, block } of d.store.iterateBlocks({ volumeId: p.volumeId, pg: g.pg })) {
    if (deleted.has(`${address.inode}/${address.blockNo}`)) continue;
    if (await d.peers.handBackBlock(primary, address, block.data, g.epoch, concern, { epoch: block.epoch, seq: block.seq })) handed++;
    else declined++;
  }
  if (handed > 0) d.log.warn({ volumeId: p.volumeId, pg: g.pg, epoch: g.epoch, handed, declined }, 'handed writes the new primary lacked back to it');
  return handed;
}

/**
 * Blocks the new primary deleted after `ourEpoch`, from its journal. A journal trimmed past our
 * epoch no longer shows them: the hand-back goes on without (the primary still compares every
 * block it holds; server/README.md names what is left).
 */
async function deletedSince(d: HandBackDeps, primary: string, volumeId: string, g: PlacementGroup, ourEpoch: number): Promise<Set<string>> {
  const deleted = new Set<string>();
  for (let from = 1; ;) {
    let frames;
    try {
      frames = await d.peers.fetchJournal(primary, volumeId, g.pg, from, g.epoch, d.journalMaxBytes);
    } catch (err) {
      if (!isGalleonError(err, 'OUT_OF_RANGE')) throw err;
      d.log.warn({ volumeId, pg: g.pg }, 'new primary trimmed its journal; handing back with the primary comparing versions only');
      return deleted;
    }
    if (frames.length === 0) return deleted;
    for (const { meta } of frames) {
      const k = `${meta.inode}/${meta.blockNo}`;
      if (meta.epoch > ourEpoch && meta.kind === 'delete') deleted.add(k);
      else if (meta.kind === 'put') deleted.delete(k);
    }
    from = (frames[frames.length - 1]?.meta.seq ?? from) + 1;
  }
}
