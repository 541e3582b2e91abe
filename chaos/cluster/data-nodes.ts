/**
 * Real data nodes: one `dataplane/server/main.ts` process per node on a fixed free loopback
 * port, each with its own data directory under the run's temp root, registered with the
 * metadata quorum. A node can be SIGKILLed and restarted on the same port and directory, as a
 * crashed machine would be.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ManagedChild } from '../lib/child.js';
import { freePorts } from '../lib/ports.js';
import { repoRoot } from './metadata-cluster.js';
import type { ChaosPki } from './pki.js';
import { dataNodeV8Flags } from '../../cli/lib/node-flags.js';

const dataNodeMain = join(repoRoot, 'dataplane', 'server', 'main.ts');

/** A data node prints `{"event":"listening",…}` on stdout once it serves and has registered. */
function isListeningLine(line: string): boolean {
  try {
    return (JSON.parse(line) as { event?: unknown }).event === 'listening';
  } catch {
    return false;
  }
}

export interface DataNodesOptions {
  root: string;
  metadataAddresses: string[];
  nodeCount?: number;
  heartbeatIntervalMs?: number;
  readyTimeoutMs?: number;
  logLevel?: string;
  /** Extra flags for every node (e.g. --lease-ttl-ms). */
  extraArgs?: string[];
  /** Mutual TLS: each node's --tls-dir (the metadata cluster's run CA, MetadataCluster.pki). */
  pki?: ChaosPki | null;
}

export interface DataNodeProcess {
  id: string;
  zone: string;
  address: string;
  dataDir: string;
  logPath: string;
  child: ManagedChild;
}

export class DataNodes {
  private constructor(readonly nodes: DataNodeProcess[], private readonly readyTimeoutMs: number) {}

  static async start(options: DataNodesOptions): Promise<DataNodes> {
    const count = options.nodeCount ?? 3;
    const ports = await freePorts(count);
    const nodes: DataNodeProcess[] = [];
    for (let i = 0; i < count; i++) {
      const id = `dn${i + 1}`;
      const zone = `zone-${i + 1}`;
      const port = ports[i]!;
      const dataDir = join(options.root, id);
      await mkdir(dataDir, { recursive: true });
      const logPath = join(options.root, `${id}.log`);
      const child = new ManagedChild({
        name: `data node ${id}`,
        command: process.execPath,
        args: [...dataNodeV8Flags, '--import', 'tsx', dataNodeMain, '--node-id', id, '--zone', zone, '--data-dir', dataDir, '--port', String(port),
          '--metadata', options.metadataAddresses.join(','), '--heartbeat-ms', String(options.heartbeatIntervalMs ?? 500),
          ...(options.pki === undefined || options.pki === null ? [] : ['--tls-dir', await options.pki.dirOf(id)]), ...(options.extraArgs ?? [])],
        cwd: repoRoot,
        env: { ...process.env, GALLEON_LOG_LEVEL: options.logLevel ?? 'warn', GALLEON_EXIT_WITH_PARENT: '1' },
        logPath,
      });
      nodes.push({ id, zone, address: `127.0.0.1:${port}`, dataDir, logPath, child });
    }
    const cluster = new DataNodes(nodes, options.readyTimeoutMs ?? 30_000);
    await Promise.all(nodes.map((n) => cluster.startNode(n.id)));
    return cluster;
  }

  node(id: string): DataNodeProcess {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no data node ${id}`);
    return n;
  }

  async startNode(id: string): Promise<void> {
    const n = this.node(id);
    n.child.start();
    await n.child.waitForLine(isListeningLine, this.readyTimeoutMs);
  }

  async killNode(id: string): Promise<void> {
    await this.node(id).child.kill('SIGKILL');
  }

  /**
   * Node loss: the data directory of a node that is down is deleted (its disk is gone). Started
   * again, it is the same id with an empty store — the replacement the system supports: it
   * waits until the metadata service marks it down, then registers as a new, empty node.
   */
  async wipeNode(id: string): Promise<void> {
    const n = this.node(id);
    if (n.child.running) throw new Error(`data node ${id} is running: kill it before wiping its disk`);
    await rm(n.dataDir, { recursive: true, force: true });
    await mkdir(n.dataDir, { recursive: true });
  }

  downNodes(): string[] {
    return this.nodes.filter((n) => !n.child.running).map((n) => n.id);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.child.stop()));
    await Promise.all(this.nodes.map((n) => n.child.closeLog()));
  }
}
