/**
 * Test helper: real data-node processes on loopback (ephemeral ports, temp dirs), killed by
 * PID and cleaned up by `stopAll`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32c } from '@node-rs/crc32';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { httpUrl, undiciConnectOptions, type TlsMaterial } from '../../proto/tls.js';
import type { VolumePlacement } from '../../dataplane/placement.js';
import { dataNodeV8Flags } from '../../cli/lib/node-flags.js';
import { streamJournalFrames } from '../../dataplane/wire.js';
import { removeDir, tempDir, waitFor } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const mainScript = path.join(root, 'dataplane', 'server', 'main.ts');

export interface DataNodeProc {
  id: string;
  zone: string;
  dir: string;
  address: string;
  proc: ChildProcess;
}

/**
 * Mutual TLS for a TestCluster: every node's --tls-dir (issued on first use) and the test's own
 * client certificate (test/support/tls.ts makes one).
 */
export interface TestClusterTls {
  nodeDir(id: string): Promise<string>;
  client: TlsMaterial;
}

const agents = new WeakMap<TlsMaterial, Agent>();

/** undici options for a request to a node of a cluster with `tls` (nothing for plaintext); one agent per certificate. */
function dispatcherFor(tls: TlsMaterial | null): { dispatcher?: Dispatcher } {
  const connect = undiciConnectOptions(tls);
  if (tls === null || connect === undefined) return {};
  let agent = agents.get(tls);
  if (agent === undefined) {
    agent = new Agent({ connect });
    agents.set(tls, agent);
  }
  return { dispatcher: agent };
}

export class TestCluster {
  readonly nodes = new Map<string, DataNodeProc>();
  private readonly dirs: string[] = [];

  /** `tls`: the nodes run mutual TLS (their --tls-dir); absent: plaintext, as most tests want. */
  constructor(readonly tls: TestClusterTls | null = null) {}

  /** `env` is added to this node's environment only (e.g. a test-only fault hook). */
  async start(id: string, zone: string, dir?: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<DataNodeProc> {
    const dataDir = dir ?? await tempDir(`node-${id}`);
    if (dir === undefined) this.dirs.push(dataDir);
    // Opt-in node flags for the data nodes (e.g. GALLEON_DATA_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof").
    const nodeFlags = (process.env.GALLEON_DATA_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const proc = spawn(process.execPath, [...dataNodeV8Flags, ...nodeFlags, '--import', 'tsx', mainScript, '--node-id', id, '--zone', zone, '--data-dir', dataDir,
      ...(this.tls === null ? [] : ['--tls-dir', await this.tls.nodeDir(id)]), ...extraArgs], {
      cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, GALLEON_LOG_LEVEL: process.env.GALLEON_LOG_LEVEL ?? 'warn', GALLEON_EXIT_WITH_PARENT: '1', ...env },
    });
    let out = '';
    let address: string | undefined;
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"address":"([^"]+)"/.exec(out);
      if (m?.[1] !== undefined) address = m[1];
    });
    const node: DataNodeProc = { id, zone, dir: dataDir, address: '', proc };
    this.nodes.set(id, node);
    node.address = await waitFor(`data node ${id} to listen`, () => {
      if (proc.exitCode !== null) throw new Error(`data node ${id} exited with ${proc.exitCode}`);
      return address;
    }, 20_000);
    return node;
  }

  node(id: string): DataNodeProc {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  async kill(id: string): Promise<void> {
    const n = this.node(id);
    n.proc.kill('SIGKILL');
    await waitFor(`node ${id} to die`, () => n.proc.exitCode !== null || n.proc.signalCode !== null);
  }

  /** Stops a node gracefully (its store closes), so its data dir can be opened by the test. */
  async stop(id: string): Promise<void> {
    const n = this.node(id);
    if (n.proc.exitCode !== null || n.proc.signalCode !== null) return;
    n.proc.kill('SIGTERM');
    try {
      await waitFor(`node ${id} to stop`, () => n.proc.exitCode !== null || n.proc.signalCode !== null, 5000);
    } catch {
      n.proc.kill('SIGKILL');
    }
  }

  /** A placement over the running nodes (their current addresses and zones). */
  placement(volumeId: string, groups: { replicas: string[]; primary: string; epoch: number }[], zoneOverride?: string): VolumePlacement {
    return {
      volumeId, pgCount: groups.length,
      groups: groups.map((g, pg) => ({ volumeId, pg, replicas: g.replicas, primary: g.primary, epoch: g.epoch, inSync: g.replicas })),
      nodes: Object.fromEntries([...this.nodes.values()].map((n) => [n.id, { id: n.id, address: n.address, zone: zoneOverride ?? n.zone }])),
    };
  }

  async install(p: VolumePlacement, on: string[] = [...this.nodes.keys()]): Promise<void> {
    for (const id of on) {
      const tls = this.tls?.client ?? null;
      const res = await request(`${httpUrl(this.node(id).address, tls)}/v1/admin/placement`, { method: 'PUT', body: JSON.stringify(p), ...dispatcherFor(tls) });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`installing placement on ${id}: ${res.statusCode} ${text}`);
    }
  }

  async stopAll(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGKILL');
    }
    for (const n of this.nodes.values()) {
      await waitFor(`node ${n.id} to die`, () => n.proc.exitCode !== null || n.proc.signalCode !== null).catch(() => undefined);
    }
    this.nodes.clear();
    for (const d of this.dirs) await removeDir(d);
  }
}

/** GET a block straight from one node's store. */
export async function readFromNode(address: string, volumeId: string, inode: number, blockNo: number): Promise<{ status: number; data: Buffer; seq: number }> {
  const res = await request(`http://${address}/v1/blocks/${volumeId}/${inode}/${blockNo}`);
  const data = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, data, seq: Number(res.headers['x-galleon-seq']) };
}

export async function pgStates(address: string, tls: TlsMaterial | null = null): Promise<{ volumeId: string; pg: number; appliedSeq: number; highestSeq: number; epoch: number; trimmedSeq: number }[]> {
  const res = await request(`${httpUrl(address, tls)}/v1/pgs`, dispatcherFor(tls));
  return (await res.body.json()) as { volumeId: string; pg: number; appliedSeq: number; highestSeq: number; epoch: number; trimmedSeq: number }[];
}

/**
 * Every block of a PG on one node (`GET /v1/pg-blocks`: the live blocks, then the kept versions),
 * as sorted `inode/blockNo:crc32c`; with `liveOnly`, the live blocks only.
 */
export async function pgBlockEntries(address: string, volumeId: string, pg: number, liveOnly = false): Promise<string[]> {
  const res = await request(`http://${address}/v1/pg-blocks/${encodeURIComponent(volumeId)}/${pg}`, { headersTimeout: 5000, bodyTimeout: 5000 });
  if (res.statusCode !== 200) throw new Error(`pg-blocks on ${address} answered ${res.statusCode}: ${await res.body.text()}`);
  const entries: string[] = [];
  for await (const { meta, data } of streamJournalFrames(res.body)) if (!liveOnly || meta.kept !== true) entries.push(`${meta.inode}/${meta.blockNo}:${crc32c(data)}`);
  return entries.sort();
}
