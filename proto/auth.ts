/**
 * Who may do what (issue #12): the types of users, tokens, principals and volume access policies,
 * and the decisions on them as pure functions of their inputs (no I/O, clock or randomness: the
 * caller passes `nowMs`). Every edge — the daemon's admin endpoint, the metadata API on gRPC, the
 * block port — authenticates a caller to a `Principal` (auth-token.ts) and then asks these
 * functions; so one rule table decides for all three, and tests can check it exhaustively.
 *
 * Roles: viewer reads; operator also changes volumes, classes and data; admin also manages users,
 * tokens, cluster membership and daemons. A node (the cluster's own credential) may do everything,
 * including the internal calls (heartbeats, leases, replication, the namespace of mounts).
 * Tenants: a user with a tenant sees only its tenant's volumes (others answer "not found", the
 * same line as a volume that does not exist) and its tenant's classes plus the shared ones.
 */
import { ErrorCode, GalleonError } from './errors.js';

export const roles = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof roles)[number];
export type VolumeAccess = 'none' | 'ro' | 'rw';

export interface User {
  name: string;
  role: Role;
  /** null: the user belongs to no tenant and sees every tenant's objects. */
  tenant: string | null;
  createdAtMs: number;
}

/** A token as the state machine keeps it: only the SHA-256 of the secret, never the secret. */
export interface TokenRecord {
  id: string;
  user: string;
  /** Hex SHA-256 of the whole token string. */
  hash: string;
  createdAtMs: number;
  /** null: never expires. */
  expiresAtMs: number | null;
  revoked: boolean;
}

/** A token as listed (its hash is not shown). */
export type TokenInfo = Omit<TokenRecord, 'hash'>;

/** One entry of a volume's access policy: `user:<name>` or `role:<role>` gets ro or rw. */
export interface PolicyEntry {
  subject: string;
  access: 'ro' | 'rw';
}

export type Principal =
  | { kind: 'node' }
  | { kind: 'user'; user: string; role: Role; tenant: string | null; tokenId: string };

/** What a call needs, from least to most. `node` is never granted to a user. */
export const needs = ['read', 'write', 'admin', 'node'] as const;
export type Need = (typeof needs)[number];

const roleGrants: Record<Role, readonly Need[]> = {
  viewer: ['read'],
  operator: ['read', 'write'],
  admin: ['read', 'write', 'admin'],
};

/** The name audit events and error messages use for a principal. */
export function principalName(p: Principal): string {
  return p.kind === 'node' ? 'node' : p.user;
}

export function tenantOf(p: Principal): string | null {
  return p.kind === 'node' ? null : p.tenant;
}

/** Refuses (PERMISSION_DENIED) a call whose need the principal's role does not grant. */
export function requireNeed(p: Principal, need: Need, what: string): void {
  if (p.kind === 'node') return;
  if (roleGrants[p.role].includes(need)) return;
  throw new GalleonError(ErrorCode.PERMISSION_DENIED, `user ${p.user} (role ${p.role}) may not ${what}`, {
    hint: need === 'node' ? 'this call is for cluster nodes only' : `ask an admin for a user with role ${minimumRole(need)} or higher`,
    details: { need },
  });
}

/**
 * Refuses a user of a tenant a call that acts on every tenant (membership, stopping daemons,
 * removing nodes, the node's mounts and audit log): a tenant touches nothing of another's.
 */
export function requireClusterWide(p: Principal, what: string): void {
  if (p.kind === 'node' || p.tenant === null) return;
  throw new GalleonError(ErrorCode.PERMISSION_DENIED, `user ${p.user} of tenant ${p.tenant} may not ${what}: it acts on every tenant`, {
    hint: 'ask a cluster-wide admin (a user without a tenant)',
  });
}

function minimumRole(need: Need): Role {
  return roles.find((r) => roleGrants[r].includes(need)) ?? 'admin';
}

/** Whether a principal may see an object owned by `tenant` (volumes: a tenantless volume is not shared). */
export function seesTenant(p: Principal, tenant: string | null | undefined): boolean {
  const mine = tenantOf(p);
  return mine === null || (tenant ?? null) === mine;
}

/** Classes without a tenant (the built-ins, an admin's) are shared by every tenant. */
export function seesClass(p: Principal, tenant: string | null | undefined): boolean {
  return tenant === null || tenant === undefined || seesTenant(p, tenant);
}

/**
 * What a principal may do with a volume's blocks and mounts. Without a policy: the role decides
 * (viewer ro, operator and admin rw). With one: the user's own entry, else its role's, else none;
 * an admin keeps rw so that no policy can lock the volume away from everyone.
 */
export function volumeAccess(p: Principal, volume: { tenant?: string | null; policy?: readonly PolicyEntry[] }): VolumeAccess {
  if (p.kind === 'node') return 'rw';
  if (!seesTenant(p, volume.tenant)) return 'none';
  if (p.role === 'admin') return 'rw';
  const policy = volume.policy ?? [];
  if (policy.length === 0) return p.role === 'viewer' ? 'ro' : 'rw';
  const own = policy.find((e) => e.subject === `user:${p.user}`);
  const byRole = policy.find((e) => e.subject === `role:${p.role}`);
  return (own ?? byRole)?.access ?? 'none';
}

/** Refuses a block read (`ro`) or write (`rw`) the volume's access does not allow. */
export function requireVolumeAccess(p: Principal, volume: { name: string; tenant?: string | null; policy?: readonly PolicyEntry[] }, want: 'ro' | 'rw'): void {
  const has = volumeAccess(p, volume);
  if (has === 'rw' || (has === 'ro' && want === 'ro')) return;
  if (has === 'none' && !seesTenant(p, volume.tenant)) throw hiddenVolume(volume.name);
  throw new GalleonError(ErrorCode.PERMISSION_DENIED, `user ${principalName(p)} may not ${want === 'rw' ? 'write to' : 'read'} volume ${volume.name}`, {
    hint: has === 'ro' ? 'its access policy gives you read-only access; mount it with -o ro' : 'its access policy does not list you; ask an admin (galleon volume policy)',
  });
}

/** The same line as a volume that does not exist, so a tenant learns nothing of another's. */
export function volumeNotFound(ref: string): GalleonError {
  return new GalleonError(ErrorCode.VOLUME_NOT_FOUND, `volume ${JSON.stringify(ref)} not found`, { hint: 'list volumes with: galleon volume list' });
}

/**
 * Another tenant's object, answered as not found; marked (a property toJSON does not send) so
 * the edge audits it as a denial while the caller sees exactly the not-found line.
 */
export function hiddenVolume(ref: string): GalleonError {
  return markDenied(volumeNotFound(ref));
}

export function markDenied<E extends GalleonError>(err: E): E {
  Object.defineProperty(err, 'denied', { value: true, enumerable: false });
  return err;
}

export function unauthenticated(message: string): GalleonError {
  return new GalleonError(ErrorCode.UNAUTHENTICATED, message, {
    hint: 'pass a valid token with --token or GALLEON_TOKEN (galleon up writes one to .galleon/admin-token; an admin creates more with galleon token create)',
  });
}

/**
 * The principal of a token record and its user at `nowMs`, or the reason it is refused.
 * Pure: the caller found the record by the token's hash.
 */
export function principalOfToken(token: TokenRecord | null, user: User | null, nowMs: number): Principal {
  if (token === null) throw unauthenticated('the token is not known to this cluster');
  if (token.revoked) throw unauthenticated(`token ${token.id} was revoked`);
  if (token.expiresAtMs !== null && token.expiresAtMs <= nowMs) throw unauthenticated(`token ${token.id} expired`);
  if (user === null) throw unauthenticated(`the user of token ${token.id} was deleted`);
  return { kind: 'user', user: user.name, role: user.role, tenant: user.tenant, tokenId: token.id };
}

/** One structured audit event: every mutating call of a user and every refused call. */
export interface AuditEvent {
  /** ISO time the edge decided. */
  time: string;
  id: string;
  user: string | null;
  tenant: string | null;
  /** `admin:<route>`, `metadata:<method>` or `block:<op>`. */
  verb: string;
  /** The object named (volume, class, user, token id), or null. */
  object: string | null;
  outcome: 'ok' | 'denied' | 'failed';
  /** The error code of a refused or failed call. */
  code: string | null;
  /** Why a denial was made, where the code alone does not say (`certificate revoked`, `node certificate mismatch`). */
  reason?: string;
  source: string;
  node: string;
}

/** Where edges write audit events (cli/daemon/audit-log.ts keeps them in a bounded file). */
export interface AuditSink {
  record(event: Omit<AuditEvent, 'time' | 'id' | 'node'>): void;
}

/** Whether an error refused the caller (audited as denied) rather than failed its call. */
export function isDenial(err: unknown): boolean {
  if (!(err instanceof GalleonError)) return false;
  return err.code === ErrorCode.UNAUTHENTICATED || err.code === ErrorCode.PERMISSION_DENIED || (err as { denied?: boolean }).denied === true;
}
