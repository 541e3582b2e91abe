/**
 * A real three-member metadata quorum: one `metadata/service/main.ts` process per member on a
 * free loopback port, each with its own data directory under one temp root. A member can be
 * SIGKILLed and restarted on the same port and data directory, as a crashed machine would be.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedChild } from '../lib/child.js';
import { freePorts } from '../lib/ports.js';
import type { TlsMaterial } from '../../proto/tls.js';
import { makeChaosPki, type ChaosPki } from './pki.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const memberMain = join(repoRoot, 'metadata', 'service', 'main.ts');

/** A member prints this JSON line on stdout once it serves. */
function isReadyLine(line: string): boolean {
  try {
    const parsed = JSON.parse(line) as { ready?: unknown };
    return parsed.ready === true;
  } catch {
    return false;
  }
}

export interface MetadataClusterOptions {
  /** Temp directory that holds every member's data directory and log. */
  root: string;
  memberCount?: number;
  /** How long a member may take from spawn to its ready line (tsx compiles on start). */
  readyTimeoutMs?: number;
  logLevel?: string;
  /** Extra flags for every member (timings such as --data-node-timeout-ms). */
  extraArgs?: string[];
  /** Mutual TLS between members and with clients: certificates of one CA per run (chaos/cluster/pki.ts). */
  tls?: boolean;
}

export interface Member {
  id: string;
  address: string;
  dataDir: string;
  logPath: string;
  child: ManagedChild;
}

export class MetadataCluster {
  /** The run's client certificate when the cluster runs TLS (its data nodes and clients present it), else null. */
  clientTls: TlsMaterial | null = null;

  private constructor(readonly members: Member[], private readonly readyTimeoutMs: number, readonly pki: ChaosPki | null = null) {
    this.clientTls = pki?.client ?? null;
  }

  static async start(options: MetadataClusterOptions): Promise<MetadataCluster> {
    const count = options.memberCount ?? 3;
    const ports = await freePorts(count);
    const ids = ports.map((_, i) => `n${i + 1}`);
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
    const members: Member[] = [];
    const pki = options.tls === true ? await makeChaosPki(options.root) : null;
    for (const [i, id] of ids.entries()) {
      const dataDir = join(options.root, id);
      await mkdir(dataDir, { recursive: true });
      const logPath = join(options.root, `${id}.log`);
      const address = `127.0.0.1:${ports[i]}`;
      const child = new ManagedChild({
        name: `metadata member ${id}`,
        command: process.execPath,
        args: ['--import', 'tsx', memberMain, '--id', id, '--data-dir', dataDir, '--bind', address, '--peers', peers, ...(pki === null ? [] : ['--tls-dir', await pki.dirOf(id)]),
          // The workload creates volumes of the default (encrypted) class and never writes their blocks: no keys here.
          '--allow-unkeyed-encryption', ...(options.extraArgs ?? [])],
        cwd: repoRoot,
        env: { ...process.env, GALLEON_LOG_LEVEL: options.logLevel ?? 'warn' },
        logPath,
      });
      members.push({ id, address, dataDir, logPath, child });
    }
    const cluster = new MetadataCluster(members, options.readyTimeoutMs ?? 30_000, pki);
    await Promise.all(members.map((m) => cluster.startMember(m.id)));
    return cluster;
  }

  get addresses(): string[] {
    return this.members.map((m) => m.address);
  }

  member(id: string): Member {
    const m = this.members.find((x) => x.id === id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  memberByAddress(address: string): Member | undefined {
    return this.members.find((m) => m.address === address);
  }

  /** Starts a stopped member on its old port and data directory and waits for its ready line. */
  async startMember(id: string): Promise<void> {
    const m = this.member(id);
    m.child.start();
    await m.child.waitForLine(isReadyLine, this.readyTimeoutMs);
  }

  async killMember(id: string): Promise<void> {
    await this.member(id).child.kill('SIGKILL');
  }

  pauseMember(id: string): void {
    this.member(id).child.signal('SIGSTOP');
  }

  resumeMember(id: string): void {
    this.member(id).child.signal('SIGCONT');
  }

  downMembers(): string[] {
    return this.members.filter((m) => !m.child.running).map((m) => m.id);
  }

  /** Clean stop (SIGTERM, SIGKILL after a grace period) of every member. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.child.stop()));
    await Promise.all(this.members.map((m) => m.child.closeLog()));
  }
}
