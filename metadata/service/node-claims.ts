/**
 * Which node a metadata call speaks for (issue #12). Under mutual TLS a node certificate names its
 * node (CN), and Raft and the block port already refuse a certificate acting for another node; the
 * metadata API does the same here for the calls by which a data node reports and claims: a
 * heartbeat, a registration, a PG-primary claim, an out-of-sync mark, a lease, a backup run. Pure
 * (no I/O): the gRPC edge (grpc-server.ts) passes the call and the certificate's node id.
 *
 * Leases are renewed and released by id, which names no node: those calls get a holder scope
 * (`{ holder }`, at `holderScopeArgIndex`) that the state machine checks in the same apply, so a
 * node that learned another's lease id (a LEASE_CONFLICT names it) cannot renew or drop that lease.
 *
 * Not bound here: the namespace (`fs*`) and key calls, which any node's mount or block client
 * makes for any volume; they stay node-credential calls (see README).
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';

/** The argument naming the node, per method (`registerDataNode`: the registration's `id`). */
const claimArg: ReadonlyMap<string, number> = new Map([
  ['registerDataNode', 0], ['heartbeatDataNode', 0], ['acquireLease', 2], ['claimPgPrimary', 2],
  // The primary marks a replica out of sync: the caller is the primary (5th argument).
  ['markPgReplicaOutOfSync', 4],
  // `<node>:<term>`: the metadata leader that runs the schedule.
  ['claimBackupRun', 3], ['finishBackupRun', 4],
]);

/** Calls on a lease by id and the position of the holder scope the edge adds. */
export const holderScopeArgIndex: ReadonlyMap<string, number> = new Map([['renewLease', 2], ['releaseLease', 1]]);

export type NodeClaim =
  | { kind: 'none' }
  | { kind: 'named'; node: string | null }
  | { kind: 'scoped'; at: number };

/** What binding a call needs: none, a node named by its arguments (null: malformed, the service refuses it), or a holder scope. */
export function nodeClaimOf(method: string, args: readonly unknown[]): NodeClaim {
  const scopeAt = holderScopeArgIndex.get(method);
  if (scopeAt !== undefined) return { kind: 'scoped', at: scopeAt };
  const at = claimArg.get(method);
  if (at === undefined) return { kind: 'none' };
  let v = args[at];
  if (method === 'registerDataNode') v = typeof v === 'object' && v !== null ? (v as { id?: unknown }).id : undefined;
  if (typeof v !== 'string') return { kind: 'named', node: null };
  // A backup run's claimant is `<node>:<term>`.
  return { kind: 'named', node: method.endsWith('BackupRun') ? v.split(':')[0] ?? '' : v };
}

/**
 * The call's arguments once its certificate's node (`certNode`, null: not a node certificate) may
 * make it; throws PERMISSION_DENIED otherwise. A malformed call passes unchanged (the service's
 * argument check answers it).
 */
export function bindToNode(method: string, args: readonly unknown[], certNode: string | null): unknown[] {
  const claim = nodeClaimOf(method, args);
  if (claim.kind === 'none') return [...args];
  if (certNode === null) throw notANode(method);
  if (claim.kind === 'scoped') {
    const out = args.slice(0, claim.at);
    while (out.length < claim.at) out.push(null);
    return [...out, { holder: certNode }];
  }
  if (claim.node === null || claim.node === certNode) return [...args];
  throw new GalleonError(ErrorCode.PERMISSION_DENIED, `this certificate is node ${certNode}'s; it may not call ${method} as node ${claim.node.slice(0, 64)}`, {
    hint: 'each node uses its own certificate (`galleon cert issue --node ID` names the node id it may speak for)',
    details: { certNode, claimed: claim.node.slice(0, 64) },
  });
}

function notANode(method: string): GalleonError {
  return new GalleonError(ErrorCode.PERMISSION_DENIED, `${method} is for cluster nodes; this is not a node certificate`, {
    hint: 'only a data node makes this call, with its own certificate (`galleon cert issue --node ID`)',
  });
}
