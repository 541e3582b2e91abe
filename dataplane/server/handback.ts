/**
 * Hand-back: a node replaced in a PG while it was away may hold writes nobody else got (`durable`
 * ones are acknowledged by the primary alone and forwarded later). Once the new primary exists,
 * each such block goes to it as a new write at the new epoch (see server/README.md, and
 * dataplane/core for the rule the simulator refined: compare the data's own version).
 */
import { isGalleonError } from '../../proto/errors.js';
import type { PlacementGroup, WriteConcern } from '../../proto/metadata-types.js';
import type { Logger } from '../log.js';
import { nodeOf } from '../placement.js';
import type { VolumePlacement } from '../placement.js';
import type { BlockStore } from '../store/types.js';
import type { PeerTransport } from './peers.js';
import type { PgRuntime } from './pg-runtime.js';

export interface HandBackDeps {
  store: BlockStore;
  peers: PeerTransport;
  log: Logger;
  rt: (key: string) => PgRuntime;
  /** Bytes per journal read from the new primary. */
  journalMaxBytes: number;
}

/**
 * A node that was replaced in a PG while it was away may hold writes nobody else got: `durable`
 * ones are acknowledged by the primary alone and forwarded later. Once the new primary exists,
 * hand each such block to it as a new write at the new epoch — unless the new primary has
 * written that block (or deleted it) at a newer epoch, or already holds this very version.
 * Runs once per (PG, epoch); a failure is retried at the next heartbeat.
 */
export async function maybeHandBack(d: HandBackDeps, p: VolumePlacement, g: PlacementGroup): Promise<void> {
  const r = d.rt(`${p.volumeId}/${g.pg}`);
  if (r.handedBack.has(g.epoch) || r.handingBack.has(g.epoch)) return;
  const mine = await d.store.pgState(p.volumeId, g.pg);
  if (mine.highestSeq === 0 || mine.epoch >= g.epoch) { r.handedBack.add(g.epoch); return; }
  r.handingBack.add(g.epoch);
  try {
    await handBack(d, p, g, mine.epoch, 'replicated');
    r.handedBack.add(g.epoch);
  } catch (err) {
    d.log.warn({ volumeId: p.volumeId, pg: g.pg, code: isGalleonError(err) ? err.code : undefined }, 'hand-back to the new primary failed; retrying later');
  } finally {
    r.handingBack.delete(g.epoch);
  }
}

/**
 * Writes every local block of the PG that the primary of `g` neither wrote or deleted after
 * `ourEpoch` nor holds in this version to it, as a new write at `g.epoch` with `concern`.
 * Returns how many; 0 when the primary's journal is trimmed past our epoch (its newer writes
 * cannot be told apart, so nothing is handed back). Throws when the primary cannot be reached.
 */
export async function handBack(d: HandBackDeps, p: VolumePlacement, g: PlacementGroup, ourEpoch: number, concern: WriteConcern): Promise<number> {
  const primary = nodeOf(p, g.primary).address;
  // Blocks the new primary touched after our epoch: never overwrite those.
  const newer = new Set<string>();
  for (let from = 1; ;) {
    let frames;
    try {
      frames = await d.peers.fetchJournal(primary, p.volumeId, g.pg, from, g.epoch, d.journalMaxBytes);
    } catch (err) {
      if (!isGalleonError(err, 'OUT_OF_RANGE')) throw err;
      d.log.warn({ volumeId: p.volumeId, pg: g.pg }, 'new primary trimmed its journal; nothing handed back');
      return 0;
    }
    if (frames.length === 0) break;
    for (const { meta } of frames) if (meta.epoch > ourEpoch) newer.add(`${meta.inode}/${meta.blockNo}`);
    from = (frames[frames.length - 1]?.meta.seq ?? from) + 1;
  }
  let handed = 0;
  for await (const { address, block } of d.store.iterateBlocks({ volumeId: p.volumeId, pg: g.pg })) {
    if (newer.has(`${address.inode}/${address.blockNo}`)) continue;
    const theirs = await d.peers.blockVersion(primary, address);
    if (theirs !== null && (theirs.epoch > block.epoch || (theirs.epoch === block.epoch && theirs.seq >= block.seq))) continue;
    await d.peers.writeAsClient(primary, address, block.data, g.epoch, concern);
    handed++;
  }
  if (handed > 0) d.log.warn({ volumeId: p.volumeId, pg: g.pg, epoch: g.epoch, handed }, 'handed writes the new primary lacked back to it');
  return handed;
}
