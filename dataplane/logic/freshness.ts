/**
 * Is the body a PG's primary served for an encrypted block the latest one? A pure judgement of
 * what the primary served and what the PG's other in-sync replicas say they hold of the same
 * address (issue #12, "Rollback" in dataplane/client/README.md). No I/O, no clock: the client
 * gathers the answers, this decides, tests enumerate the cases.
 *
 * Why these rules:
 * - A sealed body's generation (writer id, counter) is authenticated by GCM and only grows for
 *   successive writes of one writer, and writer ids only grow (a Raft counter). So a replica that
 *   holds an authentic body of a higher generation than the primary's shows that the primary's
 *   body was sealed before another write of the address. The claim is only a claim until the
 *   client has fetched that body and opened it (`newer-claim`: verify it).
 * - A delete carries no generation (nothing is sealed). What orders a delete against a write is
 *   the PG's seq, assigned by the primary: a tombstone at a seq above the served body's, or a
 *   replica whose contiguous watermark passed the body's seq while it holds a tombstone, means
 *   the body was deleted after it was written (`deleted-after`).
 * - A replica that answers nothing, or nothing parseable, is ignored: the read costs no
 *   availability when replicas are down, and a replica can turn a read into an error, never
 *   into other data (the client returns the primary's body or refuses).
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
  /** `node` claims a body of a newer generation: fetch it and authenticate it before believing it. */
  | { kind: 'newer-claim'; node: string; gen: BodyGeneration }
  /** `node` holds a delete ordered after the served body (tombstone seq, or its watermark). */
  | { kind: 'deleted-after'; node: string; seq: number };

/** Orders two generations: negative, zero or positive as `a` is older, the same, or newer. */
export function compareGenerations(a: BodyGeneration, b: BodyGeneration): number {
  return a.writerId !== b.writerId ? a.writerId - b.writerId : a.counter - b.counter;
}

/** The judgement: the newest generation claimed above the served one wins over a delete. */
export function judgeServedBody(served: ServedBody, heads: readonly ReplicaHead[]): FreshnessVerdict {
  let newest: { node: string; gen: BodyGeneration } | null = null;
  for (const h of heads) {
    if (h.kind !== 'block' || compareGenerations(h.gen, served.gen) <= 0) continue;
    if (newest === null || compareGenerations(h.gen, newest.gen) > 0) newest = { node: h.node, gen: h.gen };
  }
  if (newest !== null) return { kind: 'newer-claim', node: newest.node, gen: newest.gen };
  for (const h of heads) {
    // An honest replica that applied every seq up to the body's would hold that write, not a tombstone.
    if (h.kind === 'deleted' && (h.seq > served.seq || h.appliedSeq >= served.seq)) return { kind: 'deleted-after', node: h.node, seq: h.seq };
  }
  return { kind: 'fresh' };
}
