/**
 * Write-concern accounting, as a pure function of its inputs (no I/O, no clock): given the
 * concern, the PG's replica set with zones, the primary and the acknowledgements received so
 * far, is the write satisfied, still pending, or impossible? The primary calls it after every
 * ack; tests enumerate it exhaustively.
 */
import type { WriteConcern } from '../../proto/metadata-types.js';

/** What one replica has confirmed about one write. `accepted` = applied but not yet synced. */
export type ReplicaAck = 'pending' | 'accepted' | 'durable' | 'failed';

export interface ReplicaInfo {
  id: string;
  zone: string;
}

export type ConcernVerdict =
  | { state: 'satisfied' }
  | { state: 'pending' }
  | { state: 'impossible'; reason: string };

/** Does the primary's local batch need an fsync before this concern can be met? */
export function primaryMustSync(concern: WriteConcern): boolean {
  return concern !== 'acknowledged';
}

/** Do the other replicas need to fsync? Only concerns that count them as durable do. */
export function replicasMustSync(concern: WriteConcern): boolean {
  return concern === 'replicated' || concern === 'distributed';
}

export function distinctZones(replicas: readonly ReplicaInfo[]): number {
  return new Set(replicas.map((r) => r.zone)).size;
}

export function evaluateWriteConcern(
  concern: WriteConcern,
  replicas: readonly ReplicaInfo[],
  primary: string,
  acks: ReadonlyMap<string, ReplicaAck>,
): ConcernVerdict {
  if (!replicas.some((r) => r.id === primary)) return { state: 'impossible', reason: `primary ${primary} is not in the replica set` };
  const ack = (id: string): ReplicaAck => acks.get(id) ?? 'pending';
  const own = ack(primary);
  if (own === 'failed') return { state: 'impossible', reason: 'the primary failed to apply the write' };
  const others = replicas.filter((r) => r.id !== primary);

  switch (concern) {
    case 'acknowledged':
      return own === 'pending' ? { state: 'pending' } : { state: 'satisfied' };
    case 'durable':
      return own === 'durable' ? { state: 'satisfied' } : { state: 'pending' };
    case 'replicated': {
      if (others.length === 0) return { state: 'impossible', reason: 'replicated needs at least 2 replicas, the placement group has 1' };
      const durableOthers = others.filter((r) => ack(r.id) === 'durable').length;
      const stillPossible = others.filter((r) => ack(r.id) !== 'failed').length;
      if (stillPossible === 0) return { state: 'impossible', reason: 'every other replica failed to apply the write' };
      return own === 'durable' && durableOthers >= 1 ? { state: 'satisfied' } : { state: 'pending' };
    }
    case 'distributed': {
      const zones = distinctZones(replicas);
      if (zones < 2) return { state: 'impossible', reason: `distributed needs replicas in at least 2 zones, the placement group spans ${zones}` };
      const failed = others.filter((r) => ack(r.id) === 'failed').map((r) => r.id);
      if (failed.length > 0) return { state: 'impossible', reason: `replica ${failed.join(', ')} failed to apply the write` };
      return own === 'durable' && others.every((r) => ack(r.id) === 'durable') ? { state: 'satisfied' } : { state: 'pending' };
    }
  }
}
