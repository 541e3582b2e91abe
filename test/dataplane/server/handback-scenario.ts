/**
 * The scenario the hand-back-of-a-deleted-block tests share (handback-deleted, handback-purged):
 * block X written to all three replicas of PG 0, the primary killed and replaced, X deleted by the
 * new primary, which then takes more than a journal's trim step of writes so its journal no longer
 * shows the delete; later the old primary returns, no longer a member, and hands its copy back.
 */
import assert from 'node:assert/strict';
import { trimEveryEntries } from '../../../dataplane/server/replication.js';
import type { PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import { pgStates } from '../cluster.js';
import { blocksInPg, pattern, waitFor } from '../helpers.js';
import type { MetaAndData } from './meta-and-data.js';

export interface DeletedAfterFailover {
  vol: Volume;
  /** The deleted block. */
  x: number;
  /** The killed primary (away until `returnAndHandBack`). */
  old: string;
  /** PG 0 before and after the failover. */
  before: PlacementGroup;
  moved: PlacementGroup;
  /** The new primary's block address. */
  primary: string;
  del: { seq: number; epoch: number };
}

export async function deleteAfterFailover(env: MetaAndData, name: string): Promise<DeletedAfterFailover> {
  const vol = await env.api.createVolume({ name, size: '1G', replicas: 3 });
  const [x, ...rest] = blocksInPg(vol.pgCount, 0, trimEveryEntries + 200) as [number, ...number[]];
  await env.client.writeBlock(vol.id, 0, x, pattern(7, 4096), 'replicated');
  const before = await env.group(vol.id, 0);
  const old = before.primary;
  await env.data.kill(old);
  const moved = await waitFor('PG 0 failed over and got a replacement', async () => {
    const now = await env.group(vol.id, 0);
    return now.primary !== old && !now.replicas.includes(old) && now.replicas.length === 3 ? now : undefined;
  }, 30_000, 100);
  const del = await env.client.deleteBlock(vol.id, 0, x, 'replicated');
  await env.client.writeBlocks(vol.id, rest.map((b, i) => ({ inode: 0, blockNo: b, data: pattern(100 + i, 512) })), 'replicated');
  const primary = env.data.node(moved.primary).address;
  await waitFor('the new primary trimmed its journal past the delete', async () => {
    const st = (await pgStates(primary)).find((s) => s.volumeId === vol.id && s.pg === 0);
    return st !== undefined && st.trimmedSeq >= del.seq;
  }, 30_000, 100);
  return { vol, x, old, before, moved, primary, del };
}

/** The old primary returns, hands back and drops its stale copy; the deleted block stays deleted. */
export async function returnAndHandBack(env: MetaAndData, s: DeletedAfterFailover): Promise<void> {
  await env.startNode(s.old);
  await waitFor(`${s.old} handed back and dropped its copy of PG 0`, async () => {
    const mine = (await pgStates(env.data.node(s.old).address)).find((p) => p.volumeId === s.vol.id && p.pg === 0);
    return mine === undefined || mine.highestSeq === 0;
  }, 30_000, 200);
  await assert.rejects(env.client.readBlock(s.vol.id, 0, s.x), (err: { code?: string }) => err.code === 'BLOCK_NOT_FOUND', 'the deleted block stays deleted');
}
