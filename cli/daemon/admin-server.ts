/**
 * The daemon's admin endpoint: HTTP/JSON on the IPC address (node:http). One route per CLI
 * operation, plus /healthz and /metrics. Errors travel as `{ error: SerializedError }` with the
 * HTTP status of their code. It holds no state: everything is asked of the DaemonHost.
 *
 * The edge is total (issue #10): the target is parsed without `new URL` (proto/http-edge.ts),
 * every body is checked against its zod schema (admin-schemas.ts) within a size limit, and
 * state-changing requests from another site are refused (refuseCrossSite).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, httpStatusOf, isGalleonError } from '../../proto/errors.js';
import { decodePathSegment, isJsonContentType, isStateChangingMethod, parseRequestTarget } from '../../proto/http-edge.js';
import type { BackupTargetSpec, Member, StorageClassSpec } from '../../proto/metadata-types.js';
import { formatHostPort } from '../lib/address.js';
import { createHttpEdgeServer, type TlsMaterial } from '../../proto/tls.js';
import type { z } from 'zod';
import { adminRouteParamNames, adminRoutePattern, adminRoutes } from '../lib/admin-routes.js';
import type { AdminBodyName, AdminRouteName, AdminRouteParams, AdminRouteSpec } from '../lib/admin-routes.js';
import { bodySchemas, maxJsonBodyBytes, parseBody } from './admin-schemas.js';
import type { DaemonConfig, DaemonStatus, LeaveResult } from './types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import { readBlock, writeBlock } from './block-ops.js';
import { createSnapshot, deleteSnapshot, flushApiOf, restoreVolume } from './snapshot-ops.js';
import type { SnapshotHost } from './snapshot-ops.js';
import type { PruneRunner } from './prune-runner.js';
import { OperationLog, operationNotFound } from './operations.js';
import { backupIdOfSnapshot } from '../../dataplane/backup/logic/orphans.js';
import type { MountManager } from '../../vfs/manager/mount-manager.js';
import { vfsStatus } from '../../vfs/manager/status.js';
import type { DaemonKeys } from './keys.js';
import { markDenied } from '../../proto/auth.js';
import { defaultStorageClass } from '../../metadata/state/logic/storage-classes.js';
import { BackupService } from '../../dataplane/backup/service.js';
import { ownsBackup, requireOwnBackup } from './backup-scope.js';
import { createPolicy, type PolicyBody } from '../../dataplane/backup/schedule.js';
import type { AdminAuth, AdminApi } from './admin-auth.js';
import type { AuditLog } from './audit-log.js';
import { authHandlers } from './auth-routes.js';

/** Large enough for a base64 block of the biggest block size (4 MiB). */
export const maxRequestBodyBytes = 8 * 1024 * 1024;
/** On stop, requests in flight get this long to finish before their connections are cut. */
export const shutdownGraceMs = 5_000;

/** What the admin endpoint needs from the daemon it serves. */
export interface DaemonHost {
  /** The metadata API this node offers; throws UNAVAILABLE when the role is not running. */
  metadata(): AdminApi;
  /** Authentication, authorization and audit of the routes (admin-auth.ts); null: the endpoint is open. */
  auth(): AdminAuth | null;
  /** This node's audit log (null without authentication). */
  auditLog(): AuditLog | null;
  status(): Promise<DaemonStatus>;
  config(): DaemonConfig;
  health(): Promise<{ ok: boolean; reason: string }>;
  /** Starts a graceful stop after the response has gone out. */
  requestStop(): void;
  restart(): Promise<DaemonStatus>;
  join(address: string): Promise<Member[]>;
  leave(force: boolean): Promise<LeaveResult>;
  /** The data plane's client (block commands); throws when this node has no data role. */
  blocks(): BlockClient;
  /** Prometheus text of the daemon's own and its roles' metrics. */
  metrics(): Promise<{ contentType: string; text: string }>;
  /** The node's mount manager (vfs/manager). */
  mounts(): MountManager;
  /** The node's key providers (data keys of encrypted volumes, `key rotate`). */
  keys(): DaemonKeys;
  /** Backups, restores, verifications (dataplane/backup/service.ts). */
  backups(): BackupService;
  /** Prune rounds after snapshot deletes and restores (prune-runner.ts); absent: one round each, no retry. */
  prunes?(): PruneRunner | null;
}

/** The parsed body of a route, as its schema (named in the route table) outputs it. */
type BodyOf<N extends AdminRouteName> = (typeof adminRoutes)[N] extends { body: infer B extends AdminBodyName } ? z.output<(typeof bodySchemas)[B]> : undefined;
/** One handler per entry of the route table: a route missing here, or one not in the table, does not compile. */
export type Handlers = { [N in AdminRouteName]: (params: AdminRouteParams<N>, body: BodyOf<N>) => Promise<unknown> };

interface Route {
  name: AdminRouteName;
  method: string;
  pattern: RegExp;
  params: string[];
  /** Largest body this route reads; undefined = it takes none (any body is drained unread). */
  maxBodyBytes?: number;
  /** The body checked against the route's schema. */
  parse: (body: unknown) => unknown;
  /** `tenant`: the caller's (null: tenantless, or auth off). */
  handle: (api: () => AdminApi, params: Record<string, string>, body: unknown, tenant: string | null) => Promise<unknown>;
}

/** A volume created through this daemon without a block size gets the daemon's `--block-size`. */
function withDefaultBlockSize(spec: Record<string, unknown>, blockSizeBytes: number): Record<string, unknown> {
  return spec.blockSize === undefined ? { ...spec, blockSize: blockSizeBytes } : spec;
}

function prunesOf(host: DaemonHost): { prunes?: PruneRunner } {
  const runner = host.prunes?.() ?? null;
  return runner === null ? {} : { prunes: runner };
}

/**
 * `api` is the metadata API as the caller may use it (admin-auth.ts `guardedApi`); `tenant` the
 * caller's, for the backup routes (the backup service runs with the node's credential).
 */
function handlers(host: DaemonHost, api: () => AdminApi, logger: Logger, tenant: string | null, ops: OperationLog): Handlers {
  const own = (id: string): Promise<void> => requireOwnBackup(host.backups(), tenant, id);
  const snaps = (): SnapshotHost => ({
    // The flush requests go with the node's credential (namespace calls are for nodes); the caller
    // was checked for the snapshot itself through `api`.
    api: api(), log: logger, flush: () => flushApiOf(host.metadata()),
    blocks: () => host.blocks(), nodeApi: () => host.metadata(),
    post: (address, path, body, timeoutMs) => host.blocks().nodePost(address, path, body, timeoutMs),
    ops, ...prunesOf(host),
  });
  return {
    snapshotCreate: async (_, b) => {
      // Those names mark a backup run's own snapshot: one made by hand would be deleted at the next start.
      if (b.name !== undefined && backupIdOfSnapshot(b.name) !== null) {
        throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot name ${b.name} is reserved for the snapshots backup runs take`, { hint: 'choose another --name' });
      }
      return createSnapshot(snaps(), b);
    },
    snapshotList: () => api().listSnapshots(),
    volumeSnapshots: ({ ref }) => api().listSnapshots(ref),
    snapshotGet: ({ ref }) => api().getSnapshot(ref),
    snapshotDelete: ({ ref }, b) => deleteSnapshot(snaps(), ref, b ?? {}),
    snapshotBlockRead: ({ ref, inode, block }) => readBlock(api(), host.blocks(), ref, block, inode, ref),
    volumeClone: async ({ ref }, b) => {
      const source = await api().getVolume((await api().getSnapshot(ref)).volumeId);
      const keyed = await host.keys().withDataKey(api(), { name: b.name, storageClass: source.storageClass }, defaultStorageClass);
      return api().cloneVolume(ref, b.name, keyed.dataKey);
    },
    volumeRestore: ({ ref }, b) => restoreVolume(snaps(), ref, b.snapshot, { wait: b.wait }),
    // A tenant's user sees the operations on its tenant's volumes; another's answers as a missing one.
    operationGet: async ({ id }) => {
      const view = ops.get(id);
      if (tenant !== null) await api().getVolume(view.volumeId).catch(() => { throw markDenied(operationNotFound(id)); });
      return view;
    },
    volumeList: () => api().listVolumes(),
    // A volume of a class with encryption gets a fresh data key, wrapped here: Raft sees only the wrap.
    volumeCreate: async (_, b) => api().createVolume(await host.keys().withDataKey(api(), withDefaultBlockSize(b, host.config().blockSizeBytes), defaultStorageClass)),
    volumeGet: async ({ ref }) => {
      const vol = await api().getVolume(ref);
      // The freeing after an in-place restore run by this daemon, while it remembers it.
      const op = ops.latestFor(vol.id);
      return op?.kind === 'volume-restore' ? { ...vol, operation: op } : vol;
    },
    volumeDelete: ({ ref }) => api().deleteVolume(ref),
    volumeExpand: ({ ref }, b) => api().expandVolume(ref, b.size),
    volumeLabel: ({ ref }, b) => api().updateVolumeLabels(ref, b.labels),
    blockWrite: ({ ref, inode, block }, b) =>
      writeBlock(api(), host.blocks(), ref, block, { dataBase64: b.dataBase64, inode, ...(b.concern === undefined ? {} : { concern: b.concern }) }),
    blockRead: ({ ref, inode, block }) => readBlock(api(), host.blocks(), ref, block, inode),
    storageClassList: () => api().listStorageClasses(),
    storageClassCreate: (_, b) => api().createStorageClass(b as StorageClassSpec),
    storageClassGet: ({ name }) => api().getStorageClass(name),
    storageClassDelete: async ({ name }) => { await api().deleteStorageClass(name); return { deleted: name }; },
    nodeList: () => api().listDataNodes(),
    nodeRemove: ({ id }) => api().removeDataNode(id),
    clusterStatus: () => api().clusterStatus(),
    clusterPeers: async () => (await api().clusterStatus()).members,
    clusterJoin: (_, b) => host.join(b.address),
    clusterLeave: (_, b) => host.leave(b?.force ?? false),
    daemonStatus: () => host.status(),
    daemonConfig: () => Promise.resolve(host.config()),
    daemonStop: async () => { const s = await host.status(); host.requestStop(); return { nodeId: s.nodeId, pid: s.pid, stopping: true }; },
    daemonRestart: () => host.restart(),
    vfsList: () => Promise.resolve(host.mounts().list()),
    vfsMount: (_, b) => host.mounts().mount(b.volume, b.mountPoint, b.readOnly ?? false, b.raw ?? false, b.cacheTimeoutSec),
    // The node's own mount, read with the node's API (namespace statistics are node-only calls); the
    // route itself is for cluster-wide users (admin-auth.ts).
    vfsStatus: ({ ref }) => { const s = host.mounts().status(ref); return vfsStatus(host.metadata(), s.info, s.mount); },
    vfsUnmount: (_, b) => host.mounts().unmount(b.target),
    vfsSync: (_, b) => host.mounts().sync(b?.volume ?? null),
    keyList: () => host.keys().list(host.metadata()),
    keyRotate: () => host.keys().rotate(host.metadata()),
    backupTargetList: async () => (await api().listBackupTargets()).map((t) => BackupService.redact(t)),
    backupTargetAdd: async (_, b) => BackupService.redact(await host.backups().addTarget(b as BackupTargetSpec)),
    backupTargetRemove: async ({ name }) => BackupService.redact(await api().removeBackupTarget(name)),
    backupList: async () => (await host.backups().list()).filter((x) => ownsBackup(tenant, x.tenant)),
    backupCreate: async (_, b) => {
      // The guarded lookups hide another tenant's volume or snapshot; the ids they give cannot name a namesake made since.
      const vol = tenant === null ? null : await api().getVolume(b.volume);
      const snap = tenant === null || b.snapshot === undefined ? null : await api().getSnapshot(b.snapshot);
      return host.backups().startBackup(vol?.id ?? b.volume, b.target, b.strategy, snap?.id ?? b.snapshot);
    },
    backupGet: async ({ id }) => { await own(id); return host.backups().get(id); },
    backupDelete: async ({ id }) => { await own(id); return host.backups().delete(id); },
    backupRestore: async ({ id }, b) => {
      await own(id);
      return host.backups().startRestore(id, b.name, { ...(b.sourceKeyFile === undefined ? {} : { sourceKeyFile: b.sourceKeyFile }), ...(tenant === null ? {} : { tenant }) });
    },
    backupVerify: async ({ id }, b) => { await own(id); return host.backups().startVerify(id, b.samplePercent ?? 100); },
    backupJob: ({ id }) => Promise.resolve(host.backups().job(id, tenant)),
    backupCancel: ({ id }) => Promise.resolve(host.backups().cancel(id, tenant)),
    backupPolicyList: () => api().listBackupPolicies(),
    backupPolicyCreate: (_, b) => createPolicy(api(), b as PolicyBody, Date.now()),
    backupPolicyPlan: (_, b) => host.backups().retentionPlan(b.volume, b.target, { keepDaily: b.keepDaily ?? 7, keepWeekly: b.keepWeekly ?? 4, keepMonthly: b.keepMonthly ?? 3 }),
    backupPolicyDelete: ({ id }) => api().deleteBackupPolicy(id),
    ...authHandlers(host, api),
  };
}

/**
 * The route table (cli/lib/admin-routes.ts) joined with its handlers; bodies checked by their
 * schema first. The handlers are bound per request to the metadata API as that caller may use it.
 */
function routes(host: DaemonHost, logger: Logger): Route[] {
  const ops = new OperationLog();
  return (Object.keys(adminRoutes) as AdminRouteName[]).map((name) => {
    const spec: AdminRouteSpec = adminRoutes[name];
    const bodyName = spec.body;
    return {
      name, method: spec.method, pattern: adminRoutePattern(spec.path), params: adminRouteParamNames(name),
      ...(bodyName === undefined ? {} : { maxBodyBytes: spec.bodyLimit === 'blockWrite' ? maxRequestBodyBytes : maxJsonBodyBytes }),
      parse: (body) => (bodyName === undefined ? undefined : parseBody(bodySchemas[bodyName], body, spec.command)),
      handle: (api, params, body, tenant) => (handlers(host, api, logger, tenant, ops) as Record<AdminRouteName, (p: Record<string, string>, b: unknown) => Promise<unknown>>)[name](params, body),
    };
  });
}

function tooLarge(maxBytes: number): GalleonError {
  return new GalleonError(ErrorCode.INVALID_SIZE, `request body is larger than ${maxBytes} bytes`, { hint: 'send a smaller request' });
}

/** Reads and parses a JSON body of at most `maxBytes`; refuses a declared length over it before reading. */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(buf);
  }
  if (total === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'request body is not valid JSON', { hint: 'send JSON with content-type application/json' });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The origins a browser would send for a page served by this endpoint itself. A wildcard bind
 * (0.0.0.0) has no such origin: every request with an Origin is refused there.
 */
export function ownOrigins(address: AddressInfo): Set<string> {
  const port = address.port;
  const out = new Set<string>();
  for (const scheme of ['http', 'https']) {
    out.add(`${scheme}://${formatHostPort({ host: address.address, port })}`);
    if (address.address === '127.0.0.1' || address.address === '::1') {
      out.add(`${scheme}://localhost:${port}`).add(`${scheme}://127.0.0.1:${port}`).add(`${scheme}://[::1]:${port}`);
    }
  }
  return out;
}

/**
 * Cross-site request forgery guard until the admin API is authenticated: a page on another site
 * can send a simple POST (text/plain, no preflight) to a loopback port. Such requests carry a
 * foreign Origin, or lack the JSON content type that a browser cannot send cross-site without a
 * preflight this endpoint never grants. The CLI sends `application/json` and no Origin.
 */
export function refuseCrossSite(method: string | undefined, headers: IncomingMessage['headers'], origins: ReadonlySet<string>): void {
  if (!isStateChangingMethod(method)) return;
  const origin = headers.origin;
  if (origin !== undefined && !origins.has(origin)) {
    throw new GalleonError(ErrorCode.CROSS_ORIGIN_REFUSED, `refused a ${method ?? '?'} request from origin ${JSON.stringify(origin.slice(0, 128))}`, {
      hint: 'the admin endpoint takes state-changing requests only from the galleon CLI, not from web pages',
    });
  }
  if (!isJsonContentType(headers['content-type'])) {
    throw new GalleonError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `a ${method ?? '?'} request needs content-type application/json`, {
      hint: 'send JSON with content-type: application/json, as the galleon CLI does',
    });
  }
}

export interface AdminServer {
  readonly address: string;
  close(): Promise<void>;
}

/** `tls`: serve HTTPS and require a client certificate of the cluster CA (proto/tls.ts); null: plaintext. */
export async function startAdminServer(host: DaemonHost, listen: { host: string; port: number }, logger: Logger, tls: TlsMaterial | null = null): Promise<AdminServer> {
  const table = routes(host, logger);
  const server: Server = createHttpEdgeServer(tls, {}, (req, res) => {
    // handle() answers every error itself; this catches a failure of that answer (never expected).
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'admin request handler failed');
      res.destroy();
    });
  }, 'admin');

  let origins: ReadonlySet<string> = new Set();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = '?';
    try {
      const target = parseRequestTarget(req.url);
      path = target.rawPath;
      if (req.method === 'GET' && path === '/healthz') {
        const h = await host.health();
        send(res, h.ok ? 200 : 503, h);
        return;
      }
      if (req.method === 'GET' && path === '/metrics') {
        await host.auth()?.requireAny(req, 'read /metrics');
        const m = await host.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.text);
        return;
      }
      refuseCrossSite(req.method, req.headers, origins);
      await dispatch(req, res, path);
    } catch (err) {
      const gerr = isGalleonError(err) ? err : new GalleonError(ErrorCode.INTERNAL, `admin request failed: ${(err as Error).message}`, { cause: err });
      if (gerr.code === ErrorCode.INTERNAL || gerr.code === ErrorCode.INVARIANT_VIOLATION) logger.error({ err, path }, 'admin request failed');
      else logger.debug({ code: gerr.code, path }, 'admin request refused');
      if (res.headersSent) { res.destroy(); return; }
      // A body left unread (refused before or while reading it) would be parsed as the next request.
      if (!req.complete) res.setHeader('connection', 'close');
      send(res, httpStatusOf(gerr.code), { error: gerr.toJSON() });
    }
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    let pathMatched = false;
    for (const route of table) {
      const m = route.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      const values = m.slice(1).map(decodePathSegment);
      const params = Object.fromEntries(route.params.map((p, i) => [p, values[i] ?? '']));
      const read = async (): Promise<unknown> => route.parse(route.maxBodyBytes === undefined ? (req.resume(), undefined) : await readBody(req, route.maxBodyBytes));
      const auth = host.auth();
      const value = auth === null
        ? await route.handle(() => host.metadata(), params, await read(), null)
        : await auth.around(req, route.name, params, read, (api, body, tenant) => route.handle(api, params, body, tenant));
      send(res, 200, value);
      return;
    }
    const unknown = new GalleonError(ErrorCode.INVALID_ARGUMENT, pathMatched ? `${req.method ?? '?'} is not allowed on ${path}` : `no admin route ${path.slice(0, 256)}`, {
      hint: 'this galleon CLI and daemon may be different versions',
    });
    req.resume();
    send(res, pathMatched ? 405 : 404, { error: unknown.toJSON() });
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new GalleonError(ErrorCode.UNAVAILABLE, `cannot listen on ${listen.host}:${listen.port} for the admin endpoint (${err.code ?? err.message})`, {
        hint: err.code === 'EADDRINUSE' ? 'another process uses that port: pick another --ipc-address, or stop the other daemon' : 'check --ipc-address',
        cause: err,
      }));
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  origins = ownOrigins(addr);
  return {
    address: `${addr.address}:${addr.port}`,
    close: () => new Promise<void>((resolve) => {
      // Stop accepting; idle keep-alive connections go now, busy ones after their response.
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), shutdownGraceMs).unref();
    }),
  };
}
