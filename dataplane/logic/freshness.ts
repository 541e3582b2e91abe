/**
 * Is the body a PG's primary served for an encrypted block the latest one (`judgeServedBody`), and
 * is its "not found" true (`judgeNotFound`)? A pure judgement of what the primary answered and
 * what the PG's other in-sync replicas say they hold of the same address (issue #12, "Rollback"
 * in dataplane/client/README.md). No I/O, no clock: the client
 * gathers the answers, this decides, tests enumerate the cases.
 *
 * Why these rules:
 * - The PG's seq orders the writes and deletes of an address (the primary assigns it; every
 *   replica applies each seq once). So a replica whose entry for the address is at a later seq
 *   than the served body's, or whose contiguous watermark has passed the served body's seq while
 *   it holds something else (another write, a tombstone, nothing), shows that the served body is
 *   not the last write — unless the replica lies. A replica behind (entry older, watermark below)
 *   shows nothing: replication is asynchronous below the `replicated` concern.
 * - The served body's seq comes from the primary itself, which may lie about it too. What it
 *   cannot forge is the body's generation (writer id, counter), authenticated by GCM: an entry at
 *   the same seq with another generation is a contradiction, and so is any entry of a replica
 *   whose watermark passed the claimed seq. A primary claiming a seq beyond every replica's
 *   watermark has no witness (`judgeWitnesses`): asked again for a few rounds, then served and
 *   counted as unchecked, or refused under `strict`.
 * - A replica's answer is only a claim: a claimed other write counts once the client has fetched
 *   that body and opened it at this address (`other-write`: verify it), so a lying replica can
 *   turn a read into an error, never into other data (the client returns the primary's body or
 *   refuses). Deletes carry no generation (nothing is sealed): a tombstone or an absence is
 *   believed on its seq and watermark alone, which again can only cost an error.
 * - A replica that answers nothing, or nothing parseable, is ignored: reads do not depend on
 *   every replica being up.
 */

/** A sealed body's generation (dataplane/client/block-cipher.ts `Generation`). */
export interface BodyGeneration {
  writerId: number;
  counter: number;
}

/** What the primary served: the body's generation (as the body claims it) and its seq. */
export interface ServedBody {
  gen: BodyGeneration;
  seq: number;
}

/** What one replica says it holds of the address (GET /v1/block-head, dataplane/wire.ts). */
export type ReplicaHead =
  | { node: string; kind: 'block'; gen: BodyGeneration; seq: number; appliedSeq: number }
  | { node: string; kind: 'deleted'; seq: number; appliedSeq: number }
  | { node: string; kind: 'absent'; appliedSeq: number }
  /** Down, refused, timed out, or an answer that did not parse: no evidence either way. */
  | { node: string; kind: 'unknown' };

export type FreshnessVerdict =
  | { kind: 'fresh' }
  /** `node` holds another write of the address ordered after the served one: fetch and authenticate it before believing it. */
  | { kind: 'other-write'; node: string; gen: BodyGeneration; seq: number }
  /** `node` deleted the address after the served write (its tombstone's seq), or holds nothing though its watermark passed it (null). */
  | { kind: 'deleted-after'; node: string; seq: number | null };

/** Orders two generations: negative, zero or positive as `a` is older, the same, or newer. */
export function compareGenerations(a: BodyGeneration, b: BodyGeneration): number {
  return a.writerId !== b.writerId ? a.writerId - b.writerId : a.counter - b.counter;
}

/** Whether a replica's answer shows a later state of the address than the served body. */
function contradicts(served: ServedBody, h: ReplicaHead): boolean {
  switch (h.kind) {
    case 'unknown': return false;
    case 'absent': return h.appliedSeq >= served.seq;
    case 'deleted': return h.seq > served.seq || h.appliedSeq >= served.seq;
    case 'block': return compareGenerations(h.gen, served.gen) !== 0 && (h.seq >= served.seq || h.appliedSeq >= served.seq);
  }
}

/** The judgement: a contradicting write (the latest by seq) before a contradicting delete. */
export function judgeServedBody(served: ServedBody, heads: readonly ReplicaHead[]): FreshnessVerdict {
  let write: Extract<ReplicaHead, { kind: 'block' }> | null = null;
  let gone: Extract<ReplicaHead, { kind: 'deleted' | 'absent' }> | null = null;
  for (const h of heads) {
    if (!contradicts(served, h)) continue;
    if (h.kind === 'block' && (write === null || h.seq > write.seq)) write = h;
    if ((h.kind === 'deleted' || h.kind === 'absent') && gone === null) gone = h;
  }
  if (write !== null) return { kind: 'other-write', node: write.node, gen: write.gen, seq: write.seq };
  if (gone !== null) return { kind: 'deleted-after', node: gone.node, seq: gone.kind === 'deleted' ? gone.seq : null };
  return { kind: 'fresh' };
}

/**
 * What a PG's primary answered for a block it says it does not hold (BLOCK_NOT_FOUND): the seq of
 * its tombstone for the address, if it has one, and its contiguous watermark for the PG, if it
 * said (server/head-route.ts `absenceStamp`). Both come from the primary and may be lies too.
 */
export interface NotFoundClaim {
  deletedSeq: number | null;
  appliedSeq: number | null;
}

export type AbsenceVerdict =
  | { kind: 'absent' }
  /**
   * `node` holds a live write the primary neither holds nor deleted after it: fetch and
   * authenticate it before believing it. `passed`: the primary's own watermark is at or past that
   * seq (it says it applied that write, yet has no entry): no write in flight explains it.
   */
  | { kind: 'hidden-write'; node: string; gen: BodyGeneration; seq: number; passed: boolean };

/**
 * Whether a replica's answer contradicts "not found". Only a live block does (a tombstone or an
 * absence agrees with it). Without a tombstone, any live block does: the address was written and
 * the primary has no record of it (a first write still in flight to the primary is the honest
 * race; the caller's retry rounds settle it). With a tombstone at seq D, a write at or after D
 * does (one seq is one write or one delete), and so does a write of a replica whose watermark
 * passed D: that replica applied D, so D was no delete of this address. A replica behind D
 * holding the older write is the honest race of a delete in flight: no contradiction at all.
 */
function contradictsAbsence(claim: NotFoundClaim, h: ReplicaHead): h is Extract<ReplicaHead, { kind: 'block' }> {
  if (h.kind !== 'block') return false;
  if (claim.deletedSeq === null) return true;
  return h.seq >= claim.deletedSeq || h.appliedSeq >= claim.deletedSeq;
}

/** The judgement of a not-found read: the latest contradicting write by seq, or `absent`. */
export function judgeNotFound(claim: NotFoundClaim, heads: readonly ReplicaHead[]): AbsenceVerdict {
  let write: Extract<ReplicaHead, { kind: 'block' }> | null = null;
  for (const h of heads) if (contradictsAbsence(claim, h) && (write === null || h.seq > write.seq)) write = h;
  if (write === null) return { kind: 'absent' };
  return { kind: 'hidden-write', node: write.node, gen: write.gen, seq: write.seq, passed: claim.appliedSeq !== null && claim.appliedSeq >= write.seq };
}

/**
 * What a read does when no other in-sync replica gave evidence (issue #12, "No witness"): every
 * other replica down, refusing, slower than the head timeout, set aside as an unproven claim —
 * or none in sync at all. `best-effort` serves the primary's answer unchecked (a single surviving
 * node stays readable; the read is counted); `strict` refuses it (a reader that would rather fail
 * than take a body nobody corroborated).
 */
export const freshnessModes = ['strict', 'best-effort'] as const;
export type FreshnessMode = (typeof freshnessModes)[number];
export const defaultFreshnessMode: FreshnessMode = 'best-effort';

export type WitnessVerdict =
  | { kind: 'checked'; witnesses: number }
  /** Replicas answered, but none has reached the served seq yet: ask again (a write in flight lands in a round or two). */
  | { kind: 'behind' }
  | { kind: 'unchecked'; action: 'serve' | 'refuse'; why: 'none-answered' | 'none-reached' };

/**
 * Whether a replica's answer can vouch for what the primary served at `servedSeq` (null: any
 * answer can): it has applied the PG up to that seq, or holds an entry of the address at or past
 * it. A replica behind the served seq has not seen it, so it cannot tell a true write from an old
 * body the primary stamped with a seq nobody else has reached.
 */
function vouches(h: ReplicaHead, servedSeq: number | null): boolean {
  if (h.kind === 'unknown') return false;
  if (servedSeq === null) return true;
  return h.appliedSeq >= servedSeq || (h.kind !== 'absent' && h.seq >= servedSeq);
}

/**
 * Whether the read was checked by at least one replica's answer. A head of kind `unknown` is no
 * witness; the heads passed are those left after unproven claims were set aside (a replica whose
 * claim failed vouches for nothing). A witness must have reached `servedSeq` (the served body's
 * seq, or the tombstone seq of a "not found"); while replicas answer below it, `behind` asks for
 * another round, and after the `final` one the read counts as unchecked.
 */
export function judgeWitnesses(mode: FreshnessMode, heads: readonly ReplicaHead[], servedSeq: number | null = null, final = true): WitnessVerdict {
  const witnesses = heads.filter((h) => vouches(h, servedSeq)).length;
  if (witnesses > 0) return { kind: 'checked', witnesses };
  const answered = heads.some((h) => h.kind !== 'unknown');
  if (answered && !final) return { kind: 'behind' };
  return { kind: 'unchecked', action: mode === 'strict' ? 'refuse' : 'serve', why: answered ? 'none-reached' : 'none-answered' };
}

/** One warning per PG per interval: whether one is due now (`lastMs` undefined: none was given yet). */
export function warnDue(lastMs: number | undefined, nowMs: number, intervalMs: number): boolean {
  return lastMs === undefined || nowMs - lastMs >= intervalMs || nowMs < lastMs;
}
