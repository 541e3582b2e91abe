/**
 * A three-member etcd cluster on free loopback ports, for the metadata benchmark's reference
 * figures, and a grpc-js client for the few KV calls the benchmark makes.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedChild } from '../../../chaos/lib/child.js';
import { freePorts } from '../../../chaos/lib/ports.js';
import { waitFor } from '../../../chaos/lib/wait.js';

const etcdBinaryCandidates = ['/usr/bin/etcd', '/usr/local/bin/etcd'];

function findEtcd(): string | undefined {
  return etcdBinaryCandidates.find((p) => existsSync(p));
}

/** Installs Debian's etcd-server when no etcd binary is present (needs root). */
export function ensureEtcdInstalled(log: (line: string) => void): string {
  const found = findEtcd();
  if (found !== undefined) return found;
  if (process.getuid?.() !== 0) throw new Error('etcd is not installed and installing it needs root: run `apt-get install etcd-server` first');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log('etcd not found: installing etcd-server with apt-get');
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server'], { env, stdio: 'inherit' });
  } catch {
    log('apt-get install failed: refreshing the package lists and retrying');
    execFileSync('apt-get', ['update'], { env, stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server'], { env, stdio: 'inherit' });
  }
  const installed = findEtcd();
  if (installed === undefined) throw new Error('etcd-server installed but no etcd binary found');
  return installed;
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  clientAddress: string;
  child: ManagedChild;
}

export class EtcdCluster {
  private constructor(readonly members: EtcdMember[]) {}

  static async start(binary: string, root: string, readyTimeoutMs = 30_000): Promise<EtcdCluster> {
    const ports = await freePorts(6);
    const names = ['e1', 'e2', 'e3'];
    const peerUrl = (i: number): string => `http://127.0.0.1:${ports[3 + i]}`;
    const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
    const members: EtcdMember[] = [];
    for (const [i, name] of names.entries()) {
      const dataDir = join(root, name);
      await mkdir(dataDir, { recursive: true });
      const clientAddress = `127.0.0.1:${ports[i]}`;
      const clientUrl = `http://${clientAddress}`;
      const child = new ManagedChild({
        name: `etcd ${name}`,
        command: binary,
        args: [
          '--name', name, '--data-dir', dataDir,
          '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
          '--listen-peer-urls', peerUrl(i), '--initial-advertise-peer-urls', peerUrl(i),
          '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'galleon-bench',
          '--log-level', 'warn', '--logger', 'zap',
        ],
        logPath: join(root, `${name}.log`),
      });
      child.start();
      members.push({ name, clientUrl, clientAddress, child });
    }
    const cluster = new EtcdCluster(members);
    const probe = new EtcdClient(members[0]!.clientAddress);
    try {
      await waitFor('the etcd cluster to elect a leader', readyTimeoutMs, async () => ((await probe.leaderMemberId()) !== '0' ? true : undefined), 100);
    } finally {
      probe.close();
    }
    return cluster;
  }

  /** The client address of the member that currently leads. */
  async leaderAddress(): Promise<string> {
    for (const m of this.members) {
      const c = new EtcdClient(m.clientAddress);
      try {
        const status = await c.status();
        if (status.header.member_id === status.leader) return m.clientAddress;
      } finally {
        c.close();
      }
    }
    throw new Error('no etcd member reports itself as leader');
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.child.stop()));
    await Promise.all(this.members.map((m) => m.child.closeLog()));
  }
}

interface StatusResponse {
  header: { member_id: string };
  leader: string;
}

type Unary<Req, Res> = (req: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;

interface KvStub extends grpc.Client {
  Put: Unary<{ key: Buffer; value: Buffer }, unknown>;
  Range: Unary<{ key: Buffer; serializable: boolean }, { kvs: { value: Buffer }[] }>;
}

interface MaintenanceStub extends grpc.Client {
  Status: Unary<Record<string, never>, StatusResponse>;
}

// uint64 member ids exceed 2^53: keep them as strings.
const loaderOptions: protoLoader.Options = { keepCase: true, longs: String, defaults: true };
let protoPackage: grpc.GrpcObject | undefined;

function etcdPackage(): grpc.GrpcObject {
  protoPackage ??= grpc.loadPackageDefinition(protoLoader.loadSync(fileURLToPath(new URL('./etcd-kv.proto', import.meta.url)), loaderOptions));
  return protoPackage.etcdserverpb as grpc.GrpcObject;
}

function call<Req, Res>(fn: Unary<Req, Res>, stub: grpc.Client, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn.call(stub, req, (err, res) => (err !== null ? reject(err) : resolve(res as Res)));
  });
}

export class EtcdClient {
  private readonly kv: KvStub;
  private readonly maintenance: MaintenanceStub;

  constructor(address: string) {
    const pkg = etcdPackage();
    const Kv = pkg.KV as grpc.ServiceClientConstructor;
    const Maintenance = pkg.Maintenance as grpc.ServiceClientConstructor;
    this.kv = new Kv(address, grpc.credentials.createInsecure()) as unknown as KvStub;
    // One HTTP/2 connection, shared, as a single client process would have.
    this.maintenance = new Maintenance(address, grpc.credentials.createInsecure(), { channelOverride: this.kv.getChannel() }) as unknown as MaintenanceStub;
  }

  put(key: Buffer, value: Buffer): Promise<unknown> {
    return call(this.kv.Put, this.kv, { key, value });
  }

  /** A linearizable read of one key. */
  async get(key: Buffer): Promise<Buffer | null> {
    const res = await call(this.kv.Range, this.kv, { key, serializable: false });
    return res.kvs[0]?.value ?? null;
  }

  status(): Promise<StatusResponse> {
    return call(this.maintenance.Status, this.maintenance, {});
  }

  async leaderMemberId(): Promise<string> {
    return (await this.status()).leader;
  }

  close(): void {
    this.kv.close();
  }
}
