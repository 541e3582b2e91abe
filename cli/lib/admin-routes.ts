/**
 * The daemon's admin routes, one table for both sides: the admin server (cli/daemon/admin-server.ts)
 * must give every entry a handler (a mapped type: a missing or an extra one does not compile),
 * and the CLI's client (admin-client.ts `route()`) can only name an entry, never a method and path
 * of its own — so a route cannot exist on one side only.
 *
 * `body` names the request body's zod schema in cli/daemon/admin-schemas.ts (`bodySchemas`), by
 * name rather than by reference: this file is loaded by every CLI command, and importing zod here
 * would cost each of them its load time for schemas only the daemon runs.
 */
import { invariant } from '../../proto/errors.js';

export type AdminMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The body schemas of admin-schemas.ts `bodySchemas` (checked there with `satisfies`). */
export type AdminBodyName =
  | 'volumeSpec' | 'expand' | 'labels' | 'blockWrite' | 'storageClass' | 'join' | 'leave'
  | 'vfsMount' | 'vfsUnmount' | 'vfsSync' | 'none'
  | 'snapshotCreate' | 'snapshotDelete' | 'clone' | 'restore'
  | 'backupTarget' | 'backupCreate' | 'backupRestore' | 'backupVerify' | 'backupPolicy'
  | 'userSpec' | 'tokenSpec' | 'policy' | 'auditQuery';

export interface AdminRouteSpec {
  method: AdminMethod;
  /** `:name` is a path parameter: one segment, percent-encoded by the client. */
  path: string;
  /** The body it reads (checked against that schema), or absent: it reads none. */
  body?: AdminBodyName;
  /** The CLI command that uses it (error messages name it). */
  command: string;
  /** Largest body it reads, when not the JSON default (maxJsonBodyBytes). */
  bodyLimit?: 'blockWrite';
}

export const adminRoutes = {
  volumeList: { method: 'GET', path: '/v1/volumes', command: 'volume list' },
  volumeCreate: { method: 'POST', path: '/v1/volumes', command: 'volume create', body: 'volumeSpec' },
  volumeGet: { method: 'GET', path: '/v1/volumes/:ref', command: 'volume get' },
  volumeDelete: { method: 'DELETE', path: '/v1/volumes/:ref', command: 'volume delete', body: 'none' },
  volumeExpand: { method: 'POST', path: '/v1/volumes/:ref/expand', command: 'volume expand', body: 'expand' },
  volumeLabel: { method: 'PATCH', path: '/v1/volumes/:ref/labels', command: 'volume label', body: 'labels' },
  blockWrite: { method: 'PUT', path: '/v1/volumes/:ref/inodes/:inode/blocks/:block', command: 'volume write-block', body: 'blockWrite', bodyLimit: 'blockWrite' },
  blockRead: { method: 'GET', path: '/v1/volumes/:ref/inodes/:inode/blocks/:block', command: 'volume read-block' },
  storageClassList: { method: 'GET', path: '/v1/storage-classes', command: 'storage-class list' },
  storageClassCreate: { method: 'POST', path: '/v1/storage-classes', command: 'storage-class create', body: 'storageClass' },
  storageClassGet: { method: 'GET', path: '/v1/storage-classes/:name', command: 'storage-class get' },
  storageClassDelete: { method: 'DELETE', path: '/v1/storage-classes/:name', command: 'storage-class delete', body: 'none' },
  nodeList: { method: 'GET', path: '/v1/nodes', command: 'node list' },
  nodeRemove: { method: 'DELETE', path: '/v1/nodes/:id', command: 'node remove', body: 'none' },
  clusterStatus: { method: 'GET', path: '/v1/cluster/status', command: 'cluster status' },
  clusterPeers: { method: 'GET', path: '/v1/cluster/peers', command: 'cluster peers' },
  clusterJoin: { method: 'POST', path: '/v1/cluster/join', command: 'cluster join', body: 'join' },
  clusterLeave: { method: 'POST', path: '/v1/cluster/leave', command: 'cluster leave', body: 'leave' },
  daemonStatus: { method: 'GET', path: '/v1/daemon/status', command: 'daemon status' },
  daemonConfig: { method: 'GET', path: '/v1/daemon/config', command: 'daemon config' },
  daemonStop: { method: 'POST', path: '/v1/daemon/stop', command: 'daemon stop', body: 'none' },
  daemonRestart: { method: 'POST', path: '/v1/daemon/restart', command: 'daemon restart', body: 'none' },
  vfsList: { method: 'GET', path: '/v1/vfs/mounts', command: 'vfs list' },
  vfsMount: { method: 'POST', path: '/v1/vfs/mounts', command: 'vfs mount', body: 'vfsMount' },
  vfsStatus: { method: 'GET', path: '/v1/vfs/mounts/:ref', command: 'vfs status' },
  vfsUnmount: { method: 'POST', path: '/v1/vfs/unmount', command: 'vfs unmount', body: 'vfsUnmount' },
  vfsSync: { method: 'POST', path: '/v1/vfs/sync', command: 'vfs sync', body: 'vfsSync' },
  keyList: { method: 'GET', path: '/v1/keys', command: 'key list' },
  keyRotate: { method: 'POST', path: '/v1/keys/rotate', command: 'key rotate', body: 'none' },
  snapshotCreate: { method: 'POST', path: '/v1/snapshots', command: 'snapshot create', body: 'snapshotCreate' },
  snapshotList: { method: 'GET', path: '/v1/snapshots', command: 'snapshot list' },
  volumeSnapshots: { method: 'GET', path: '/v1/volumes/:ref/snapshots', command: 'snapshot list' },
  snapshotGet: { method: 'GET', path: '/v1/snapshots/:ref', command: 'snapshot get' },
  snapshotDelete: { method: 'POST', path: '/v1/snapshots/:ref/delete', command: 'snapshot delete', body: 'snapshotDelete' },
  snapshotBlockRead: { method: 'GET', path: '/v1/snapshots/:ref/inodes/:inode/blocks/:block', command: 'volume read-block' },
  volumeClone: { method: 'POST', path: '/v1/snapshots/:ref/clone', command: 'volume clone', body: 'clone' },
  volumeRestore: { method: 'POST', path: '/v1/volumes/:ref/restore', command: 'volume restore', body: 'restore' },
  operationGet: { method: 'GET', path: '/v1/operations/:id', command: 'operation get' },
  backupTargetList: { method: 'GET', path: '/v1/backup-targets', command: 'backup-target list' },
  backupTargetAdd: { method: 'POST', path: '/v1/backup-targets', command: 'backup-target add', body: 'backupTarget' },
  backupTargetRemove: { method: 'DELETE', path: '/v1/backup-targets/:name', command: 'backup-target remove', body: 'none' },
  backupList: { method: 'GET', path: '/v1/backups', command: 'backup list' },
  backupCreate: { method: 'POST', path: '/v1/backups', command: 'backup create', body: 'backupCreate' },
  backupGet: { method: 'GET', path: '/v1/backups/:id', command: 'backup get' },
  backupDelete: { method: 'DELETE', path: '/v1/backups/:id', command: 'backup delete', body: 'none' },
  backupRestore: { method: 'POST', path: '/v1/backups/:id/restore', command: 'backup restore', body: 'backupRestore' },
  backupVerify: { method: 'POST', path: '/v1/backups/:id/verify', command: 'backup verify', body: 'backupVerify' },
  backupJob: { method: 'GET', path: '/v1/backup-jobs/:id', command: 'backup create' },
  backupCancel: { method: 'POST', path: '/v1/backup-jobs/:id/cancel', command: 'backup cancel', body: 'none' },
  backupPolicyList: { method: 'GET', path: '/v1/backup-policies', command: 'backup policy list' },
  backupPolicyCreate: { method: 'POST', path: '/v1/backup-policies', command: 'backup policy create', body: 'backupPolicy' },
  backupPolicyPlan: { method: 'POST', path: '/v1/backup-policies/plan', command: 'backup policy create --dry-run', body: 'backupPolicy' },
  backupPolicyDelete: { method: 'DELETE', path: '/v1/backup-policies/:id', command: 'backup policy delete', body: 'none' },
  userList: { method: 'GET', path: '/v1/users', command: 'user list' },
  userCreate: { method: 'POST', path: '/v1/users', command: 'user create', body: 'userSpec' },
  userDelete: { method: 'DELETE', path: '/v1/users/:name', command: 'user delete', body: 'none' },
  tokenList: { method: 'GET', path: '/v1/tokens', command: 'token list' },
  tokenCreate: { method: 'POST', path: '/v1/tokens', command: 'token create', body: 'tokenSpec' },
  tokenRevoke: { method: 'DELETE', path: '/v1/tokens/:id', command: 'token revoke', body: 'none' },
  volumePolicy: { method: 'PUT', path: '/v1/volumes/:ref/policy', command: 'volume policy', body: 'policy' },
  /** A read with a body (since, user, limit): POST, so that the filter need not be a query string. */
  auditList: { method: 'POST', path: '/v1/audit/search', command: 'audit list', body: 'auditQuery' },
} as const satisfies Record<string, AdminRouteSpec>;

export type AdminRouteName = keyof typeof adminRoutes;

type ParamsOf<P extends string> =
  P extends `${string}:${infer N}/${infer Rest}` ? N | ParamsOf<`/${Rest}`> : P extends `${string}:${infer N}` ? N : never;

/** The path parameters a route needs, by name (`{ ref: 'db-data' }`). */
export type AdminRouteParams<N extends AdminRouteName> = Record<ParamsOf<(typeof adminRoutes)[N]['path']>, string>;

/**
 * The path of a route with its parameters filled in, each percent-encoded as one segment. A
 * missing or an unknown parameter is a bug of the caller (an invariant), never of the user's input.
 */
export function adminPath(name: AdminRouteName, params: Readonly<Record<string, string>>): string {
  const names = adminRouteParamNames(name);
  const extra = Object.keys(params).filter((p) => !names.includes(p));
  invariant(extra.length === 0, `admin route ${name} has no path parameter ${extra.join(', ')}`);
  return adminRoutes[name].path.replace(/:([A-Za-z]+)/g, (_, p: string) => {
    const v = params[p];
    invariant(v !== undefined, `admin route ${name} needs the path parameter ${p}`);
    return encodeURIComponent(v);
  });
}

/** The names of a route's path parameters, in order. */
export function adminRouteParamNames(name: AdminRouteName): string[] {
  return [...adminRoutes[name].path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] ?? '');
}

/** A path template as a regular expression: each `:name` matches one non-empty segment. */
export function adminRoutePattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/:[A-Za-z]+/g, '([^/]+)')}$`);
}
