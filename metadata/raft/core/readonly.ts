/**
 * The leader's queue of ReadIndex requests waiting for a heartbeat round to confirm that it is
 * still the leader (thesis §6.4). A quorum acknowledging the heartbeat that carried context C
 * confirms C and every request queued before it: those heartbeats went out later than the
 * requests' own.
 */
import type { NodeId } from './types.js';

export interface ReadRequest {
  context: string;
  /** The commit index when the request arrived: the read is served once it is applied. */
  index: number;
  /** Who asked: the leader itself or a follower that forwarded it. */
  from: NodeId;
  acks: Set<NodeId>;
}

/** Bound on queued reads so a flood of requests cannot grow memory without limit. */
export const maxPendingReads = 4096;

export class ReadOnlyQueue {
  private queue: ReadRequest[] = [];
  private readonly byContext = new Map<string, ReadRequest>();

  get size(): number {
    return this.queue.length;
  }

  /** Returns false when the context is already pending or the queue is full (the read is dropped). */
  add(context: string, index: number, from: NodeId, self: NodeId): boolean {
    if (this.byContext.has(context) || this.queue.length >= maxPendingReads) return false;
    const req: ReadRequest = { context, index, from, acks: new Set([self]) };
    this.queue.push(req);
    this.byContext.set(context, req);
    return true;
  }

  /** Records `from`'s acknowledgement of the heartbeat for `context`; returns the request's acks. */
  recvAck(from: NodeId, context: string): Set<NodeId> | undefined {
    const req = this.byContext.get(context);
    if (req === undefined) return undefined;
    req.acks.add(from);
    return req.acks;
  }

  /** Removes and returns every request up to and including `context`, oldest first. */
  release(context: string): ReadRequest[] {
    const at = this.queue.findIndex((r) => r.context === context);
    if (at < 0) return [];
    const out = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    for (const r of out) this.byContext.delete(r.context);
    return out;
  }

  lastContext(): string | undefined {
    return this.queue[this.queue.length - 1]?.context;
  }

  reset(): void {
    this.queue = [];
    this.byContext.clear();
  }
}
