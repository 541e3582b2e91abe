/**
 * The last-resort handler of every galleon process (daemon, standalone data node, standalone
 * metadata member): what to do with an exception nobody caught or a promise rejection nobody
 * handled. The rule (cli/daemon/README.md, "Last resort"):
 *
 *  - a GalleonError INVARIANT_VIOLATION stops the process loudly (fatal log, `onFatal` cleanup such
 *    as removing the pid file, exit 70): a broken invariant means memory can no longer be trusted;
 *  - anything else is logged at error level, counted (`galleon_uncaught_errors_total`), and the
 *    process keeps running. Durable state only ever changes through atomic LevelDB batches and
 *    Raft entries synced before they are acknowledged, so an exception between two awaits leaves
 *    at worst one request unanswered, not a half-written store. But an error that repeats
 *    without end is a loop, not an accident: more than `maxUncaughtPerWindow` within
 *    `uncaughtWindowMs` stops the process (exit 70) so that its supervisor restarts it clean.
 *
 * Side effects only: no decision here needs a simulator.
 */
import { Counter, type Registry } from 'prom-client';
import { ErrorCode, isGalleonError } from './errors.js';

/** More uncaught errors than this within `uncaughtWindowMs` stop the process. */
export const maxUncaughtPerWindow = 100;
export const uncaughtWindowMs = 60_000;
/** Exit status of a stop by the last-resort handler (EX_SOFTWARE). */
export const lastResortExitCode = 70;

export interface GuardLogger {
  error(obj: object, msg: string): void;
  fatal(obj: object, msg: string): void;
  flush?(): void;
}

export interface ProcessGuardOptions {
  logger: GuardLogger;
  /** Where the counter is registered (the registry the process serves on /metrics). */
  registry: Registry;
  /** Synchronous cleanup before a fatal exit (remove the pid file). */
  onFatal?: () => void;
  /** The clock, in ms; tests pass their own. */
  nowMs?: () => number;
}

export interface ProcessGuard {
  readonly counter: Counter<'kind'>;
  uninstall(): void;
}

export function installProcessGuard(opts: ProcessGuardOptions): ProcessGuard {
  const counter = new Counter({
    name: 'galleon_uncaught_errors_total',
    help: 'Exceptions and promise rejections that reached the last-resort handler (the process kept running).',
    labelNames: ['kind'] as const,
    registers: [opts.registry],
  });
  const now = opts.nowMs ?? Date.now;
  let windowStartMs = now();
  let inWindow = 0;

  const die = (err: unknown, why: string): never => {
    opts.logger.fatal({ err }, why);
    opts.logger.flush?.();
    try { opts.onFatal?.(); } catch { /* exiting anyway */ }
    process.exit(lastResortExitCode);
  };

  const onError = (kind: 'exception' | 'rejection', err: unknown): void => {
    if (isGalleonError(err, ErrorCode.INVARIANT_VIOLATION)) die(err, 'invariant violated: stopping');
    counter.inc({ kind });
    opts.logger.error({ err, kind }, `uncaught ${kind} caught by the last-resort handler; the process keeps running`);
    const t = now();
    if (t - windowStartMs > uncaughtWindowMs) { windowStartMs = t; inWindow = 0; }
    inWindow += 1;
    if (inWindow > maxUncaughtPerWindow) die(err, `more than ${maxUncaughtPerWindow} uncaught errors within ${uncaughtWindowMs} ms: stopping`);
  };
  const onException = (err: Error): void => onError('exception', err);
  const onRejection = (reason: unknown): void => onError('rejection', reason);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    counter,
    uninstall: () => {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
      opts.registry.removeSingleMetric('galleon_uncaught_errors_total');
    },
  };
}
