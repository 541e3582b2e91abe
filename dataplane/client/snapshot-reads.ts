/**
 * Reads through snapshots, clones and restores (issue #11), for the daemon, the CLI and backups:
 * a `VolumeView` (dataplane/logic/snapshot-versions.ts) is resolved into `readVersion` calls —
 * one per step: a restore below the cut, or a clone's parent, adds one step each.
 *
 *   readBlockAt(client, view, inode, blockNo)  -> the block's bytes at the view, or null (absent)
 *   listBlocksAt(client, view)                 -> every block address that holds data at the view
 *   viewOf(volume, snapshot?, volumes)         -> the view of a live volume or of one of its snapshots
 */
import { GalleonError, invariant } from '../../proto/errors.js';
import type { Snapshot, Volume } from '../../proto/metadata-types.js';
import { request } from 'undici';
import { retainedCuts, viewStep } from '../logic/snapshot-versions.js';
import { errorFromResponse } from '../wire.js';
import type { VolumeView } from '../logic/snapshot-versions.js';
import type { BlockClient, ReadResult } from './block-client.js';

/** A chain of clones deeper than this is refused (each level is one more read on a miss). */
export const maxViewDepth = 64;
/** Live reads that need no version lookup use this as "below every epoch". */
const liveBelow = 2 ** 48 - 1;

/**
 * The view of `volume` (live: `snapshot` undefined) or of its snapshot. `volumes` resolves a
 * clone's parent by id (the metadata service's getVolume).
 */
export async function viewOf(volume: Volume, snapshot: Snapshot | undefined, getVolume: (id: string) => Promise<Volume>, depth = 0): Promise<VolumeView> {
  if (depth > maxViewDepth) throw new GalleonError('FAILED_PRECONDITION', `clone chain of ${volume.name} is deeper than ${maxViewDepth}`, { hint: 'flatten the clone by copying it into a new volume' });
  if (snapshot !== undefined && snapshot.volumeId !== volume.id) throw new GalleonError('INVALID_ARGUMENT', `snapshot ${snapshot.name} is not of volume ${volume.name}`);
  const parent = volume.parent === undefined ? null : await viewOf(await getVolume(volume.parent.volumeId), undefined, getVolume, depth + 1).then((v) => ({ ...v, below: volume.parent?.cut ?? null }));
  return { volumeId: volume.id, below: snapshot?.cut ?? null, restores: (volume.restores ?? []).map((r) => ({ atEpoch: r.atEpoch, cut: r.cut })), parent };
}

/** Whether reads of the view need version lookups at all (else a plain readBlock is the answer). */
export function isPlainView(view: VolumeView): boolean {
  return view.below === null && view.restores.length === 0 && view.parent === null;
}

/**
 * The block's bytes as the view sees them, or null when it holds none there. `volumeId` is the
 * volume that wrote that version (a clone's parent, for a block the clone never wrote): with
 * `sealed`, the bytes are the stored body, sealed with that volume's key and address.
 */
export async function readBlockAt(client: BlockClient, view: VolumeView, inode: number, blockNo: number, opts: { sealed?: boolean } = {}): Promise<(ReadResult & { volumeId: string }) | null> {
  let v: VolumeView | null = view;
  for (let steps = 0; v !== null; steps++) {
    invariant(steps <= maxViewDepth * 4, 'a view resolves in a bounded number of steps');
    const step = viewStep(v);
    const r = await client.readVersion(step.volumeId, inode, blockNo, step.below ?? liveBelow, opts);
    if (r.kind === 'block' && r.block.epoch >= step.floor) return { ...r.block, volumeId: step.volumeId };
    if (r.kind === 'deleted' && r.epoch >= step.floor) return null;
    // Absent, or older than the restore that hides it: the restore's snapshot, then the parent.
    if (step.thenBelow !== null) { v = { ...v, below: step.thenBelow }; continue; }
    v = v.parent;
  }
  return null;
}

/**
 * Every address that may hold data at the view (clone parents included), sorted: a superset —
 * `readBlockAt` says which do. A reader that reads every block anyway (a backup) asks this once
 * and skips the nulls instead of reading each block twice through `listBlocksAt`.
 */
export async function listCandidatesAt(client: BlockClient, view: VolumeView): Promise<{ inode: number; blockNo: number }[]> {
  const candidates = new Map<string, { inode: number; blockNo: number }>();
  for (let v: VolumeView | null = view; v !== null; v = v.parent) {
    for (const a of await client.listVolumeBlocks(v.volumeId)) candidates.set(`${a.inode}/${a.blockNo}`, a);
  }
  return [...candidates.values()].sort((x, y) => x.inode - y.inode || x.blockNo - y.blockNo);
}

/** Every block address that holds data at the view (clone parents included), sorted. */
export async function listBlocksAt(client: BlockClient, view: VolumeView): Promise<{ inode: number; blockNo: number }[]> {
  const out: { inode: number; blockNo: number }[] = [];
  for (const a of await listCandidatesAt(client, view)) if (await readBlockAt(client, view, a.inode, a.blockNo) !== null) out.push(a);
  return out;
}

/**
 * A POST of JSON to a data node's block port, answered with JSON. The daemon passes its block
 * client's (`BlockClient.nodePost`: the node credential and transport of every block request);
 * without one, a plain request (tests on an open cluster).
 */
export type NodePost = (address: string, path: string, body: unknown, timeoutMs: number) => Promise<unknown>;

const plainPost: NodePost = async (address, path, body, timeoutMs) => {
  const res = await request(`http://${address}${path}`, {
    method: 'POST', headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  if (res.statusCode !== 200) throw await errorFromResponse(res);
  return res.body.json();
};

/** What pruning needs of the metadata service. */
export interface PruneSource {
  getVolume(ref: string): Promise<Volume>;
  listSnapshots(volume: string): Promise<Snapshot[]>;
  getPlacement(volumeId: string): Promise<{ epoch: number; replicas: string[]; departed?: Record<string, number> }[]>;
  listDataNodes(): Promise<{ id: string; address: string }[]>;
}

export interface PruneReport { nodeId: string; examined: number; dropped: number; bytes: number }

/**
 * A prune round: the volume, the prune request count it read before its cut list (`gen`: every
 * request up to it is covered once the round finished on every node; 0 when none was ever made),
 * and each node's report.
 */
export interface PruneRound { volumeId: string; gen: number; reports: PruneReport[] }

/**
 * Asks every data node holding a PG of the volume to drop the versions no retained cut needs
 * (or, `dryRun`, to count them; with `withoutSnapshot`, as if that snapshot were deleted). The
 * horizon (the volume's newest PG epoch) is read before the cut list, so a snapshot taken
 * meanwhile is above the horizon and keeps what it needs.
 */
export async function pruneVolume(meta: PruneSource, volumeRef: string, dryRun: boolean, timeoutMs: number, withoutSnapshot?: string, post: NodePost = plainPost): Promise<PruneReport[]> {
  return (await pruneRound(meta, volumeRef, { dryRun, timeoutMs, withoutSnapshot, post, withDeparted: false })).reports;
}

export interface PruneRoundOptions {
  dryRun: boolean;
  timeoutMs: number;
  /** What deleting that snapshot would free (a dry run before the delete). */
  withoutSnapshot?: string | undefined;
  post?: NodePost | undefined;
  /** Post to the departed copies too (`pruneHolders`): a round that marks the prune request done must. */
  withDeparted: boolean;
}

/**
 * The nodes a prune round posts to: every replica of a PG of the volume and, `withDeparted`,
 * every node that left a PG with its copy still on disk (`departed`, until it reports the copy
 * gone). A round that marks the prune request done reaches those too, so "done" means no node
 * still holds a version no cut needs: a departed copy is dropped, versions and all, once its node
 * is back (handed back, or dropped before a resync from empty when added back), but until then
 * it holds them, and the request stays pending. An estimate, or a round nothing waits on, goes
 * to the replicas only (a departed node that is down does not stop it).
 */
export function pruneHolders(pgs: readonly { replicas: string[]; departed?: Record<string, number> }[], withDeparted: boolean): string[] {
  return [...new Set(pgs.flatMap((p) => [...p.replicas, ...(withDeparted ? Object.keys(p.departed ?? {}) : [])]))].sort();
}

/** `pruneVolume` with the request count the round covers (cli/daemon/prune-runner.ts finishes it). */
export async function pruneRound(meta: PruneSource, volumeRef: string, o: PruneRoundOptions): Promise<PruneRound> {
  const { dryRun, timeoutMs, withoutSnapshot } = o;
  const post = o.post ?? plainPost;
  // The request count is read before the cut list too: a delete committed after this read is
  // not covered by this round, and a finish with this count leaves it pending.
  const first = await meta.getVolume(volumeRef);
  const gen = first.prune?.requested ?? 0;
  // The horizon is read BEFORE the cut list: a snapshot committed in between has its cut above
  // the horizon, so the versions it needs are kept even though the list does not name it.
  const pgs = await meta.getPlacement(first.id);
  const [vol, all, nodes] = await Promise.all([meta.getVolume(first.id), meta.listSnapshots(first.id), meta.listDataNodes()]);
  // `withoutSnapshot`: what deleting that snapshot would free (a dry run before the delete).
  const snaps = all.filter((s) => s.id !== withoutSnapshot);
  const body = { volumeId: vol.id, cuts: retainedCuts(snaps.map((s) => s.cut), vol.restores ?? []), horizon: Math.max(...pgs.map((p) => p.epoch)), dryRun };
  const holders = pruneHolders(pgs, o.withDeparted);
  const reports = await Promise.all(holders.map(async (nodeId): Promise<PruneReport> => {
    const address = nodes.find((n) => n.id === nodeId)?.address;
    if (address === undefined) throw new GalleonError('NODE_NOT_FOUND', `data node ${nodeId} of volume ${vol.name} is not registered`);
    return { nodeId, ...(await post(address, '/v1/prune', body, timeoutMs)) as Omit<PruneReport, 'nodeId'> };
  }));
  return { volumeId: vol.id, gen, reports };
}

/** Bounds of the fence round after a snapshot or restore command. */
export const fenceTimeoutMs = 10_000;

/**
 * Every data node holding a PG of the volume records the epochs the metadata service shows now
 * (POST /v1/fence): from then on a write carrying an older epoch is refused, so nothing that
 * starts after the snapshot (or restore) returns can land below its cut.
 */
export async function fenceVolume(meta: Pick<PruneSource, 'getPlacement' | 'listDataNodes'>, volumeId: string, post: NodePost = plainPost): Promise<number> {
  const [pgs, nodes] = await Promise.all([meta.getPlacement(volumeId), meta.listDataNodes()]);
  const holders = [...new Set(pgs.flatMap((p) => p.replicas))].sort();
  const counts = await Promise.all(holders.map(async (nodeId) => {
    const address = nodes.find((n) => n.id === nodeId)?.address;
    if (address === undefined) return 0;
    return ((await post(address, `/v1/fence/${encodeURIComponent(volumeId)}`, undefined, fenceTimeoutMs)) as { fenced: number }).fenced;
  }));
  return counts.reduce((a, b) => a + b, 0);
}

/** What taking a snapshot or restoring needs of the metadata service. */
export type SnapshotMeta = PruneSource & {
  createSnapshot(volume: string, name?: string): Promise<Snapshot>;
  restoreVolume(volume: string, snapshot: string): Promise<Volume>;
};

/** A snapshot: one metadata command (the cut), then the fence round on the volume's data nodes. */
export async function takeSnapshot(meta: SnapshotMeta, volume: string, name?: string, post: NodePost = plainPost): Promise<Snapshot> {
  const snap = await meta.createSnapshot(volume, name);
  await fenceVolume(meta, snap.volumeId, post);
  return snap;
}

/** An in-place restore: one metadata command, then the fence round. */
export async function restoreInPlace(meta: SnapshotMeta, volume: string, snapshot: string, post: NodePost = plainPost): Promise<Volume> {
  const vol = await meta.restoreVolume(volume, snapshot);
  await fenceVolume(meta, vol.id, post);
  return vol;
}
