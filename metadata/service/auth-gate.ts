/**
 * The metadata API's door (issue #12): every gRPC call is authenticated from its metadata header
 * `authorization: Bearer <token>` (proto/auth-token.ts; a token is looked up in this member's own
 * replica of the state, never through a Raft round) and authorized by auth-guard.ts. A refused
 * call is answered like any other error (the reply's error, code UNAUTHENTICATED,
 * PERMISSION_DENIED or a not-found) and audited; a user's mutating call is audited with its
 * outcome. The node credential's calls (heartbeats, leases, the namespace of mounts, the daemons'
 * own calls on behalf of users they authenticated) are the cluster's own traffic, not audited.
 */
import { ErrorCode, isGalleonError } from '../../proto/errors.js';
import { isDenial, principalName, tenantOf, type AuditSink, type Principal } from '../../proto/auth.js';
import type { Authenticator } from '../../proto/auth-token.js';
import { guardCall, isMutating, lookupsOver } from './auth-guard.js';

export interface GateRequest {
  authorization: string | string[] | undefined;
  source: string;
  method: string;
  args: unknown[];
}

export interface Admitted {
  args: unknown[];
  /** The call's answer, filtered for the caller; also audits the outcome. */
  settle(outcome: { ok: true; value: unknown } | { ok: false; err: unknown }): unknown;
}

export interface MetadataGate {
  admit(req: GateRequest): Promise<Admitted>;
}

export interface GateDeps {
  authenticator: Authenticator;
  audit: AuditSink;
  /** A linearizable call on this member's service (the guard's lookups). */
  call(method: string, args: unknown[]): Promise<unknown>;
}

export function metadataAuthGate(d: GateDeps): MetadataGate {
  const look = lookupsOver((method, args) => d.call(method, args));
  return {
    async admit(req) {
      let principal: Principal | null = null;
      try {
        principal = await d.authenticator.authenticate(req.authorization);
        const p = principal;
        const g = await guardCall(p, req.method, req.args, look);
        const audited = p.kind === 'user' && isMutating(req.method);
        return {
          args: g.args,
          settle(outcome) {
            if (audited || (!outcome.ok && isDenial(outcome.err))) record(d.audit, p, req, g.object, outcome.ok ? null : outcome.err);
            if (!outcome.ok) throw outcome.err;
            return g.filter(outcome.value);
          },
        };
      } catch (err) {
        if (isDenial(err)) record(d.audit, principal, req, typeof req.args[0] === 'string' ? req.args[0].slice(0, 128) : null, err);
        throw err;
      }
    },
  };
}

function record(audit: AuditSink, p: Principal | null, req: GateRequest, object: string | null, err: unknown): void {
  // A redirect is not an outcome: the client asks the leader next, which audits the call.
  if (isGalleonError(err, ErrorCode.NOT_LEADER) || isGalleonError(err, ErrorCode.NO_LEADER)) return;
  const code = err === null ? null : isGalleonError(err) ? err.code : 'INTERNAL';
  audit.record({
    user: p === null ? null : principalName(p), tenant: p === null ? null : tenantOf(p), verb: `metadata:${req.method.slice(0, 64)}`, object,
    outcome: err === null ? 'ok' : isDenial(err) ? 'denied' : 'failed', code, source: req.source,
  });
}
