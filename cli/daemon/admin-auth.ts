/**
 * The admin endpoint's authentication, authorization and audit (issue #12), as one hook the
 * admin server calls around each route (admin-server.ts `dispatch`).
 *
 *  - Every route but /healthz needs `authorization: Bearer <token>` (401 UNAUTHENTICATED).
 *  - `routeNeeds` gives each route of the table the role it needs (403 PERMISSION_DENIED); a new
 *    route without an entry does not compile.
 *  - Routes backed by the metadata API call it through `guardedApi`: the daemon sends the node
 *    credential, and the same guard as the gRPC edge (metadata/service/auth-guard.ts) applies the
 *    caller's tenant to each call (another tenant's volume answers 404 exactly as a missing one).
 *  - Block reads and writes (a snapshot's too) and mounts also need the volume's access (its policy, proto/auth.ts).
 *  - Every state-changing route a user calls, and every refused request, is one audit event.
 */
import type { IncomingMessage } from 'node:http';
import { GalleonError, ErrorCode, isGalleonError } from '../../proto/errors.js';
import { isDenial, principalName, requireClusterWide, requireNeed, requireVolumeAccess, tenantOf, type AuditSink, type Need, type Principal } from '../../proto/auth.js';
import { Authenticator, hashToken } from '../../proto/auth-token.js';
import type { AuthApi } from '../../proto/auth-api.js';
import type { MetadataApi } from '../../proto/metadata-types.js';
import { guardCall, lookupsOver } from '../../metadata/service/auth-guard.js';
import { adminRoutes, type AdminRouteName } from '../lib/admin-routes.js';

export type AdminApi = MetadataApi & AuthApi;

/**
 * Routes that act on every tenant (membership, daemons, the node's mounts and audit log): a user
 * with a tenant is refused them whatever its role.
 */
export const clusterWideRoutes: ReadonlySet<AdminRouteName> = new Set<AdminRouteName>([
  'nodeRemove', 'clusterJoin', 'clusterLeave', 'daemonStop', 'daemonRestart', 'vfsList', 'vfsStatus', 'vfsUnmount', 'vfsSync', 'auditList',
  // Data keys are every tenant's: listing and rotating them stays with tenantless admins.
  'keyList', 'keyRotate',
  // Backup targets and policies are cluster-wide (dataplane/backup/README.md says why); backups are the tenant's.
  'backupTargetList', 'backupTargetAdd', 'backupTargetRemove', 'backupPolicyList', 'backupPolicyCreate', 'backupPolicyPlan', 'backupPolicyDelete',
]);

/**
 * What a route's body can add to its role: a backup restore with `sourceKeyFile` makes the daemon
 * (root) open a file of the caller's choosing on its disk, so it needs admin, not write.
 */
function requireBodyNeeds(p: Principal, call: RouteCall): void {
  if (call.name === 'backupRestore' && typeof call.body === 'object' && call.body !== null && (call.body as { sourceKeyFile?: unknown }).sourceKeyFile !== undefined) {
    requireNeed(p, 'admin', 'restore with --source-key-file (the daemon reads that file on its own disk)');
    requireClusterWide(p, 'restore with --source-key-file (the daemon reads that file on its own disk)');
  }
}

/** The role each admin route needs, and whether a user's call of it is audited (it changes state). */
export const routeNeeds: Record<AdminRouteName, { need: Need; audited: boolean }> = {
  volumeList: { need: 'read', audited: false }, volumeGet: { need: 'read', audited: false },
  volumeCreate: { need: 'write', audited: true }, volumeDelete: { need: 'write', audited: true },
  volumeExpand: { need: 'write', audited: true }, volumeLabel: { need: 'write', audited: true },
  blockWrite: { need: 'write', audited: true }, blockRead: { need: 'read', audited: false },
  storageClassList: { need: 'read', audited: false }, storageClassGet: { need: 'read', audited: false },
  storageClassCreate: { need: 'write', audited: true }, storageClassDelete: { need: 'write', audited: true },
  nodeList: { need: 'read', audited: false }, nodeRemove: { need: 'admin', audited: true },
  clusterStatus: { need: 'read', audited: false }, clusterPeers: { need: 'read', audited: false },
  clusterJoin: { need: 'admin', audited: true }, clusterLeave: { need: 'admin', audited: true },
  daemonStatus: { need: 'read', audited: false }, daemonConfig: { need: 'read', audited: false },
  daemonStop: { need: 'admin', audited: true }, daemonRestart: { need: 'admin', audited: true },
  vfsList: { need: 'read', audited: false }, vfsStatus: { need: 'read', audited: false },
  vfsMount: { need: 'write', audited: true }, vfsUnmount: { need: 'write', audited: true }, vfsSync: { need: 'write', audited: true },
  userList: { need: 'admin', audited: false }, userCreate: { need: 'admin', audited: true }, userDelete: { need: 'admin', audited: true },
  tokenList: { need: 'admin', audited: false }, tokenCreate: { need: 'admin', audited: true }, tokenRevoke: { need: 'admin', audited: true },
  volumePolicy: { need: 'admin', audited: true }, auditList: { need: 'admin', audited: false },
  keyList: { need: 'admin', audited: false }, keyRotate: { need: 'admin', audited: true },
  snapshotCreate: { need: 'write', audited: true }, snapshotList: { need: 'read', audited: false },
  volumeSnapshots: { need: 'read', audited: false }, snapshotGet: { need: 'read', audited: false },
  snapshotDelete: { need: 'write', audited: true }, snapshotBlockRead: { need: 'read', audited: false },
  volumeClone: { need: 'write', audited: true }, volumeRestore: { need: 'write', audited: true },
  operationGet: { need: 'read', audited: false },
  backupTargetList: { need: 'read', audited: false }, backupTargetAdd: { need: 'admin', audited: true },
  backupTargetRemove: { need: 'admin', audited: true }, backupList: { need: 'read', audited: false },
  backupCreate: { need: 'write', audited: true }, backupGet: { need: 'read', audited: false },
  backupDelete: { need: 'write', audited: true }, backupRestore: { need: 'write', audited: true },
  backupVerify: { need: 'write', audited: true }, backupJob: { need: 'read', audited: false },
  backupCancel: { need: 'write', audited: true }, backupPolicyList: { need: 'read', audited: false },
  backupPolicyCreate: { need: 'admin', audited: true }, backupPolicyPlan: { need: 'read', audited: false },
  backupPolicyDelete: { need: 'admin', audited: true },
};

export interface AdminAuthOptions {
  nodeToken: string;
  audit: AuditSink;
  /** The metadata API this daemon reaches (with the node credential). */
  api: () => AdminApi;
}

export interface RouteCall {
  name: AdminRouteName;
  params: Record<string, string>;
  body: unknown;
}

export class AdminAuth {
  private readonly authenticator: Authenticator;

  constructor(private readonly o: AdminAuthOptions) {
    // A stale read of one member: no Raft round per token (proto/auth-token.ts says the bound).
    this.authenticator = new Authenticator({ nodeTokenHash: hashToken(o.nodeToken), lookup: (hash) => o.api().authLookup(hash, { stale: true }) });
  }

  /**
   * Runs one route call as its caller: authenticated and role-checked before its body is read
   * (an anonymous caller cannot make the daemon read 8 MiB), then volume access, then the route.
   */
  async around(req: IncomingMessage, name: AdminRouteName, params: Record<string, string>, readBody: () => Promise<unknown>,
    run: (api: () => AdminApi, body: unknown, tenant: string | null) => Promise<unknown>): Promise<unknown> {
    let p: Principal | null = null;
    const call: RouteCall = { name, params, body: undefined };
    const rule = routeNeeds[name];
    try {
      p = await this.authenticator.authenticate(req.headers.authorization);
      requireNeed(p, rule.need, `use ${adminRoutes[name].command}`);
      if (clusterWideRoutes.has(name)) requireClusterWide(p, `use ${adminRoutes[name].command}`);
      const caller = p;
      call.body = await readBody();
      requireBodyNeeds(caller, call);
      const api = (): AdminApi => (caller.kind === 'node' ? this.o.api() : guardedApi(this.o.api(), caller));
      await this.checkVolumeAccess(caller, call, api);
      const value = await run(api, call.body, tenantOf(caller));
      if (rule.audited && caller.kind === 'user') this.record(caller, req, call, null);
      return value;
    } catch (err) {
      if (isDenial(err) || (rule.audited && p?.kind === 'user')) this.record(p, req, call, err);
      throw err;
    }
  }

  /** Refuses requests to routes the table does not have (and /metrics) without a valid token. */
  async requireAny(req: IncomingMessage, what: string): Promise<void> {
    let p: Principal | null = null;
    try {
      p = await this.authenticator.authenticate(req.headers.authorization);
      requireNeed(p, 'read', what);
      // Metrics name every tenant's volumes.
      requireClusterWide(p, what);
    } catch (err) {
      this.record(p, req, { name: what as AdminRouteName, params: {}, body: undefined }, err);
      throw err;
    }
  }

  /** Blocks and mounts: the volume's access policy, on top of the role (tenant checks come with getVolume). */
  private async checkVolumeAccess(p: Principal, call: RouteCall, api: () => AdminApi): Promise<void> {
    if (p.kind === 'node') return;
    const ref = call.name === 'blockWrite' || call.name === 'blockRead' ? call.params.ref : call.name === 'vfsMount' ? (call.body as { volume?: string }).volume
      // A snapshot's blocks are its volume's data: the same read access (the guarded lookup hides another tenant's).
      : call.name === 'snapshotBlockRead' && call.params.ref !== undefined ? (await api().getSnapshot(call.params.ref)).volumeId : undefined;
    if (ref === undefined) return;
    const vol = await api().getVolume(ref);
    const readOnly = call.name === 'blockRead' || call.name === 'snapshotBlockRead' || (call.name === 'vfsMount' && (call.body as { readOnly?: boolean }).readOnly === true);
    requireVolumeAccess(p, vol, readOnly ? 'ro' : 'rw');
  }

  private record(p: Principal | null, req: IncomingMessage, call: RouteCall, err: unknown): void {
    const code = err === null ? null : isGalleonError(err) ? err.code : ErrorCode.INTERNAL;
    const object = call.params.ref ?? call.params.name ?? call.params.id ?? objectOf(call.body);
    this.o.audit.record({
      user: p === null ? null : principalName(p), tenant: p === null ? null : tenantOf(p), verb: `admin:${call.name}`, object,
      outcome: err === null ? 'ok' : isDenial(err) ? 'denied' : 'failed', code, source: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`,
    });
  }
}

function objectOf(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return null;
  const b = body as Record<string, unknown>;
  const v = b.name ?? b.volume ?? b.user ?? b.target;
  return typeof v === 'string' ? v.slice(0, 128) : null;
}

/** The metadata API as `p` may use it: each call checked (and its answer filtered) by the guard. */
export function guardedApi(api: AdminApi, p: Principal): AdminApi {
  const raw = api as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const look = lookupsOver((method, args) => {
    const fn = raw[method];
    if (fn === undefined) throw new GalleonError(ErrorCode.INTERNAL, `no metadata method ${method}`);
    return fn.apply(api, args);
  });
  return new Proxy(api, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof prop !== 'string' || typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        const g = await guardCall(p, prop, args, look);
        return g.filter(await fn.apply(target, g.args));
      };
    },
  });
}
