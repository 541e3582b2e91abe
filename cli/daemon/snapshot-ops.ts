/**
 * The admin endpoint's snapshot operations (issue #11): `galleon snapshot create|list|get|delete`,
 * `volume clone`, `volume restore`. A snapshot is taken after every read-write mount of the volume,
 * on any node, has flushed (a flush request the mount managers answer: metadata/state/logic/
 * ns-flush.ts; `flush: false` skips it), between the optional `--hook-pre` / `--hook-post` commands;
 * the snapshot itself is one metadata command plus the fence round (dataplane/client/snapshot-reads.ts).
 * Deleting a snapshot frees the versions only it needed in the background on the data nodes
 * (paced by their pruner); `dryRun` shows the bytes that would be freed and changes nothing.
 * The delete command also records a prune request on the volume; the round here runs through the
 * daemon's PruneRunner (prune-runner.ts: retried, and marked done when every node answered), and
 * if this daemon dies first, a data-role daemon resumes it from that record.
 * The freeing after a delete or an in-place restore reports its progress to `host.ops`
 * (operations.ts: versions or blocks done/total) for `--wait`, `operation get` and `volume get`.
 */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, invariant } from '../../proto/errors.js';
import type { FsFlushState, MetadataApi, Snapshot, Volume } from '../../proto/metadata-types.js';
import type { WatchClient } from '../../vfs/manager/mount-manager.js';
import type { NodePost, PruneReport } from '../../dataplane/client/snapshot-reads.js';
import { pruneTimeoutMs, type PruneRunner } from './prune-runner.js';
import type { ReaperClient } from '../../vfs/fs/block-reaper.js';
import type { OperationHandle, OperationLog, OperationView } from './operations.js';

/** A hook that runs longer than this is killed (and counts as failed). */
export const defaultHookTimeoutMs = 60_000;
export const maxHookTimeoutMs = 3_600_000;
/** Output of a hook kept for the error message. */
const maxHookOutputChars = 2000;
/**
 * How long the mounts of a volume get to flush before its snapshot: a dead node's mount lease
 * lapses within 15 s (vfs/fs/mount-volume.ts `mountLeaseTtlMs`) and it is not waited for after that.
 */
export const defaultFlushWaitMs = 20_000;
/** One watch call while waiting for the mounts' answers (the member's bound is 60 s). */
const flushWatchMs = 30_000;

export interface SnapshotCreateRequest {
  volume: string;
  name?: string | undefined;
  hookPre?: string | undefined;
  hookPost?: string | undefined;
  hookTimeoutMs?: number | undefined;
  onError?: 'fail' | 'continue' | undefined;
  /** false: no flush of the volume's mounts (the snapshot holds what they had committed). */
  flush?: boolean | undefined;
  flushTimeoutMs?: number | undefined;
}

/** What the flush before a snapshot found (null: not asked for). */
export interface FlushReport {
  seq: number;
  /** Mount sessions asked (live read-write mount leases of the volume). */
  asked: number;
  flushed: number;
  /** Answered that their flush failed. */
  failed: { session: string; error: string }[];
  /** Lease ended before answering (node dead or unmounted): what they buffered is not in the snapshot. */
  lapsed: string[];
  /** Still alive but silent when the wait ended (only with onError continue). */
  unanswered: string[];
}

/** The metadata calls of the flush, with the node's own credential (the namespace's calls are for nodes). */
export type FlushApi = Pick<MetadataApi, 'fsFlushRequest' | 'fsFlushState'> & WatchClient;

export interface HookResult { command: string; ok: boolean; exitCode: number | null; output: string }

/**
 * Runs a shell command with a deadline; never rejects. The shell runs in its own process group,
 * and the deadline kills the whole group: killing only the shell left its children (`sleep 60`,
 * a stuck `fsfreeze`) running and holding the output pipes, so the hook ended when they did,
 * not at the deadline. Output a killed hook's stray descendant still holds is not waited for.
 */
export function runHook(command: string, timeoutMs: number, env: Record<string, string>): Promise<HookResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, detached: true });
    let output = '';
    let killed = false;
    const keep = (d: Buffer): void => { if (output.length < maxHookOutputChars) output += d.toString().slice(0, maxHookOutputChars - output.length); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs} ms)`;
      killed = true;
      killGroup(child.pid, () => child.kill('SIGKILL'));
    }, timeoutMs);
    child.on('exit', () => {
      if (!killed) return;
      child.stdout.destroy();
      child.stderr.destroy();
    });
    child.on('error', (err) => { clearTimeout(timer); resolve({ command, ok: false, exitCode: null, output: err.message }); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ command, ok: code === 0, exitCode: code, output: output.trim() }); });
  });
}

/** SIGKILLs the process group `pid` leads; `fallback` when there is none (spawn failed, or it is gone). */
function killGroup(pid: number | undefined, fallback: () => void): void {
  if (pid === undefined) return fallback();
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    fallback();
  }
}

function hookFailed(which: string, r: HookResult): GalleonError {
  return new GalleonError(ErrorCode.FAILED_PRECONDITION, `${which} hook failed (exit ${r.exitCode ?? 'none'}): ${r.output.split('\n')[0] ?? ''}`.trim(), {
    hint: 'fix the hook, or pass --on-error continue to snapshot anyway', details: { hook: r },
  });
}

export interface SnapshotHost {
  api: MetadataApi;
  /** POSTs to data nodes through the daemon's block client (its credential and transport). */
  post?: NodePost;
  /** Null: nothing can answer a flush request (no metadata client); the snapshot is taken unflushed. */
  flush: () => FlushApi | null;
  /** The daemon's block client, to free what a restore dropped (absent: left to the mounts' reapers). */
  blocks?: () => ReaperClient;
  /** The node's own metadata API (the free queue is for cluster nodes, not users); defaults to `api`. */
  nodeApi?: () => MetadataApi;
  /** Where the background freeing reports its progress (absent: not reported). */
  ops?: OperationLog;
  /** Runs prune rounds and marks the volume's request done (absent: one round, the record left to a runner). */
  prunes?: PruneRunner;
  log: Logger;
}

/** The node's metadata client as the flush uses it, when it can watch (a MetadataClient can). */
export function flushApiOf(api: MetadataApi): FlushApi | null {
  const w = api as MetadataApi & Partial<WatchClient>;
  return typeof w.waitForChange === 'function' ? w as FlushApi : null;
}

/** A finished wait: done when nobody alive is left to answer; its report either way. */
export function flushReport(asked: number, s: FsFlushState): { done: boolean; report: FlushReport } {
  const report = { seq: s.seq, asked, flushed: asked - s.waiting.length - s.failed.length - s.lapsed.length, failed: s.failed, lapsed: s.lapsed, unanswered: s.waiting };
  invariant(report.flushed >= 0, 'flush answers never outnumber the sessions asked');
  return { done: s.waiting.length === 0, report };
}

/** Asks every mount of the volume to flush and waits (≤ `timeoutMs`) for their answers. */
export async function flushMounts(api: FlushApi, volumeId: string, timeoutMs: number, nowMs: () => number = Date.now): Promise<{ done: boolean; report: FlushReport }> {
  const deadline = nowMs() + timeoutMs;
  // The watch index before the request: every answer applied after it wakes the wait below.
  let since = (await api.waitForChange(0, 0)).index;
  const asked = await api.fsFlushRequest(volumeId);
  let verdict = flushReport(asked.waiting.length, asked);
  while (!verdict.done && nowMs() < deadline) {
    since = (await api.waitForChange(since, Math.min(flushWatchMs, Math.max(0, deadline - nowMs())))).index;
    const now = await api.fsFlushState(volumeId);
    if (now.seq !== asked.seq) break; // a newer snapshot asked again; its answers cover ours
    verdict = flushReport(asked.waiting.length, now);
  }
  return verdict;
}

function flushFailed(volume: string, r: FlushReport, timeoutMs: number): GalleonError {
  const why = r.failed.length > 0 ? `the flush failed on ${r.failed.length} mount(s): ${r.failed[0]?.error ?? ''}`
    : `${r.unanswered.length} mount session(s) did not answer within ${timeoutMs} ms`;
  return new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${volume} not snapshotted: ${why}`, {
    hint: 'see the daemon logs of the nodes that mount it; or pass --on-error continue (their unflushed writes are then not in the snapshot)', details: { flush: r },
  });
}

async function flushBeforeCut(host: SnapshotHost, vol: Volume, req: SnapshotCreateRequest): Promise<FlushReport | null> {
  const api = req.flush === false ? null : host.flush();
  if (api === null) return null;
  const timeoutMs = req.flushTimeoutMs ?? defaultFlushWaitMs;
  const { done, report } = await flushMounts(api, vol.id, timeoutMs);
  if (report.lapsed.length > 0) host.log.warn({ volume: vol.name, lapsed: report.lapsed }, 'mount sessions ended before they flushed: their unflushed writes are not in the snapshot');
  if (done && report.failed.length === 0) return report;
  if ((req.onError ?? 'fail') === 'fail') throw flushFailed(vol.name, report, timeoutMs);
  host.log.warn({ volume: vol.name, flush: report }, 'snapshot taken although not every mount flushed (on-error continue)');
  return report;
}

export async function createSnapshot(host: SnapshotHost, req: SnapshotCreateRequest): Promise<Snapshot & { hooks: HookResult[]; flush: FlushReport | null }> {
  const { takeSnapshot } = await import('../../dataplane/client/snapshot-reads.js');
  const vol = await host.api.getVolume(req.volume);
  const onError = req.onError ?? 'fail';
  const timeoutMs = req.hookTimeoutMs ?? defaultHookTimeoutMs;
  const env = { GALLEON_VOLUME: vol.name, GALLEON_VOLUME_ID: vol.id };
  const hooks: HookResult[] = [];
  if (req.hookPre !== undefined) {
    const r = await runHook(req.hookPre, timeoutMs, env);
    hooks.push(r);
    if (!r.ok && onError === 'fail') throw hookFailed('pre-snapshot', r);
  }
  try {
    // Mounts on any node buffer writes (write-back files, open files' dirty blocks): flushed first.
    const flush = await flushBeforeCut(host, vol, req);
    const snap = await takeSnapshot(host.api, vol.id, req.name, host.post);
    return { ...snap, hooks, flush };
  } finally {
    if (req.hookPost !== undefined) {
      const r = await runHook(req.hookPost, timeoutMs, env);
      hooks.push(r);
      if (!r.ok) host.log.warn({ hook: r, volume: vol.name }, 'post-snapshot hook failed');
    }
  }
}

export interface SnapshotDeleteResult {
  snapshot: Snapshot;
  dryRun: boolean;
  /** Body bytes of the versions only this snapshot needed, summed over the data nodes (every replica). */
  bytesToFree: number;
  versionsToFree: number;
  /** Set when the versions were freed before answering (`wait`); else they are freed in the background. */
  freed: { versions: number; bytes: number } | null;
  /** The freeing's progress (versions done/total), `galleon operation get ID`; null for a dry run. */
  operation: OperationView | null;
}

/**
 * A NodePost for one pruneVolume call (its only posts are the data nodes' prunes): adds each
 * node's report to the operation as that node answers, so the figures move node by node.
 */
function countingPrunes(post: NodePost | undefined, op: OperationHandle | undefined): NodePost | undefined {
  if (post === undefined || op === undefined) return post;
  return async (address, path, body, timeoutMs) => {
    const r = await post(address, path, body, timeoutMs) as Partial<{ dropped: number; bytes: number }>;
    invariant(typeof r.dropped === 'number' && typeof r.bytes === 'number', `a data node's prune answers what it dropped (${path})`);
    op.add(r.dropped, r.bytes);
    return r;
  };
}

/** The prune after a delete or restore: through the daemon's runner when it has one. */
async function freeVersions(host: SnapshotHost, volumeId: string, post: NodePost | undefined): Promise<PruneReport[]> {
  if (host.prunes !== undefined) return host.prunes.run(volumeId, post);
  const { pruneVolume } = await import('../../dataplane/client/snapshot-reads.js');
  return pruneVolume(host.api, volumeId, false, pruneTimeoutMs, undefined, post);
}

function sumPrunes(reports: { dropped: number; bytes: number }[]): { versions: number; bytes: number } {
  return { versions: reports.reduce((n, r) => n + r.dropped, 0), bytes: reports.reduce((n, r) => n + r.bytes, 0) };
}

export async function deleteSnapshot(host: SnapshotHost, ref: string, opts: { dryRun?: boolean | undefined; wait?: boolean | undefined }): Promise<SnapshotDeleteResult> {
  const { pruneVolume } = await import('../../dataplane/client/snapshot-reads.js');
  const snap = await host.api.getSnapshot(ref);
  if ((snap.clones ?? []).length > 0) {
    throw new GalleonError(ErrorCode.SNAPSHOT_IN_USE, `snapshot ${snap.name} has ${snap.clones?.length} clone(s) reading through it: ${snap.clones?.slice(0, 5).join(', ')}`,
      { hint: 'delete those clones first (galleon volume delete NAME)' });
  }
  const estimate = sumPrunes(await pruneVolume(host.api, snap.volumeId, true, pruneTimeoutMs, snap.id, host.post));
  const [bytesToFree, versionsToFree] = [estimate.bytes, estimate.versions];
  if (opts.dryRun === true) return { snapshot: snap, dryRun: true, bytesToFree, versionsToFree, freed: null, operation: null };
  const deleted = await host.api.deleteSnapshot(snap.id);
  // From here the delete is done for the user; the operation only reports the freeing (operations.ts).
  const op = host.ops?.start('snapshot-delete', deleted.name, deleted.volumeId, 'versions', versionsToFree);
  op?.phase('freeing');
  const prune = freeVersions(host, deleted.volumeId, countingPrunes(host.post, op)).then((done) => {
    const freed = sumPrunes(done);
    op?.finish(freed);
    return freed;
  }, (err: unknown) => { op?.fail(err); throw err; });
  const operation = op?.view ?? null;
  if (opts.wait === true) return { snapshot: deleted, dryRun: false, bytesToFree, versionsToFree, freed: await prune, operation };
  prune.then(
    (freed) => host.log.info({ snapshot: deleted.name, ...freed }, 'snapshot versions freed'),
    (err: unknown) => host.log.warn({ err, snapshot: deleted.name }, 'freeing a deleted snapshot\'s versions failed; the volume\'s prune stays pending for the data nodes\' daemons'),
  );
  return { snapshot: deleted, dryRun: false, bytesToFree, versionsToFree, freed: null, operation };
}

/**
 * A snapshot deleted without the dry-run estimate (a backup's own snapshot when the run ends):
 * the metadata command (with its prune request), then its versions freed in the background; a
 * prune that fails or dies with this daemon stays pending and is resumed (prune-runner.ts).
 */
export async function dropSnapshot(host: SnapshotHost, ref: string): Promise<Snapshot> {
  const deleted = await host.api.deleteSnapshot(ref);
  freeVersions(host, deleted.volumeId, host.post).then(
    (done) => host.log.debug({ snapshot: deleted.name, reports: done }, 'snapshot versions freed'),
    (err: unknown) => host.log.warn({ err, snapshot: deleted.name }, 'freeing a deleted snapshot\'s versions failed; the volume\'s prune stays pending for the data nodes\' daemons'),
  );
  return deleted;
}

/** How long the daemon that ran a restore waits for its paced tree steps before freeing (they stay queued after). */
export const restoreTreeWaitMs = 10 * 60_000;
/** Between two looks at a restoring volume's tree state when the node has no watch (a bare API client). */
export const restoreTreePollMs = 250;
/** One watch call while waiting for a restore's tree steps (woken earlier by any change). */
export const restoreTreeWatchMs = 1_000;

export interface RestoreResult extends Volume {
  /** With `wait`: blocks of the files the restore dropped, freed, and the versions then pruned. */
  freed?: { blocks: number; versions: number; bytes: number };
  /** The freeing's progress (blocks done/total), `galleon operation get ID` or `volume get`. */
  operation?: OperationView;
}

/**
 * An in-place restore; then, in the background (or before answering with `wait`), the blocks of
 * the files it dropped are freed — the namespace queued them with their ends as it dropped them
 * (ns-tree-work.ts), and the same reaper that frees unlinked files' blocks deletes them, paced —
 * and the versions those deletes left that no cut needs are pruned. A daemon that dies meanwhile
 * leaves them queued: a read-write mount's reaper frees them.
 */
export async function restoreVolume(host: SnapshotHost, ref: string, snapshot: string, opts: { wait?: boolean | undefined } = {}): Promise<RestoreResult> {
  const { restoreInPlace } = await import('../../dataplane/client/snapshot-reads.js');
  const vol = await restoreInPlace(host.api, ref, snapshot, host.post);
  // The volume reads as the snapshot from here; the operation only reports the freeing (operations.ts).
  const op = host.ops?.start('volume-restore', vol.name, vol.id, 'blocks', 0);
  const freeing = freeDropped(host, vol, op).then((freed) => { op?.finish(freed); return freed; }, (err: unknown) => { op?.fail(err); throw err; });
  const operation = op === undefined ? {} : { operation: op.view };
  if (opts.wait === true) return { ...vol, freed: await freeing, ...operation };
  freeing.then(
    (freed) => host.log.info({ volume: vol.name, ...freed }, 'blocks of files the restore dropped freed'),
    (err: unknown) => host.log.warn({ err, volume: vol.name }, 'freeing the blocks of files a restore dropped failed; they stay queued for the volume\'s mounts'),
  );
  return { ...vol, ...operation };
}

async function freeDropped(host: SnapshotHost, vol: Volume, op: OperationHandle | undefined): Promise<{ blocks: number; versions: number; bytes: number }> {
  if (host.blocks === undefined) return { blocks: 0, versions: 0, bytes: 0 };
  const { BlockReaper } = await import('../../vfs/fs/block-reaper.js');
  const deadline = Date.now() + restoreTreeWaitMs;
  let now = vol;
  op?.phase('tree');
  // Woken by the metadata watch when the node has one (the last tree step clears treeState on the
  // volume record); each wait is bounded, so a missed wake costs one period, not the deadline.
  const watch = host.flush();
  let since = watch === null ? 0 : (await watch.waitForChange(0, 0)).index;
  while (now.treeState !== undefined) {
    if (Date.now() > deadline) throw new GalleonError(ErrorCode.TIMEOUT, `volume ${vol.name}'s file tree is still being restored`, { hint: 'its dropped files\' blocks stay queued; a read-write mount frees them' });
    if (watch === null) await new Promise((r) => setTimeout(r, restoreTreePollMs));
    else since = (await watch.waitForChange(since, restoreTreeWatchMs)).index;
    now = await host.api.getVolume(vol.id);
  }
  const reaper = new BlockReaper({
    api: host.nodeApi?.() ?? host.api, client: host.blocks(), log: host.log,
    volume: { id: now.id, sizeBytes: now.sizeBytes, blockSizeBytes: now.blockSizeBytes, writeConcern: now.writeConcern },
    knownSize: () => undefined, isOpenHere: () => false,
  });
  op?.phase('freeing');
  const blocks = await reaper.drainKnownEnds();
  op?.add(blocks, 0);
  op?.phase('pruning', blocks);
  // Always a round: the restore itself hid what the volume held above the cut (its prune request).
  const pruned = await freeVersions(host, now.id, host.post);
  const { versions, bytes } = sumPrunes(pruned);
  op?.add(0, bytes);
  return { blocks, versions, bytes };
}
