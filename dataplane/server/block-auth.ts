/**
 * The block port's door (issue #12). Every request but /healthz carries `authorization: Bearer`:
 *  - the node credential (other data nodes replicating, peering, catching up; the block clients
 *    of daemons and mounts) may use every route;
 *  - a user's token may read (`GET /v1/blocks`, `POST /v1/block-range`, `GET /v1/block-head` and `POST /v1/block-heads`, role viewer and up) and write or delete
 *    (`PUT`/`DELETE /v1/blocks`, operator and up) single blocks of volumes its tenant owns, as the
 *    volume's access policy allows (proto/auth.ts `volumeAccess`); every other route is for nodes;
 *  - anything else: 401, and refused before the body is read.
 * Refusals and a user's writes are audit events. A user's volume is looked up in a cache
 * (`volumeCacheTtlMs`, at most `maxCachedVolumes`), so a policy change applies here within that
 * bound; the node credential's requests cost one hash and compare, no lookup.
 */
import type http from 'node:http';
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import {
  hiddenVolume, isDenial, principalName, requireClusterWide, requireNeed, requireVolumeAccess, tenantOf, type AuditSink, type PolicyEntry, type Principal,
} from '../../proto/auth.js';
import { Authenticator, hashToken, tokenCacheTtlMs, type CredentialLookup } from '../../proto/auth-token.js';

/** How long a volume's tenant and policy are trusted here: the bound on a policy change reaching the block port. */
export const volumeCacheTtlMs = tokenCacheTtlMs;
export const maxCachedVolumes = 10_000;

export interface VolumeAuthInfo { name: string; tenant?: string; policy?: PolicyEntry[] }

export interface BlockAuthOptions {
  nodeToken: string;
  audit: AuditSink;
  /** A token's record by its hash (a stale read of the metadata service). */
  lookup: CredentialLookup;
  /** A volume by id (null: none), for users' requests only. */
  volume(id: string): Promise<VolumeAuthInfo | null>;
}

// A block head is read access: a reader of an encrypted volume asks replicas for it (head-route.ts).
const userRoutes: ReadonlyMap<string, 'ro' | 'rw'> = new Map([['GET /v1/blocks', 'ro'], ['GET /v1/block-head', 'ro'], ['POST /v1/block-heads', 'ro'], ['POST /v1/block-range', 'ro'], ['PUT /v1/blocks', 'rw'], ['DELETE /v1/blocks', 'rw']]);

export class BlockAuth {
  private readonly authenticator: Authenticator;
  private readonly volumes = new Map<string, { info: VolumeAuthInfo | null; atMs: number }>();

  constructor(private readonly o: BlockAuthOptions) {
    this.authenticator = new Authenticator({ nodeTokenHash: hashToken(o.nodeToken), lookup: o.lookup });
  }

  /** Throws (and audits) unless the request may go on; `parts` are the decoded path segments. */
  async admit(req: http.IncomingMessage, route: string, parts: string[]): Promise<void> {
    if (route === 'GET /healthz') return;
    let p: Principal | null = null;
    const object = parts[2] ?? null;
    const want = userRoutes.get(route);
    try {
      p = await this.authenticator.authenticate(req.headers.authorization);
      if (p.kind === 'node') return;
      // Metrics name every tenant's volumes.
      if (route === 'GET /metrics') { requireClusterWide(p, 'read /metrics'); return; }
      if (want === undefined) requireNeed(p, 'node', `call ${route} on the block port`);
      requireNeed(p, want === 'ro' ? 'read' : 'write', want === 'ro' ? 'read blocks' : 'write blocks');
      await this.checkVolume(p, object ?? '', want ?? 'rw');
      if (want === 'rw') this.record(p, req, route, object, null);
    } catch (err) {
      // Refused before its body was read: drain it so the connection stays usable.
      req.resume();
      this.record(p, req, route, object, err);
      throw err;
    }
  }

  /** Audits a refusal the block server made after admitting the request (a node certificate acting for another node). */
  denied(req: http.IncomingMessage, route: string, object: string | null, err: unknown): void {
    this.record({ kind: 'node' }, req, route, object, err);
  }

  private async checkVolume(p: Principal, volumeId: string, want: 'ro' | 'rw'): Promise<void> {
    const now = Date.now();
    let hit = this.volumes.get(volumeId);
    if (hit === undefined || now - hit.atMs >= volumeCacheTtlMs) {
      hit = { info: await this.o.volume(volumeId), atMs: now };
      this.volumes.delete(volumeId);
      this.volumes.set(volumeId, hit);
      if (this.volumes.size > maxCachedVolumes) this.volumes.delete(this.volumes.keys().next().value as string);
    }
    if (hit.info === null) throw hiddenVolume(volumeId);
    requireVolumeAccess(p, { ...hit.info, name: volumeId }, want);
  }

  private record(p: Principal | null, req: http.IncomingMessage, route: string, object: string | null, err: unknown): void {
    const code = err === null ? null : isGalleonError(err) ? err.code : ErrorCode.INTERNAL;
    this.o.audit.record({
      user: p === null ? null : principalName(p), tenant: p === null ? null : tenantOf(p), verb: `block:${route.slice(0, 64)}`, object: object?.slice(0, 128) ?? null,
      outcome: err === null ? 'ok' : isDenial(err) ? 'denied' : 'failed', code, source: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`,
    });
  }
}

/** Volume lookups for BlockAuth over any getVolume (not found → null). */
export function volumeLookup(getVolume: (id: string) => Promise<VolumeAuthInfo>): (id: string) => Promise<VolumeAuthInfo | null> {
  return async (id) => {
    try {
      const v = await getVolume(id);
      return { name: v.name, ...(v.tenant === undefined ? {} : { tenant: v.tenant }), ...(v.policy === undefined ? {} : { policy: v.policy }) };
    } catch (err) {
      if (err instanceof GalleonError && err.code === ErrorCode.VOLUME_NOT_FOUND) return null;
      throw err;
    }
  };
}
