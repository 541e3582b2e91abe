/**
 * Starts `galleon daemon start` as a detached background process (for `daemon start --detach`
 * and `galleon up`): output appended to a log file under its storage path, then waits until
 * its admin endpoint answers or the child dies (then the log's tail explains why).
 */
import type { TlsMaterial } from '../../proto/tls.js';
import { spawn } from 'node:child_process';
import { makeFolder } from './folder.js';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { AdminClient } from './admin-client.js';
import type { DaemonStatus } from '../daemon/types.js';
import { isProcessAlive as isAlive, logFileName } from '../daemon/pidfile.js';
import { dataNodeV8Flags } from './node-flags.js';

/** The running binary (set by cli/bin/run.js, since this module may run from the transpiled cache). */
export function binPath(): string {
  return process.env.GALLEON_BIN ?? fileURLToPath(new URL('../bin/run.js', import.meta.url));
}
export const daemonStartTimeoutMs = 30_000;
const pollIntervalMs = 100;
/** How long a daemon that answers may take to become healthy before start returns anyway. */
const daemonHealthyWaitMs = 15_000;
const logTailLines = 5;

export interface DetachedDaemon {
  pid: number;
  status: DaemonStatus;
  logFile: string;
}


/** The daemon's own one-line error if it printed one, else the last lines of its log. */
async function whyItExited(file: string): Promise<string> {
  const lines = (await readFile(file, 'utf8').catch(() => '')).trim().split('\n');
  const errorLine = lines.filter((l) => l.startsWith('Error: ')).at(-1);
  return errorLine !== undefined ? errorLine.slice('Error: '.length) : lines.slice(-logTailLines).join(' | ');
}

/**
 * Opt-in node flags for the daemons `up` and `daemon start -d` spawn, for measuring them:
 * GALLEON_DAEMON_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (NODE_OPTIONS refuses --cpu-prof;
 * the profile is written only when the daemon exits on its own; `down` kills one still running 10 s
 * after SIGTERM, before a long run's profile is out).
 */
function extraDaemonNodeFlags(): string[] {
  return (process.env.GALLEON_DAEMON_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
}

/** `args` are the `daemon start` flags (without --detach). */
/** `tls`: the certificate to watch it start with (its own); null for a plaintext daemon. */
export async function spawnDetachedDaemon(args: string[], storagePath: string, ipcAddress: string, tls: TlsMaterial | null, nodeTokenFile: string | null = null): Promise<DetachedDaemon> {
  await makeFolder(storagePath, 'storage path');
  const logFile = join(storagePath, logFileName);
  const fd = openSync(logFile, 'a');
  let child;
  try {
    child = spawn(process.execPath, [...dataNodeV8Flags, ...extraDaemonNodeFlags(), binPath(), 'daemon', 'start', ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, GALLEON_DETACHED: '1' },
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new GalleonError(ErrorCode.IO_ERROR, 'could not start a daemon process', { hint: `see ${logFile}` });
  let exited = false;
  child.once('exit', () => { exited = true; });
  child.unref();

  // A daemon that requires tokens answers its status only to one: the node credential, which the
  // first node of a cluster writes as it starts (so the file is read once it exists).
  let client = nodeTokenFile === null ? new AdminClient(ipcAddress, { tls }) : null;
  const deadline = Date.now() + daemonStartTimeoutMs;
  const spawnedAtMs = Date.now();
  let answering: DetachedDaemon | undefined;
  while (Date.now() < deadline) {
    if (exited || !isAlive(pid)) {
      throw new GalleonError(ErrorCode.UNAVAILABLE, `the daemon exited while starting: ${await whyItExited(logFile)}`, { hint: `see ${logFile}` });
    }
    try {
      client ??= new AdminClient(ipcAddress, { tls, token: (await readFile(nodeTokenFile ?? '', 'utf8')).trim() });
      const status = await client.route<DaemonStatus>('daemonStatus', {}, undefined, 2_000);
      // "Started" should mean serving: wait for health (a leader, caught up) too, but a node
      // that cannot reach its quorum yet is still a running daemon, not a failed start.
      if (status.pid === pid) {
        answering ??= { pid, status, logFile };
        answering.status = status;
        if (status.healthy || Date.now() >= spawnedAtMs + daemonHealthyWaitMs) return answering;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, pollIntervalMs));
  }
  if (answering !== undefined) return answering;
  process.kill(pid, 'SIGKILL');
  throw new GalleonError(ErrorCode.TIMEOUT, `the daemon did not answer on ${ipcAddress} within ${daemonStartTimeoutMs / 1000} s`, { hint: `see ${logFile}` });
}
