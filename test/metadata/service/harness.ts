/**
 * Multi-process helpers: real `metadata/service/main.ts` processes on loopback, each in its
 * own temp dir, killed by PID in `after` hooks. Used by the *.integration.test.ts files here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil, type Probe } from '../../support/poll.js';
import { MetadataClient } from '../../../metadata/service/client.js';

const mainPath = fileURLToPath(new URL('../../../metadata/service/main.ts', import.meta.url));
const readyTimeoutMs = 20_000;
const stopTimeoutMs = 5_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function until<T>(probe: Probe<T>, what: string, timeoutMs = 15_000, pollMs = 25): Promise<T> {
  return pollUntil(what, probe, timeoutMs, pollMs);
}

/** A member's applied index from its own (stale) status; -1 while it does not answer. */
export async function appliedOf(address: string, callDeadlineMs = 2_000): Promise<number> {
  const c = new MetadataClient({ addresses: [address], callDeadlineMs });
  try {
    return (await c.clusterStatus({ stale: true })).appliedIndex;
  } catch {
    return -1;
  } finally {
    c.close();
  }
}

export interface MemberProc {
  id: string;
  address: string;
  dataDir: string;
  child: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
  /** The member's ready line (address, and metricsAddress with --metrics-bind). */
  ready: Record<string, unknown>;
}

export class ProcessCluster {
  readonly procs = new Map<string, MemberProc>();
  private root = '';
  /** Flags every member gets (timing for fast tests). */
  constructor(private readonly commonFlags: string[] = ['--tick-ms', '50', '--election-ticks', '20']) {}

  async init(): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), 'galleon-meta-it-'));
  }

  dataDirOf(id: string): string {
    return join(this.root, id);
  }

  /** Starts `ids` as a new cluster; returns their addresses. */
  async bootstrap(ids: string[], extra: string[] = []): Promise<MemberProc[]> {
    const ports = await Promise.all(ids.map(() => freePort()));
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
    return Promise.all(ids.map((id, i) => this.start(id, `127.0.0.1:${ports[i]}`, ['--peers', peers, ...extra])));
  }

  async start(id: string, bind: string, flags: string[], logLevel = 'warn'): Promise<MemberProc> {
    const dataDir = this.dataDirOf(id);
    // GALLEON_TEST_NODE_ARGS: extra node flags for the members (e.g. --cpu-prof when profiling).
    const nodeArgs = (process.env.GALLEON_TEST_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', mainPath, '--id', id, '--data-dir', dataDir, '--bind', bind,
      // Data-plane suites write default-class volumes with block clients that hold no keys (not about encryption).
      '--allow-unkeyed-encryption', ...this.commonFlags, ...flags], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GALLEON_LOG_LEVEL: logLevel },
    });
    const stderr: string[] = [];
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr.push(d); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`member ${id} not ready in ${readyTimeoutMs} ms: ${stderr.join('')}`)), readyTimeoutMs);
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`member ${id} exited (${code}) before ready: ${stderr.join('')}`)); });
    });
    const address = String(ready.address);
    const p: MemberProc = { id, address, dataDir, child, stderr, exited, ready };
    this.procs.set(id, p);
    return p;
  }

  kill9(id: string): Promise<number | null> {
    const p = this.procs.get(id);
    if (p === undefined) return Promise.resolve(null);
    this.procs.delete(id);
    if (p.child.exitCode === null && p.child.pid !== undefined) process.kill(p.child.pid, 'SIGKILL');
    return p.exited;
  }

  async stop(id: string): Promise<number | null> {
    const p = this.procs.get(id);
    if (p === undefined) return null;
    this.procs.delete(id);
    if (p.child.exitCode !== null || p.child.pid === undefined) return p.child.exitCode;
    process.kill(p.child.pid, 'SIGTERM');
    const timer = setTimeout(() => { if (p.child.exitCode === null && p.child.pid !== undefined) process.kill(p.child.pid, 'SIGKILL'); }, stopTimeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    return code;
  }

  addresses(): string[] {
    return [...this.procs.values()].map((p) => p.address);
  }

  async destroy(): Promise<void> {
    for (const p of [...this.procs.values()]) {
      if (p.child.exitCode === null && p.child.pid !== undefined) {
        try { process.kill(p.child.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      await p.exited;
    }
    this.procs.clear();
    if (this.root !== '') await rm(this.root, { recursive: true, force: true });
  }
}
