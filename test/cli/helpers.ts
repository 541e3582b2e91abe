/**
 * Runs the REAL `galleon` binary (node cli/bin/run.js) as a child process, and manages local
 * clusters started through it. Every child is killed by PID on timeout; clusters are torn down
 * with `galleon down --purge` plus a SIGKILL sweep of any pid left in cluster.json.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil, type Probe } from '../support/poll.js';
import { fuseMountPoints, unmountDir } from '../../vfs/fuse/index.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const binPath = join(repoRoot, 'cli', 'bin', 'run.js');
const cliTimeoutMs = 90_000;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = cliTimeoutMs): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      cwd: repoRoot,
      env: { ...process.env, GALLEON_LOG_LEVEL: 'warn', GALLEON_DEBUG: '', GALLEON_ADDRESS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`galleon ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a command with --json and parses stdout; fails loudly (with stderr) on a non-zero exit. */
export async function cliJson<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await runCli([...args, '--json'], env);
  if (r.code !== 0) throw new Error(`galleon ${args.join(' ')} --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills (SIGKILL) every daemon recorded under dir and removes dir; safe to call when nothing runs. */
export async function killClusterDir(dir: string): Promise<void> {
  try {
    const cluster = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { nodes: { pid: number; storagePath: string }[] };
    for (const n of cluster.nodes) {
      await killDaemonAt(n.storagePath);
      if (n.pid > 0 && alive(n.pid)) process.kill(n.pid, 'SIGKILL');
    }
  } catch {
    // no cluster.json: nothing started there
  }
  // A killed daemon leaves its FUSE mounts dead under the folder (`--mount-point`): detach them first.
  for (const mp of await fuseMountPoints()) if (mp.startsWith(`${dir}/`)) await unmountDir(mp, true).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}

/** Kills a daemon by the pid file under its storage path (if any). */
export async function killDaemonAt(storagePath: string): Promise<void> {
  try {
    const pid = Number((await readFile(join(storagePath, 'galleon.pid'), 'utf8')).trim());
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
  } catch {
    // not running
  }
}

export function waitFor<T>(what: string, timeoutMs: number, probe: Probe<T>): Promise<T> {
  return pollUntil(what, probe, timeoutMs, 100);
}
