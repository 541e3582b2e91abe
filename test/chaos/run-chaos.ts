/**
 * Runs a chaos script (`chaos/<name>.ts`) as CI does, in its own process group so that a
 * timeout — or an `after` hook after a failure — takes every process it started down with it,
 * and then removes the run's folder (the script removes it itself only when it ends on its own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../chaos/lib/wait.js';
import { groupAlive } from '../support/poll.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const termGraceMs = 5_000;
/** After SIGKILL, how long the group may take to be gone before its folder is removed anyway. */
const groupGoneTimeoutMs = 10_000;
/** The folder a run names on its first line (`… dir /tmp/galleon-dchaos-XXXX`). */
const runDirPattern = /\bdir (\/\S*galleon-\S+)/;

export interface ChaosRunResult {
  code: number | null;
  output: string;
}

let running: ChildProcess | null = null;
let runningOutput: () => string = () => '';

export function runChaosScript(script: string, args: string[], timeoutMs: number): Promise<ChaosRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: repoRoot,
      env: { ...process.env, GALLEON_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running = child;
    runningOutput = () => output;
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      killGroup(child, 'SIGTERM');
      setTimeout(() => { void killAndClean(child, output); }, termGraceMs).unref();
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

/** For `after` hooks: kill whatever chaos run is still going, then remove its folder. */
export async function killRunningChaos(): Promise<void> {
  if (running !== null) await killAndClean(running, runningOutput());
}

/** SIGKILL to the group, a wait until it is gone, then the run's folder removed (unless `--keep-dir`). */
async function killAndClean(child: ChildProcess, output: string): Promise<void> {
  const pid = child.pid;
  // To the group even when the script itself is gone: a node it started may have outlived SIGTERM.
  if (pid !== undefined && groupAlive(pid)) process.kill(-pid, 'SIGKILL');
  if (pid !== undefined) await waitFor('the chaos run\'s processes to be gone', groupGoneTimeoutMs, () => (groupAlive(pid) ? undefined : true)).catch(() => undefined);
  const dir = runDirPattern.exec(output)?.[1];
  if (dir !== undefined && !output.includes('--keep-dir')) await rm(dir, { recursive: true, force: true });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}
