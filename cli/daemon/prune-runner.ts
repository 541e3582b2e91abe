/**
 * Freeing of block versions no retained cut needs, driven by the volume's prune-pending record
 * (issue #11; `Volume.prune`, set in the same metadata command as a snapshot delete or an
 * in-place restore: metadata/state/logic/snapshots.ts). A round (dataplane/client/snapshot-reads.ts
 * `pruneRound`) reads the request count, then the cut list, posts the prune to every data node
 * of the volume (replicas, and nodes that left a PG with their copy: `pruneHolders`), and when all answered commits `finishVolumePrune(volume, count)`; a round that
 * fails on a node is retried with backoff (`maxPruneAttempts`), and the record stays until one
 * finishes. A prune with the current cut list is safe to repeat (a node drops a version only if
 * it still is what it read: level-block-store.ts `stageUnversion`).
 *
 * Who resumes a prune whose daemon died: every daemon with the data role runs `resumeLoop`, at
 * start and on each metadata watch wake (or every `pruneRescanMs`), and takes the pending prunes
 * of the volumes whose first holder (node id order) among the up data nodes is its own node — one
 * daemon per volume, chosen from the metadata state alone, and a holder is the node that has
 * to be up for the round to finish anyway. A request younger than the resume grace is left to
 * the daemon that made it (its own round runs at once), except at this daemon's start: what was
 * pending then is nobody's if this daemon was the one that died. The grace is
 * `pruneResumeAfterDownAfters` times the cluster's data-node down-after (30 s at its 10 s default):
 * a dead requester is noticed on that time scale, so an operator who asks for faster failover
 * gets its orphaned prunes taken over sooner too. A scan that left a request for its age looks
 * again when the youngest such request comes of age (`nextScanInMs`), not a whole `pruneRescanMs`
 * later; until its own node shows up after a start it looks again every `pruneRetryBaseMs`
 * (registration does not wake the watch). The choices are pure (`prunesToResume`, `nextScanInMs`),
 * as is the backoff (`pruneRetryDelayMs`).
 *
 * Test hook (real code path, off unless set): `GALLEON_TEST_PRUNE_EXIT_AT=<data address>` makes
 * the daemon SIGKILL itself when one of its rounds is about to post a prune to that data node
 * (test/cli/prune-resume.integration.test.ts: a daemon dying with its prune half done).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { defaultDataNodeDownAfterMs } from '../../proto/limits.js';
import { ErrorCode, isGalleonError, invariant } from '../../proto/errors.js';
import { isPrunePending, type DataNode, type Volume } from '../../proto/metadata-types.js';
import { pruneHolders, pruneRound, type NodePost, type PruneReport, type PruneSource } from '../../dataplane/client/snapshot-reads.js';
import type { WatchClient } from '../../vfs/manager/mount-manager.js';

/** A prune round (all data nodes of the volume) may take this long. */
export const pruneTimeoutMs = 10 * 60_000;
/** Rounds tried per run before it gives up (the record stays; the next scan tries again). */
export const maxPruneAttempts = 5;
/** Backoff between attempts: doubles from the base, capped (1, 2, 4, 8 s: ~15 s in all). */
export const pruneRetryBaseMs = 1_000;
export const pruneRetryMaxMs = 8_000;
/** A request younger than this many data-node down-afters is left to the daemon that made it (its round started at once). */
export const pruneResumeAfterDownAfters = 3;
/** The resume grace of a cluster whose data nodes are marked down after `dataNodeDownAfterMs` (the header says why). */
export function pruneResumeAfterMsFor(dataNodeDownAfterMs: number): number {
  invariant(Number.isFinite(dataNodeDownAfterMs) && dataNodeDownAfterMs > 0, 'a down-after is a positive duration');
  return pruneResumeAfterDownAfters * dataNodeDownAfterMs;
}
/** The grace at the default down-after: 30 s. */
export const pruneResumeAfterMs = pruneResumeAfterMsFor(defaultDataNodeDownAfterMs);
/** One watch call of the resume loop; a scan runs at least this often. */
export const pruneRescanMs = 30_000;
/** Pending prunes one scan starts at most (the rest wait for the next scan). */
export const maxPrunesPerScan = 16;
/** Env var of the test hook (see the header). */
export const pruneExitAtEnv = 'GALLEON_TEST_PRUNE_EXIT_AT';

/** Errors a later attempt may not see: a node or the metadata service briefly away. */
const retryableCodes: ReadonlySet<string> = new Set([
  ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.NOT_LEADER, ErrorCode.NO_LEADER, ErrorCode.PROPOSAL_DROPPED, ErrorCode.NODE_NOT_FOUND, ErrorCode.IO_ERROR,
]);

/** The wait before attempt `attempt + 1`, or null: give up (pure). */
export function pruneRetryDelayMs(attempt: number, err: unknown): number | null {
  invariant(attempt >= 1, 'attempts count from 1');
  if (attempt >= maxPruneAttempts) return null;
  // Not a GalleonError: a socket error on the way to a data node.
  if (err instanceof Error && !isGalleonError(err)) return Math.min(pruneRetryMaxMs, pruneRetryBaseMs * 2 ** (attempt - 1));
  if (!isGalleonError(err) || !retryableCodes.has(err.code)) return null;
  return Math.min(pruneRetryMaxMs, pruneRetryBaseMs * 2 ** (attempt - 1));
}

export interface ResumeInput {
  nodeId: string;
  nowMs: number;
  /** The first scan since this daemon started: no grace for the requests' own daemons. */
  atStart: boolean;
  volumes: readonly Volume[];
  /** Data nodes holding a PG of each pending volume (any order). */
  holders: ReadonlyMap<string, readonly string[]>;
  nodes: readonly Pick<DataNode, 'id' | 'state'>[];
  /** Volumes with a round running in this daemon. */
  busy: ReadonlySet<string>;
  /** A younger request is left to its own daemon (`pruneResumeAfterMsFor`). */
  resumeAfterMs: number;
}

/** The pending prunes this node's daemon takes, by volume id (pure: the header says why these). */
export function prunesToResume(i: ResumeInput): string[] {
  const up = new Set(i.nodes.filter((n) => n.state === 'up').map((n) => n.id));
  const out: string[] = [];
  for (const v of i.volumes) {
    if (!isPrunePending(v) || v.state === 'deleting' || v.treeState !== undefined || i.busy.has(v.id)) continue;
    if (!i.atStart && i.nowMs - (v.prune?.requestedAtMs ?? 0) < i.resumeAfterMs) continue;
    const first = [...(i.holders.get(v.id) ?? [])].sort().find((n) => up.has(n));
    if (first === i.nodeId) out.push(v.id);
    if (out.length >= maxPrunesPerScan) break;
  }
  return out;
}

/**
 * How long the resume loop may wait before its next scan (pure): until the youngest pending
 * request comes of age, at most `pruneRescanMs`; `pruneRetryBaseMs` while a prune is pending and
 * this daemon's own node has not shown up since its start (its registration wakes no watch; with
 * nothing pending there is nothing to take, and a node that never registers stays quiet);
 * `pruneRetryMaxMs` while a round runs here: one that spends its attempts (a holder down) is
 * tried again that soon after, as between attempts, not up to `pruneRescanMs` later.
 */
export function nextScanInMs(i: Pick<ResumeInput, 'nowMs' | 'volumes' | 'resumeAfterMs'> & { awaitingSelf: boolean; running: boolean }): number {
  let waitMs = i.awaitingSelf && i.volumes.some(isPrunePending) ? pruneRetryBaseMs : pruneRescanMs;
  if (i.running) waitMs = Math.min(waitMs, pruneRetryMaxMs);
  for (const v of i.volumes) {
    if (!isPrunePending(v)) continue;
    const dueInMs = (v.prune?.requestedAtMs ?? 0) + i.resumeAfterMs - i.nowMs;
    if (dueInMs > 0) waitMs = Math.min(waitMs, dueInMs);
  }
  invariant(waitMs > 0 && waitMs <= pruneRescanMs, 'a scan wait is positive and at most the rescan period');
  return waitMs;
}

/** What the runner needs of the metadata service (the node's own credential: finishing is for nodes). */
export type PruneApi = Omit<PruneSource, 'listDataNodes'> & {
  listDataNodes(): Promise<Pick<DataNode, 'id' | 'address' | 'state'>[]>;
  listVolumes(): Promise<Volume[]>;
  finishVolumePrune(volumeId: string, gen: number): Promise<Volume>;
};

export interface PruneRunnerOptions {
  api: () => PruneApi;
  /** POSTs to data nodes with the node's block client. */
  post: () => NodePost;
  log: Logger;
  /** The test hook's data address (see the header); absent: off. */
  exitAt?: string | undefined;
  /** The resume grace: `pruneResumeAfterMsFor` of the daemon's down-after. */
  resumeAfterMs: number;
}

export class PruneRunner {
  /** Rounds running per volume in this daemon (a delete's own and the resume loop's). */
  private readonly running = new Map<string, number>();
  private readonly stopper = new AbortController();

  constructor(private readonly o: PruneRunnerOptions) {}

  /**
   * Runs rounds until one finishes on every node (then marks the request it read done) or the
   * attempts are spent. `post` replaces the node post (a delete's progress-counting one).
   */
  async run(volumeId: string, post?: NodePost): Promise<PruneReport[]> {
    this.running.set(volumeId, (this.running.get(volumeId) ?? 0) + 1);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const round = await pruneRound(this.o.api(), volumeId, { dryRun: false, timeoutMs: pruneTimeoutMs, post: this.hooked(post ?? this.o.post()), withDeparted: true });
          if (round.gen > 0) await this.o.api().finishVolumePrune(round.volumeId, round.gen);
          return round.reports;
        } catch (err) {
          const waitMs = pruneRetryDelayMs(attempt, err);
          if (waitMs === null || this.stopper.signal.aborted) throw err;
          this.o.log.info({ err, volumeId, attempt, waitMs }, 'a prune round failed; trying again');
          await sleep(waitMs, undefined, { signal: this.stopper.signal });
        }
      }
    } finally {
      const n = (this.running.get(volumeId) ?? 1) - 1;
      if (n === 0) this.running.delete(volumeId);
      else this.running.set(volumeId, n);
    }
  }

  /**
   * One look at the pending prunes; starts the ones this node takes (not awaited). `selfUp`:
   * whether the metadata service showed this node up (a restarted node is down until it registers);
   * `waitMs`: how long the loop may wait for a watch wake before it looks again (`nextScanInMs`).
   */
  async scan(nodeId: string, atStart: boolean): Promise<{ picked: string[]; selfUp: boolean; waitMs: number }> {
    const api = this.o.api();
    const nodes = await api.listDataNodes();
    const selfUp = nodes.some((n) => n.id === nodeId && n.state === 'up');
    const pending = (await api.listVolumes()).filter(isPrunePending);
    const nowMs = Date.now();
    const waitMs = nextScanInMs({ nowMs, volumes: pending, resumeAfterMs: this.o.resumeAfterMs, awaitingSelf: atStart && !selfUp, running: this.running.size > 0 });
    if (pending.length === 0) return { picked: [], selfUp, waitMs };
    const holders = new Map<string, string[]>();
    for (const v of pending) holders.set(v.id, pruneHolders(await api.getPlacement(v.id), true));
    const picked = prunesToResume({ nodeId, nowMs, atStart, volumes: pending, holders, nodes, busy: new Set(this.running.keys()), resumeAfterMs: this.o.resumeAfterMs });
    for (const id of picked) {
      this.o.log.info({ volumeId: id, prune: pending.find((v) => v.id === id)?.prune }, 'resuming a pending prune of block versions');
      this.run(id).then(
        (reports) => this.o.log.info({ volumeId: id, dropped: reports.reduce((n, r) => n + r.dropped, 0) }, 'pending prune finished'),
        (err: unknown) => this.o.log.warn({ err, volumeId: id }, 'pending prune failed; it stays pending for the next scan'),
      );
    }
    return { picked, selfUp, waitMs };
  }

  /** Scans at start and on every watch wake (or when `scan` says, at most `pruneRescanMs`) until stopped. */
  async resumeLoop(nodeId: string, watch: () => WatchClient | null): Promise<void> {
    let since = 0;
    let atStart = true;
    while (!this.stopper.signal.aborted) {
      let waitMs = pruneRescanMs;
      try {
        // "At start" lasts until this node shows up: before that another holder is chosen.
        const s = await this.scan(nodeId, atStart);
        if (s.selfUp) atStart = false;
        waitMs = s.waitMs;
      } catch (err) {
        this.o.log.debug({ err }, 'looking for pending prunes failed; trying again');
      }
      const w = watch();
      try {
        if (w === null) await sleep(waitMs, undefined, { signal: this.stopper.signal });
        else since = (await w.waitForChange(since, waitMs)).index;
      } catch {
        if (!this.stopper.signal.aborted) await sleep(pruneRetryBaseMs, undefined, { signal: this.stopper.signal }).catch(() => undefined);
      }
    }
  }

  stop(): void {
    this.stopper.abort();
  }

  private hooked(post: NodePost): NodePost {
    const at = this.o.exitAt;
    if (at === undefined || at === '') return post;
    return (address, path, body, timeoutMs) => {
      if (address === at) {
        this.o.log.warn({ address }, `${pruneExitAtEnv}: killing this daemon before its prune reaches that node (test hook)`);
        process.kill(process.pid, 'SIGKILL');
      }
      return post(address, path, body, timeoutMs);
    };
  }
}
