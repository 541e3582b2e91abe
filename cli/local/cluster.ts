/**
 * A local development cluster: N daemons on loopback, everything (storage, logs, pid files,
 * ports) under one folder, described by `<dir>/cluster.json`. Node 1 starts a new cluster; the
 * others join it one at a time (one membership change at a time) and are promoted to voters.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { folderError, makeFolder } from '../lib/folder.js';
import { dirname, join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import type { ClusterStatus } from '../../proto/metadata-types.js';
import { AdminClient } from '../lib/admin-client.js';
import { spawnDetachedDaemon } from '../lib/spawn-daemon.js';
import { pickPorts } from './ports.js';
import { isAbsentOrEmpty, purgeClusterDir, writeUpMarker } from './purge.js';
import { isProcessAlive as isAlive, logFileName, readPidFile } from '../daemon/pidfile.js';
import type { FailoverTimings } from '../daemon/config.js';
import { adminTokenFileName } from '../lib/token-source.js';

/** The user `galleon up` makes as the first admin of a cluster that requires tokens. */
export const adminUserName = 'admin';
/** The same name as the daemon's default (cli/daemon/config.ts), kept here so `up` does not load the daemon's config module. */
export const defaultNodeTokenFileName = 'node-token';
import { httpUrl, undiciConnectOptions, type TlsMaterial } from '../../proto/tls.js';
import { loadTlsDir, localClientTlsDir } from '../lib/tls.js';
import { ensureLocalPki } from './tls-setup.js';

export const clusterFileName = 'cluster.json';
export const maxLocalNodes = 7;
/** Default ports when free: binds 8080.., admin 8090.. (node 1's admin is the CLI's default). */
export const defaultBindPort = 8080;
export const defaultIpcPort = 8090;
export const defaultDataPort = 8070;
export const clusterReadyTimeoutMs = 60_000;
export const stopGraceMs = 10_000;
const pollIntervalMs = 100;

export interface LocalNode {
  id: string;
  pid: number;
  storagePath: string;
  bindAddress: string;
  ipcAddress: string;
  dataAddress: string;
  logFile: string;
  /** Where this node mounts every volume (`<dir>/mnt/<node>`); absent in clusters made before mounts. */
  mountPoint?: string;
}

export interface LocalCluster {
  dir: string;
  createdAtMs: number;
  targetVoters: number;
  /** The --daemon-address to use (node 1's admin address). */
  daemonAddress: string;
  nodes: LocalNode[];
  /** Failover timings every node runs with (absent: the daemon defaults). */
  timings?: FailoverTimings;
  /** Issue #12: the nodes require tokens (`<dir>/node-token`; the admin's in `<dir>/admin-token`). Absent: an older, open cluster. */
  auth?: boolean;
  /** Mutual TLS between nodes and with the CLI (`<dir>/tls`); false with `up --insecure-plaintext`, absent in clusters made before TLS (plaintext). */
  tls?: boolean;
}

export async function readClusterFile(dir: string): Promise<LocalCluster | null> {
  try {
    return JSON.parse(await readFile(join(dir, clusterFileName), 'utf8')) as LocalCluster;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') throw folderError(err, 'cluster folder', dir);
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `${join(dir, clusterFileName)} is unreadable: ${(err as Error).message}`, {
      hint: `stop any daemons left there and remove the folder (galleon down --purge --dir ${dir})`,
    });
  }
}

async function writeClusterFile(cluster: LocalCluster): Promise<void> {
  const file = join(cluster.dir, clusterFileName);
  await writeFile(`${file}.tmp`, `${JSON.stringify(cluster, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, pollIntervalMs));
  }
  throw new GalleonError(ErrorCode.TIMEOUT, `${what} did not happen within ${timeoutMs / 1000} s (${last})`, { hint: 'see the galleon.log files under the cluster folder' });
}

/** The operator's client certificate of a TLS cluster (written by ensureLocalPki), null for a plaintext one. */
export async function localClientTls(cluster: LocalCluster): Promise<TlsMaterial | null> {
  return cluster.tls === true ? loadTlsDir(localClientTlsDir(cluster.dir), 'cli') : null;
}


async function healthy(ipcAddress: string, tls: TlsMaterial | null): Promise<boolean> {
  const connect = undiciConnectOptions(tls);
  const dispatcher = connect === undefined ? undefined : new Agent({ connect });
  try {
    const res = await request(`${httpUrl(ipcAddress, tls)}/healthz`, { headersTimeout: 2_000, bodyTimeout: 2_000, ...(dispatcher === undefined ? {} : { dispatcher }) });
    await res.body.dump();
    return res.statusCode === 200;
  } finally {
    await dispatcher?.close();
  }
}

/** Ready: a leader, every node a member, voters up to the target, every node a registered data node. */
function isReady(s: ClusterStatus, nodeCount: number, targetVoters: number): boolean {
  const voters = s.members.filter((m) => m.role === 'voter').length;
  const dataUp = s.dataNodes.filter((n) => n.state === 'up').length;
  return s.leaderId !== null && s.members.length === nodeCount && voters === Math.min(nodeCount, targetVoters) && dataUp === nodeCount;
}

async function liveNodes(cluster: LocalCluster): Promise<LocalNode[]> {
  const pids = await Promise.all(cluster.nodes.map(runningPid));
  return cluster.nodes.filter((_, i) => pids[i] !== null);
}

export interface UpOptions {
  dir: string;
  nodes: number;
  /** null: defaults when free, else OS-chosen; 0: all OS-chosen; P: P.. for binds, P+100.. admin, P+200.. data. */
  basePort: number | null;
  /** Already validated (config.ts resolveFailoverTimings); absent keeps what the cluster had. */
  timings?: FailoverTimings;
  /** A new cluster requires tokens unless this is false (`galleon up --no-auth`); an existing one keeps its mode. */
  auth?: boolean;
  /** A new cluster without TLS (`up --insecure-plaintext`, development only); an existing cluster keeps its mode. */
  insecurePlaintext?: boolean;
  onProgress?: (line: string) => void;
}

export interface UpResult {
  cluster: LocalCluster;
  alreadyUp: boolean;
  /** Nodes of an existing cluster that were down and were started again (all of them after `down`). */
  restarted: string[];
  /** The cluster was created by this call (not restarted, not already up). */
  fresh: boolean;
  status: ClusterStatus;
}

export const mountDirName = 'mnt';

/**
 * The cluster key file every node of the folder shares (`--key-file`): node 1 makes it (mode
 * 0600) when it starts the new cluster, before the others start (cli/daemon/keys.ts).
 */
export const localKeyFileName = 'cluster.key';

function daemonArgs(n: LocalNode, peers: string[], targetVoters: number, timings: FailoverTimings | undefined, auth: string | null, tls: boolean): string[] {
  const args = [...(tls ? [] : ['--insecure-plaintext']), '--node-id', n.id, '--storage-path', n.storagePath, '--bind-address', n.bindAddress, '--ipc-address', n.ipcAddress, '--data-address', n.dataAddress, '--target-voters', String(targetVoters)];
  args.push('--key-file', join(dirname(n.storagePath), localKeyFileName));
  if (n.mountPoint !== undefined) args.push('--mount-point', n.mountPoint);
  if (auth !== null) args.push('--auth', '--node-token-file', auth);
  if (peers.length > 0) args.push('--peer-addresses', peers.join(','));
  if (timings !== undefined) {
    args.push('--heartbeat-interval-ms', String(timings.heartbeatIntervalMs), '--lease-ttl-ms', String(timings.leaseTtlMs), '--data-node-down-after-ms', String(timings.dataNodeDownAfterMs));
  }
  return args;
}

/**
 * Stopped with `galleon down`, or some nodes died: start those on their own storage and ports
 * (their Raft state makes them rejoin as before; the running ones are left alone). Returns their ids.
 */
async function restartDownNodes(cluster: LocalCluster, alive: readonly LocalNode[], opts: UpOptions): Promise<string[]> {
  const progress = opts.onProgress ?? (() => undefined);
  const dir = resolve(opts.dir);
  if (alive.length > 0 && opts.timings !== undefined && JSON.stringify(opts.timings) !== JSON.stringify(cluster.timings)) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `the cluster in ${dir} is partly up with other failover timings`, {
      hint: `run \`galleon down --dir ${opts.dir}\` first, then \`galleon up\` with the new timings`,
    });
  }
  const running = new Set(alive.map((n) => n.id));
  const down = cluster.nodes.filter((n) => !running.has(n.id));
  progress(alive.length === 0
    ? `Restarting the ${cluster.nodes.length}-node cluster in ${dir}`
    : `Restarting ${down.map((n) => n.id).join(', ')} of the ${cluster.nodes.length}-node cluster in ${dir} (${[...running].join(', ')} running)`);
  if (opts.timings !== undefined) cluster.timings = opts.timings;
  const tls = cluster.tls === true ? await ensureLocalPki(dir, cluster.nodes, progress) : null;
  for (const n of down) {
    n.mountPoint ??= join(dir, mountDirName, n.id);
    const started = await spawnDetachedDaemon(daemonArgs(n, [], cluster.targetVoters, cluster.timings, nodeTokenFileOf(cluster), tls !== null), n.storagePath, n.ipcAddress, tls, nodeTokenFileOf(cluster));
    n.pid = started.pid;
    progress(`  ${n.id} (pid ${n.pid}) admin ${n.ipcAddress}`);
  }
  return down.map((n) => n.id);
}

export async function clusterUp(opts: UpOptions): Promise<UpResult> {
  const dir = resolve(opts.dir);
  const progress = opts.onProgress ?? (() => undefined);
  let cluster = await readClusterFile(dir);
  let restarted: string[] = [];
  const fresh = cluster === null;

  if (cluster !== null) {
    const alive = await liveNodes(cluster);
    if (alive.length === cluster.nodes.length) {
      if (opts.timings !== undefined && JSON.stringify(opts.timings) !== JSON.stringify(cluster.timings)) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `the cluster in ${dir} is already up with other failover timings`, {
          hint: `run \`galleon down --dir ${opts.dir}\` first, then \`galleon up\` with the new timings`,
        });
      }
      const status = await (await clusterClient(cluster)).route<ClusterStatus>('clusterStatus', {});
      return { cluster, alreadyUp: true, restarted: [], fresh: false, status };
    }
    restarted = await restartDownNodes(cluster, alive, opts);
  } else {
    if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > maxLocalNodes) {
      throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `cannot start ${opts.nodes} nodes`, { hint: `use --nodes 1 to ${maxLocalNodes}` });
    }
    const createdDir = await isAbsentOrEmpty(dir);
    await makeFolder(dir, 'cluster folder');
    await writeUpMarker(dir, { createdDir, createdAtMs: Date.now() });
    const count = opts.nodes;
    const idx = [...Array(count).keys()];
    const base = opts.basePort;
    const prefer = (first: number): (number | null)[] => idx.map((i) => (base === 0 ? null : (base ?? first) + i));
    const taken = new Set<number>();
    const bindPorts = await pickPorts(prefer(base === null ? defaultBindPort : base), taken);
    const ipcPorts = await pickPorts(prefer(base === null ? defaultIpcPort : base + 100), taken);
    const dataPorts = await pickPorts(prefer(base === null ? defaultDataPort : base + 200), taken);
    const targetVoters = count >= 5 ? 5 : 3;
    const nodes: LocalNode[] = idx.map((i) => {
      const id = `node${i + 1}`;
      const storagePath = join(dir, id);
      return {
        id, pid: 0, storagePath, bindAddress: `127.0.0.1:${bindPorts[i]}`, ipcAddress: `127.0.0.1:${ipcPorts[i]}`, dataAddress: `127.0.0.1:${dataPorts[i]}`,
        logFile: join(storagePath, logFileName), mountPoint: join(dir, mountDirName, id),
      };
    });
    const useTls = opts.insecurePlaintext !== true;
    cluster = {
      dir, createdAtMs: Date.now(), targetVoters, daemonAddress: nodes[0]?.ipcAddress ?? '', nodes, ...(opts.timings === undefined ? {} : { timings: opts.timings }),
      auth: opts.auth !== false, tls: useTls,
    };
    progress(`Starting a ${count}-node cluster in ${dir}${useTls ? ' (mutual TLS)' : ' (PLAINTEXT: --insecure-plaintext, development only)'}`);
    const tls = useTls ? await ensureLocalPki(dir, nodes, progress) : null;
    for (const [i, n] of nodes.entries()) {
      const peers = i === 0 ? [] : [nodes[0]?.bindAddress ?? ''];
      const started = await spawnDetachedDaemon(daemonArgs(n, peers, targetVoters, cluster.timings, nodeTokenFileOf(cluster), useTls), n.storagePath, n.ipcAddress, tls, nodeTokenFileOf(cluster));
      n.pid = started.pid;
      // Written after every node, so `galleon down` can stop what started even if a later node fails.
      await writeClusterFile(cluster);
      await waitUntil(`${n.id} becoming healthy`, clusterReadyTimeoutMs, async () => ((await healthy(n.ipcAddress, tls)) ? true : null));
      progress(`  ${n.id} (pid ${n.pid}) bind ${n.bindAddress} admin ${n.ipcAddress}${i === 0 ? ' — new cluster' : ' — joined'}`);
    }
  }
  await writeClusterFile(cluster);
  const c = cluster;
  const client = await clusterClient(c);
  const tls = await localClientTls(c);
  const status = await waitUntil('the cluster becoming ready (a leader, all members voters)', clusterReadyTimeoutMs, async () => {
    const s = await client.route<ClusterStatus>('clusterStatus', {}, undefined, 2_000);
    return isReady(s, c.nodes.length, c.targetVoters) && (await Promise.all(c.nodes.map((n) => healthy(n.ipcAddress, tls)))).every(Boolean) ? s : null;
  });
  if (fresh && c.auth === true) await bootstrapAdmin(c);
  return { cluster: c, alreadyUp: false, restarted, fresh, status };
}

/** The node credential's file of a cluster that requires tokens, else null. */
export function nodeTokenFileOf(c: LocalCluster): string | null {
  return c.auth === true ? join(c.dir, defaultNodeTokenFileName) : null;
}

/**
 * `up`'s own calls (status, the first volume, mounts) go with the node credential, read from
 * its 0600 file: the local bootstrap path of issue #12.
 */
export async function clusterClient(c: LocalCluster, address = c.daemonAddress): Promise<AdminClient> {
  const file = nodeTokenFileOf(c);
  const tls = await localClientTls(c);
  if (file === null) return new AdminClient(address, { tls });
  return new AdminClient(address, { tls, token: (await readFile(file, 'utf8')).trim() });
}

/** The first admin (user `admin`, role admin) and its token in `<dir>/admin-token` (0600), which the CLI then uses. */
async function bootstrapAdmin(c: LocalCluster): Promise<void> {
  const client = await clusterClient(c);
  const users = await client.route<{ name: string }[]>('userList', {});
  if (!users.some((u) => u.name === adminUserName)) await client.route<unknown>('userCreate', {}, { name: adminUserName, role: 'admin' });
  const made = await client.route<{ token: string }>('tokenCreate', {}, { user: adminUserName });
  await writeFile(join(c.dir, adminTokenFileName), `${made.token}\n`, { mode: 0o600 });
}

export interface DownResult {
  dir: string;
  stopped: { id: string; pid: number; signal: 'SIGTERM' | 'SIGKILL' | null }[];
  /** The folder itself was removed (--purge, and nothing but galleon's files was in it). */
  purged: boolean;
  /** With --purge: what was removed and what was kept (names in the folder; see purge.ts). */
  removed: string[];
  kept: string[];
}

async function stopPid(pid: number): Promise<'SIGTERM' | 'SIGKILL' | null> {
  if (!isAlive(pid)) return null;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + stopGraceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'SIGTERM';
    await new Promise((r) => setTimeout(r, pollIntervalMs));
  }
  process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, pollIntervalMs));
  return 'SIGKILL';
}

/**
 * A node's pid file (written by the daemon itself, removed when it stops) is the truth: it
 * follows a node restarted by hand, and a pid reused by another program is never signalled.
 */
async function runningPid(n: LocalNode): Promise<number | null> {
  const pid = await readPidFile(n.storagePath);
  return pid !== null && isAlive(pid) ? pid : null;
}

/** How long `down` waits for each node's `vfs sync` before stopping it anyway. */
export const downSyncTimeoutMs = 20_000;

export async function clusterDown(dirOption: string, purge: boolean): Promise<DownResult> {
  const dir = resolve(dirOption);
  // An unreadable cluster.json names no daemon to stop; --purge still removes what `up` made (purge.ts).
  const cluster = await readClusterFile(dir).catch((err: unknown) => {
    if (purge && isGalleonError(err, ErrorCode.FAILED_PRECONDITION)) return null;
    throw err;
  });
  const stopped: DownResult['stopped'] = [];
  if (cluster !== null) {
    // Write-back (vfs/README.md): new files closed in the last second are committed while every
    // node still runs — stopping all at once, a node's unmount could find no quorum left.
    await Promise.all(cluster.nodes.map(async (n) => {
      if (await runningPid(n) === null) return;
      const client = await clusterClient(cluster, n.ipcAddress);
      await client.route<unknown>('vfsSync', {}, {}, downSyncTimeoutMs).catch(() => undefined);
    }));
    stopped.push(...await Promise.all(cluster.nodes.map(async (n) => {
      const pid = await runningPid(n);
      return { id: n.id, pid: pid ?? n.pid, signal: pid === null ? null : await stopPid(pid) };
    })));
  }
  if (!purge) return { dir, stopped, purged: false, removed: [], kept: [] };
  const p = await purgeClusterDir(dir, cluster === null ? null : cluster.nodes.map((n) => n.storagePath));
  return { dir, stopped, purged: p.removedDir, removed: p.removed, kept: p.kept };
}

/** The first volume `galleon up` creates in a new cluster; every node mounts it. */
export const firstVolume = { name: 'demo', size: '1G', accessMode: 'ReadWriteMany' } as const;
export const mountReadyTimeoutMs = 60_000;

export interface NodeMount { node: string; mountPoint: string; state: string; error: string | null }

interface MountRow { volume: string; mountPoint: string; state: string; error: string | null }

/** Creates the first volume when the cluster has none (on fewer than 3 nodes: fast-local-ssd, one replica per node). Returns whether it did. */
export async function ensureFirstVolume(cluster: LocalCluster): Promise<boolean> {
  const client = await clusterClient(cluster);
  const volumes = await client.route<{ name: string }[]>('volumeList', {});
  if (volumes.length > 0) return false;
  // One or two nodes cannot hold the default class's replicated writes: a local-disk class then.
  const small = cluster.nodes.length < 3 ? { storageClass: 'fast-local-ssd', replicas: cluster.nodes.length } : {};
  await client.route<unknown>('volumeCreate', {}, { ...firstVolume, ...small });
  return true;
}

/** Waits until every node has tried to mount `volume` (mounted, refused or failed) and says how each went. */
export async function waitForMounts(cluster: LocalCluster, volume: string): Promise<NodeMount[]> {
  return waitUntil(`volume ${volume} mounting on every node`, mountReadyTimeoutMs, async () => {
    const rows = await Promise.all(cluster.nodes.map(async (n) => {
      const list = await (await clusterClient(cluster, n.ipcAddress)).route<MountRow[]>('vfsList', {}, undefined, 2_000);
      const r = list.find((m) => m.volume === volume);
      return r === undefined ? null : { node: n.id, mountPoint: r.mountPoint, state: r.state, error: r.error };
    }));
    return rows.every((r) => r !== null) ? rows : null;
  });
}
