/**
 * A child process we own: started with its output captured to a log file, stopped by PID, and
 * registered so that an emergency exit (SIGINT, an uncaught error) can SIGKILL every child still
 * alive synchronously. Nothing is ever killed by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

const live = new Set<ChildProcess>();

/** SIGKILLs every child still running. Synchronous, so it is safe in an 'exit' handler. */
export function killAllChildrenSync(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone between the check and the kill.
      }
    }
  }
  live.clear();
}

let handlersInstalled = false;

/** Makes SIGINT/SIGTERM and a crash of this process take the children down with it. */
export function installEmergencyCleanup(onExit: () => void = () => undefined): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    killAllChildrenSync();
    onExit();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      console.error(`chaos: ${sig} received, killing children`);
      process.exit(130);
    });
  }
}

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here, across restarts. */
  logPath: string;
}

export class ManagedChild {
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private log: WriteStream | null = null;
  private lineWaiters: { match: (line: string) => boolean; resolve: (line: string) => void }[] = [];

  constructor(readonly spec: ChildSpec) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    this.log ??= createWriteStream(this.spec.logPath, { flags: 'a' });
    const proc = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: this.spec.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    live.add(proc);
    this.log.write(`--- ${new Date().toISOString()} start pid ${proc.pid ?? '?'}: ${this.spec.command} ${this.spec.args.join(' ')}\n`);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        this.log?.write(`--- ${new Date().toISOString()} exit pid ${proc.pid ?? '?'}: code ${code} signal ${signal}\n`);
        resolve();
      });
      proc.once('error', (err) => {
        live.delete(proc);
        this.log?.write(`--- spawn error: ${err.message}\n`);
        resolve();
      });
    });
    const lines = createInterface({ input: proc.stdout });
    lines.on('line', (line) => {
      this.log?.write(`${line}\n`);
      this.lineWaiters = this.lineWaiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    });
    proc.stderr.on('data', (chunk: Buffer) => this.log?.write(chunk));
  }

  /** The first stdout line (from now on) that matches, or an error when the process exits or time runs out. */
  async waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string> {
    let waiter: (typeof this.lineWaiters)[number] | undefined;
    let timer: NodeJS.Timeout | undefined;
    const line = new Promise<string>((resolve) => {
      waiter = { match, resolve };
      this.lineWaiters.push(waiter);
    });
    const exited = this.exited.then(() => {
      throw new Error(`${this.spec.name} exited before it was ready (log: ${this.spec.logPath})`);
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.spec.name} not ready after ${timeoutMs} ms (log: ${this.spec.logPath})`)), timeoutMs);
    });
    try {
      return await Promise.race([line, exited, timeout]);
    } finally {
      clearTimeout(timer);
      this.lineWaiters = this.lineWaiters.filter((w) => w !== waiter);
    }
  }

  /** Sends `signal` to the process by PID and waits for it to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.proc;
    if (proc?.pid === undefined || !this.running) return;
    try {
      process.kill(proc.pid, signal);
    } catch {
      // It exited on its own meanwhile.
    }
    await this.exited;
  }

  /** Sends a signal that does not end the process (SIGSTOP / SIGCONT to pause and resume it). */
  signal(signal: NodeJS.Signals): void {
    const pid = this.proc?.pid;
    if (pid === undefined || !this.running) throw new Error(`${this.spec.name} is not running`);
    process.kill(pid, signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    const proc = this.proc;
    if (proc?.pid === undefined || !this.running) return;
    const pid = proc.pid;
    try {
      // A paused process would sit on SIGTERM until continued.
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, forced]);
    clearTimeout(timer);
    await this.exited;
  }

  async closeLog(): Promise<void> {
    const log = this.log;
    this.log = null;
    if (log !== null) await new Promise<void>((resolve) => log.end(() => resolve()));
  }
}
