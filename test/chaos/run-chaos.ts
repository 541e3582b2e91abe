/**
 * Runs a chaos script (`chaos/<name>.ts`) as CI does, in its own process group so that a
 * timeout — or an `after` hook after a failure — takes every process it started down with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const termGraceMs = 5_000;

export interface ChaosRunResult {
  code: number | null;
  output: string;
}

let running: ChildProcess | null = null;

export function runChaosScript(script: string, args: string[], timeoutMs: number): Promise<ChaosRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: repoRoot,
      env: { ...process.env, GALLEON_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running = child;
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), termGraceMs).unref();
      reject(new Error(`chaos run did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      running = null;
      resolve({ code, output });
    });
    child.once('error', reject);
  });
}

/** For `after` hooks: kill whatever chaos run is still going. */
export function killRunningChaos(): void {
  if (running !== null) killGroup(running, 'SIGKILL');
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}
