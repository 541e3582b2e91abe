/**
 * The client's side of the rollback check of encrypted reads (issue #12; README "Rollback check"):
 * ask the PG's other in-sync replicas for their block heads (server/head-route.ts; batched per
 * replica and turn by `HeadBatcher`), prove a claimed other write by fetching and opening that
 * replica's body, and report what was found to a
 * `StaleReadSink` (pino + a Prometheus counter + the audit log in the daemon). The verdict itself
 * is the pure `judgeServedBody` (../logic/freshness.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import type { AuditSink } from '../../proto/auth.js';
import type { Logger } from '../log.js';
import { compareGenerations, warnDue, type BodyGeneration, type NotFoundClaim, type ReplicaHead } from '../logic/freshness.js';
import type { BlockAddress } from '../store/types.js';
import { blockPath, Header, maxHeadsPerRequest, versionPathOf, type BlockHeadAnswer } from '../wire.js';
import { generationOf, generationOfHead, sealHeaderBytes } from './block-cipher.js';
import type { BlockSealer } from './keyring.js';

/** Rounds of (body read + heads) before a disagreement that persists is refused: a write in flight settles well within them. */
export const maxFreshnessRounds = 5;
/** The wait before the second round; it doubles each round (25 + 50 + 100 + 200 ms at most). */
export const freshnessRetryBaseMs = 25;
/** A replica's head answer may take this long; a slower one counts as no answer (the read does not wait on a down node). */
export const defaultHeadTimeoutMs = 2_000;

export type StaleReadReason = 'stale-body' | 'deleted-after' | 'hidden-block' | 'unproven-claim';

/** What the check found: `node` is the one at fault (the primary that served a stale body, or a replica whose claim failed). */
export interface StaleReadEvent {
  address: BlockAddress;
  reason: StaleReadReason;
  node: string;
  /** The other side: the replica that showed the newer state, or the primary whose body stood. */
  witness: string;
  /** The primary's body, or its BLOCK_NOT_FOUND with what it said of the absence (hidden-block). */
  served: { gen: BodyGeneration; seq: number } | { notFound: NotFoundClaim };
  /** The other write proven (stale-body, hidden-block), the delete's seq or nothing (deleted-after: absent), or the claim that failed. */
  shown: { gen?: BodyGeneration; seq?: number | null };
}

export interface StaleReadSink {
  record(e: StaleReadEvent): void;
  /** A read no other in-sync replica vouched for (README "No witness"): served (best-effort) or refused (strict). */
  unchecked?(e: UncheckedReadEvent): void;
}

/** A read of one PG that no other in-sync replica answered in time (or that has none in sync). */
export interface UncheckedReadEvent {
  address: BlockAddress;
  pg: number;
  /** The primary whose answer stood alone. */
  primary: string;
  /** The other in-sync replicas asked (empty: none in sync). */
  asked: string[];
  outcome: 'served' | 'refused';
  /** Nobody answered in time, or those who answered had not reached `servedSeq` (absent: none-answered). */
  why?: 'none-answered' | 'none-reached';
  /** The seq the primary's answer stands on (its body's, or its tombstone's). */
  servedSeq?: number | null;
}

/** The unchecked-read warning is logged at most once per PG per this interval (the counter counts every read). */
export const uncheckedWarnIntervalMs = 60_000;
/** PGs whose last warning time is kept; past this the map starts over (at worst one more warning each). */
export const maxUncheckedWarnPgs = 4_096;

/** GETs a path from a data node (its address); a non-200 answer throws its GalleonError. */
export type NodeGet = (address: string, path: string, timeoutMs: number) => Promise<{ headers: IncomingHttpHeaders; body: Buffer }>;

const counterName = 'galleon_client_stale_reads_total';
const uncheckedName = 'galleon_client_unchecked_reads_total';

const staleReadLines: Record<StaleReadReason, string> = {
  'stale-body': 'a data node served a rolled-back block body: read refused',
  'deleted-after': 'a data node served a rolled-back block body: read refused',
  'hidden-block': 'a data node answered not found for a live block: read refused',
  'unproven-claim': 'a replica claimed a newer block it could not show',
};

/**
 * The daemon's sink: one warning line, one count per node and reason, one audit event; reads no
 * replica vouched for are counted by outcome and warned of once per PG per interval (`nowMs`: the
 * shell's clock, a parameter so a test can move it).
 */
export function staleReadSink(log: Logger, registry: Registry, audit: AuditSink | null, nowMs: () => number = Date.now): StaleReadSink {
  const existing = registry.getSingleMetric(counterName);
  const counter = existing instanceof Counter ? existing : new Counter({
    name: counterName, help: 'Encrypted block reads whose body was contradicted by another in-sync replica (node: the node at fault)',
    labelNames: ['node', 'reason'] as const, registers: [registry],
  });
  const knownUnchecked = registry.getSingleMetric(uncheckedName);
  const uncheckedCounter = knownUnchecked instanceof Counter ? knownUnchecked : new Counter({
    name: uncheckedName, help: 'Encrypted block reads that no other in-sync replica answered in time, so the rollback check could not run (outcome: served by best-effort, refused by strict)',
    labelNames: ['outcome'] as const, registers: [registry],
  });
  const lastWarn = new Map<string, number>();
  return {
    unchecked(e) {
      uncheckedCounter.inc({ outcome: e.outcome });
      const key = `${e.address.volumeId}/${e.pg}`;
      const now = nowMs();
      if (!warnDue(lastWarn.get(key), now, uncheckedWarnIntervalMs)) return;
      if (lastWarn.size >= maxUncheckedWarnPgs) lastWarn.clear();
      lastWarn.set(key, now);
      log.warn({ volumeId: e.address.volumeId, pg: e.pg, primary: e.primary, asked: e.asked, outcome: e.outcome, intervalMs: uncheckedWarnIntervalMs },
        e.outcome === 'served' ? 'encrypted reads served unchecked: no other in-sync replica of the PG answered (counted; warned once per PG per interval)' : 'encrypted reads refused: no other in-sync replica of the PG answered (freshness strict)');
    },
    record(e) {
      counter.inc({ node: e.node, reason: e.reason });
      log.warn({ ...e.address, node: e.node, witness: e.witness, reason: e.reason, served: e.served, shown: e.shown },
        staleReadLines[e.reason]);
      audit?.record({
        user: null, tenant: null, verb: 'block:stale-read', object: `${e.address.volumeId}/${e.address.inode}/${e.address.blockNo}`.slice(0, 128),
        outcome: 'failed', code: 'INTEGRITY_ERROR', reason: `${e.reason} served by ${e.node}, shown by ${e.witness}`.slice(0, 256), source: e.node.slice(0, 128),
      });
    },
  };
}

const gen = (g: BodyGeneration): string => `${g.writerId}:${g.counter}`;

/** What the primary answered, in words. */
function servedText(served: StaleReadEvent['served']): string {
  if ('gen' in served) return `served a body (generation ${gen(served.gen)}, seq ${served.seq})`;
  const { deletedSeq, appliedSeq } = served.notFound;
  const why = deletedSeq === null ? 'no entry' : `deleted at seq ${deletedSeq}`;
  return `answered not found (${why}${appliedSeq === null ? '' : `, its watermark at seq ${appliedSeq}`})`;
}

/** The one line a refused not-found read gives. */
function hiddenText(e: StaleReadEvent): string {
  const shown = e.shown.gen === undefined ? '' : `generation ${gen(e.shown.gen)}, `;
  return `data node ${e.node} ${servedText(e.served)} for a block in-sync replica ${e.witness} holds (${shown}seq ${e.shown.seq ?? '?'})`;
}

/** The seq headers of a BLOCK_NOT_FOUND answer (server/head-route.ts `absenceStamp`); a malformed one counts as not said. */
export function notFoundClaimOf(headers: IncomingHttpHeaders): NotFoundClaim {
  const num = (v: string | string[] | undefined): number | null => {
    const x = Array.isArray(v) ? v[0] : v;
    return x !== undefined && /^\d{1,16}$/.test(x) ? Number(x) : null;
  };
  return { deletedSeq: num(headers[Header.deletedSeq]), appliedSeq: num(headers[Header.appliedSeq]) };
}

/** The one line a refused read gives. */
export function staleReadError(e: StaleReadEvent): GalleonError {
  const a = e.address;
  const servedAs = servedText(e.served);
  let what: string;
  if (e.reason === 'hidden-block') what = hiddenText(e);
  else if (e.reason === 'stale-body') what = `data node ${e.node} ${servedAs} older than the write in-sync replica ${e.witness} holds (generation ${e.shown.gen === undefined ? '?' : gen(e.shown.gen)})`;
  else if (e.shown.seq === null || e.shown.seq === undefined) what = `data node ${e.node} ${servedAs} that in-sync replica ${e.witness}, past that seq, does not hold`;
  else what = `data node ${e.node} ${servedAs} that in-sync replica ${e.witness} deleted at seq ${e.shown.seq}`;
  return new GalleonError('INTEGRITY_ERROR', `block ${a.blockNo} (inode ${a.inode}) of volume ${a.volumeId}: ${what}; refused rather than return a rolled-back or hidden block`, {
    hint: `the copy on ${e.node} is stale or tampered with: take it out of the PG (or restore the block) and check that node; the audit log has the event`,
    details: { volumeId: a.volumeId, inode: a.inode, blockNo: a.blockNo, node: e.node, witness: e.witness },
  });
}

/** The one line a strict read gives when no other in-sync replica vouched for the primary's answer. */
export function uncheckedReadError(e: UncheckedReadEvent, headTimeoutMs: number): GalleonError {
  const a = e.address;
  const who = e.asked.length === 0 ? 'no other replica of its PG is in sync'
    : e.why === 'none-reached' ? `no other in-sync replica of its PG (${e.asked.join(', ')}) has reached seq ${e.servedSeq ?? '?'} that data node ${e.primary} answered at`
      : `no other in-sync replica of its PG (${e.asked.join(', ')}) answered within ${headTimeoutMs} ms`;
  return new GalleonError('FAILED_PRECONDITION', `block ${a.blockNo} (inode ${a.inode}) of volume ${a.volumeId}: ${who}, so the answer of data node ${e.primary} cannot be checked for a rollback; refused (freshness strict)`, {
    hint: 'bring a replica of the PG back in sync, or read with --freshness best-effort to accept reads only the primary vouches for',
    details: { volumeId: a.volumeId, inode: a.inode, blockNo: a.blockNo, pg: e.pg, node: e.primary, reason: 'unchecked-read' },
  });
}

/** POSTs JSON to a data node (its address) and returns the JSON answer; a non-200 answer throws its GalleonError. */
export type NodePost = (address: string, path: string, body: unknown, timeoutMs: number) => Promise<unknown>;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** One entry of a block-heads answer as a ReplicaHead; anything malformed is `unknown` (no evidence). */
function headFrom(node: string, a: BlockAddress, x: unknown): ReplicaHead {
  try {
    const e = x as Partial<BlockHeadAnswer>;
    if (!isCount(e.appliedSeq)) return { node, kind: 'unknown' };
    if (e.kind === 'absent') return { node, kind: 'absent', appliedSeq: e.appliedSeq };
    if (!isCount(e.seq)) return { node, kind: 'unknown' };
    if (e.kind === 'deleted') return { node, kind: 'deleted', seq: e.seq, appliedSeq: e.appliedSeq };
    if (e.kind === 'block' && typeof e.head === 'string') return { node, kind: 'block', gen: generationOfHead(a, Buffer.from(e.head, 'base64')), seq: e.seq, appliedSeq: e.appliedSeq };
  } catch {
    // A head that is not a seal header: no claim.
  }
  return { node, kind: 'unknown' };
}

interface HeadQueue {
  node: string;
  address: string;
  volumeId: string;
  /** The cut of reads through a view (heads of the newest entries below it); null: live heads. */
  below: number | null;
  items: { a: BlockAddress; resolve: (h: ReplicaHead) => void }[];
}

/**
 * Block heads asked of one replica during one turn of the event loop leave together, one
 * POST /v1/block-heads per (replica, volume) and at most `maxHeadsPerRequest` blocks each: the
 * concurrent reads of a mount or a bench pay one request per replica per turn, not one per read.
 * No timer: a head waits at most for the end of the turn it was asked in. Never rejects.
 */
export class HeadBatcher {
  private readonly queues = new Map<string, HeadQueue>();

  constructor(private readonly post: NodePost, private readonly timeoutMs: number) {}

  head(node: string, address: string, a: BlockAddress, below: number | null = null): Promise<ReplicaHead> {
    const key = `${address}\u0000${a.volumeId}\u0000${below ?? 'live'}`;
    let q = this.queues.get(key);
    if (q === undefined) {
      const fresh: HeadQueue = { node, address, volumeId: a.volumeId, below, items: [] };
      this.queues.set(key, fresh);
      setImmediate(() => { this.queues.delete(key); this.flush(fresh); });
      q = fresh;
    }
    const queue = q;
    return new Promise<ReplicaHead>((resolve) => queue.items.push({ a, resolve }));
  }

  private flush(q: HeadQueue): void {
    for (let i = 0; i < q.items.length; i += maxHeadsPerRequest) void this.send(q, q.items.slice(i, i + maxHeadsPerRequest));
  }

  private async send(q: HeadQueue, items: HeadQueue['items']): Promise<void> {
    let heads: unknown[] = [];
    try {
      const answer = await this.post(q.address, `/v1/block-heads/${encodeURIComponent(q.volumeId)}`, { blocks: items.map((x) => [x.a.inode, x.a.blockNo]), bytes: sealHeaderBytes, ...(q.below === null ? {} : { below: q.below }) }, this.timeoutMs);
      const list = (answer as { heads?: unknown } | null)?.heads;
      if (Array.isArray(list) && list.length === items.length) heads = list;
    } catch {
      // A down, gated or refusing replica is no evidence: the primary's body stands unless another replica shows otherwise.
    }
    items.forEach((x, i) => x.resolve(headFrom(q.node, x.a, heads[i])));
  }
}

/**
 * Whether the replica at `address` really holds another write of `a` than the served one (null:
 * the primary served none): its live body, fetched, names another generation and opens under the
 * volume's key at this address.
 * A replica cannot forge that; it can only show a genuine body, which the caller then trusts to
 * refuse the read, never to return it.
 */
export async function provesOtherWrite(get: NodeGet, address: string, a: BlockAddress, served: BodyGeneration | null, cipher: BlockSealer, timeoutMs: number, below: number | null = null): Promise<BodyGeneration | 'withdrawn' | null> {
  try {
    // Below a cut: the replica's own newest version there (no primary check without an epoch); an absent or deleted one is an empty body, not authentic.
    const { body } = await get(address, below === null ? blockPath(a) : `${versionPathOf(a)}?below=${below}`, timeoutMs);
    const g = generationOf(a, body);
    if (served !== null && compareGenerations(g, served) === 0) return null;
    await cipher.open(a, body);
    return g;
  } catch (err) {
    // The replica now says it holds no such block: the claim is withdrawn, not shown false. Its
    // state moved between the head and the fetch (seen on an honest replica in
    // rollback.integration's racing loop); a liar gains nothing by it but the fetch.
    if (below === null && isGalleonError(err, 'BLOCK_NOT_FOUND')) return 'withdrawn';
    // Not shown (unreachable, the same write, not authentic): the claim stays a claim.
    return null;
  }
}
