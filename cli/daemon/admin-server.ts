/**
 * The daemon's admin endpoint: HTTP/JSON on the IPC address (node:http). One route per CLI
 * operation, plus /healthz and /metrics. Errors travel as `{ error: SerializedError }` with the
 * HTTP status of their code. It holds no state: everything is asked of the DaemonHost.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, httpStatusOf, isGalleonError } from '../../proto/errors.js';
import type { MetadataApi, Member, StorageClassSpec } from '../../proto/metadata-types.js';
import type { DaemonConfig, DaemonStatus, LeaveResult } from './types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import { readBlock, writeBlock } from './block-ops.js';
import type { MountManager } from '../../vfs/manager/mount-manager.js';
import { vfsStatus } from '../../vfs/manager/status.js';

/** Large enough for a base64 block of the biggest block size (4 MiB). */
export const maxRequestBodyBytes = 8 * 1024 * 1024;
/** On stop, requests in flight get this long to finish before their connections are cut. */
export const shutdownGraceMs = 5_000;

/** What the admin endpoint needs from the daemon it serves. */
export interface DaemonHost {
  /** The metadata API this node offers; throws UNAVAILABLE when the role is not running. */
  metadata(): MetadataApi;
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
}

type Params = string[];
type Handler = (params: Params, body: unknown) => Promise<unknown>;
interface Route { method: string; pattern: RegExp; handler: Handler }

function field<T>(body: unknown, key: string, check: (v: unknown) => v is T, what: string): T {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  if (!check(value)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `request body needs "${key}" (${what})`, { hint: 'use the galleon CLI, or send JSON as it does' });
  return value;
}
const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isSize = (v: unknown): v is number | string => typeof v === 'number' || (typeof v === 'string' && v !== '');
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isLabelChanges = (v: unknown): v is Record<string, string | null> =>
  isObject(v) && Object.values(v).every((x) => x === null || typeof x === 'string');

/** A volume created through this daemon without a block size gets the daemon's `--block-size`. */
function withDefaultBlockSize(spec: Record<string, unknown>, blockSizeBytes: number): Record<string, unknown> {
  return spec.blockSize === undefined ? { ...spec, blockSize: blockSizeBytes } : spec;
}

function routes(host: DaemonHost): Route[] {
  const api = (): MetadataApi => host.metadata();
  return [
    { method: 'GET', pattern: /^\/v1\/volumes$/, handler: () => api().listVolumes() },
    { method: 'POST', pattern: /^\/v1\/volumes$/, handler: (_, body) => api().createVolume(withDefaultBlockSize(isObject(body) ? body : {}, host.config().blockSizeBytes)) },
    { method: 'GET', pattern: /^\/v1\/volumes\/([^/]+)$/, handler: ([ref]) => api().getVolume(ref ?? '') },
    { method: 'DELETE', pattern: /^\/v1\/volumes\/([^/]+)$/, handler: ([ref]) => api().deleteVolume(ref ?? '') },
    { method: 'POST', pattern: /^\/v1\/volumes\/([^/]+)\/expand$/, handler: ([ref], body) => api().expandVolume(ref ?? '', field(body, 'size', isSize, 'bytes or a size like 2G')) },
    {
      method: 'PATCH', pattern: /^\/v1\/volumes\/([^/]+)\/labels$/,
      handler: ([ref], body) => api().updateVolumeLabels(ref ?? '', field(body, 'labels', isLabelChanges, 'an object of key to a string, or null to remove')),
    },
    {
      method: 'PUT', pattern: /^\/v1\/volumes\/([^/]+)\/inodes\/([^/]+)\/blocks\/([^/]+)$/,
      handler: ([ref, inode, blockNo], body) => writeBlock(api(), host.blocks(), ref ?? '', blockNo, {
        dataBase64: field(body, 'dataBase64', (v): v is string => typeof v === 'string', 'the block bytes, base64'),
        inode: Number(inode),
        ...(isObject(body) && typeof body.concern === 'string' ? { concern: body.concern } : {}),
      }),
    },
    { method: 'GET', pattern: /^\/v1\/volumes\/([^/]+)\/inodes\/([^/]+)\/blocks\/([^/]+)$/, handler: ([ref, inode, blockNo]) => readBlock(api(), host.blocks(), ref ?? '', blockNo, inode) },
    { method: 'GET', pattern: /^\/v1\/storage-classes$/, handler: () => api().listStorageClasses() },
    { method: 'POST', pattern: /^\/v1\/storage-classes$/, handler: (_, body) => { field(body, 'name', isString, 'the class name'); return api().createStorageClass(body as StorageClassSpec); } },
    { method: 'GET', pattern: /^\/v1\/storage-classes\/([^/]+)$/, handler: ([name]) => api().getStorageClass(name ?? '') },
    { method: 'DELETE', pattern: /^\/v1\/storage-classes\/([^/]+)$/, handler: async ([name]) => { await api().deleteStorageClass(name ?? ''); return { deleted: name }; } },
    { method: 'GET', pattern: /^\/v1\/nodes$/, handler: () => api().listDataNodes() },
    { method: 'GET', pattern: /^\/v1\/cluster\/status$/, handler: () => api().clusterStatus() },
    { method: 'GET', pattern: /^\/v1\/cluster\/peers$/, handler: async () => (await api().clusterStatus()).members },
    { method: 'POST', pattern: /^\/v1\/cluster\/join$/, handler: (_, body) => host.join(field(body, 'address', isString, 'host:port of a member')) },
    { method: 'POST', pattern: /^\/v1\/cluster\/leave$/, handler: (_, body) => host.leave(isObject(body) && isBool(body.force) ? body.force : false) },
    { method: 'GET', pattern: /^\/v1\/daemon\/status$/, handler: () => host.status() },
    { method: 'GET', pattern: /^\/v1\/daemon\/config$/, handler: () => Promise.resolve(host.config()) },
    { method: 'POST', pattern: /^\/v1\/daemon\/stop$/, handler: async () => { const s = await host.status(); host.requestStop(); return { nodeId: s.nodeId, pid: s.pid, stopping: true }; } },
    { method: 'POST', pattern: /^\/v1\/daemon\/restart$/, handler: () => host.restart() },
    { method: 'GET', pattern: /^\/v1\/vfs\/mounts$/, handler: () => Promise.resolve(host.mounts().list()) },
    {
      method: 'POST', pattern: /^\/v1\/vfs\/mounts$/,
      handler: (_, body) => host.mounts().mount(field(body, 'volume', isString, 'a volume name or id'), field(body, 'mountPoint', isString, 'an absolute directory'),
        isObject(body) && isBool(body.readOnly) ? body.readOnly : false, isObject(body) && isBool(body.raw) ? body.raw : false,
        isObject(body) && typeof body.cacheTimeoutSec === 'number' ? body.cacheTimeoutSec : undefined),
    },
    { method: 'POST', pattern: /^\/v1\/vfs\/unmount$/, handler: (_, body) => host.mounts().unmount(field(body, 'target', isString, 'a volume name or a mount point')) },
    { method: 'GET', pattern: /^\/v1\/vfs\/mounts\/([^/]+)$/, handler: ([ref]) => { const s = host.mounts().status(ref ?? ''); return vfsStatus(api(), s.info, s.mount); } },
    { method: 'POST', pattern: /^\/v1\/vfs\/sync$/, handler: (_, body) => host.mounts().sync(isObject(body) && isString(body.volume) ? body.volume : null) },
  ];
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > maxRequestBodyBytes) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `request body is larger than ${maxRequestBodyBytes} bytes`, { hint: 'send a smaller request' });
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

export interface AdminServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startAdminServer(host: DaemonHost, listen: { host: string; port: number }, logger: Logger): Promise<AdminServer> {
  const table = routes(host);
  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    try {
      if (req.method === 'GET' && path === '/healthz') {
        const h = await host.health();
        send(res, h.ok ? 200 : 503, h);
        return;
      }
      if (req.method === 'GET' && path === '/metrics') {
        const m = await host.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.text);
        return;
      }
      let pathMatched = false;
      for (const route of table) {
        const m = route.pattern.exec(path);
        if (m === null) continue;
        pathMatched = true;
        if (route.method !== req.method) continue;
        const body = await readBody(req);
        const params = m.slice(1).map((p) => decodeURIComponent(p));
        send(res, 200, await route.handler(params, body));
        return;
      }
      const unknown = new GalleonError(ErrorCode.INVALID_ARGUMENT, pathMatched ? `${req.method ?? '?'} is not allowed on ${path}` : `no admin route ${path}`, {
        hint: 'this galleon CLI and daemon may be different versions',
      });
      send(res, pathMatched ? 405 : 404, { error: unknown.toJSON() });
    } catch (err) {
      const gerr = isGalleonError(err) ? err : new GalleonError(ErrorCode.INTERNAL, `admin request failed: ${(err as Error).message}`, { cause: err });
      if (gerr.code === ErrorCode.INTERNAL || gerr.code === ErrorCode.INVARIANT_VIOLATION) logger.error({ err, path }, 'admin request failed');
      else logger.debug({ code: gerr.code, path }, 'admin request refused');
      if (!res.headersSent) send(res, httpStatusOf(gerr.code), { error: gerr.toJSON() });
    }
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
