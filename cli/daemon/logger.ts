/**
 * pino for the daemon: level from the config file's `[log] level`, else GALLEON_LOG_LEVEL
 * (default info); pretty on a TTY, JSON otherwise. SIGHUP may change the level later (daemon.ts).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createDaemonLogger(nodeId: string, fileLevel?: string): Logger {
  const wanted = fileLevel ?? process.env.GALLEON_LOG_LEVEL ?? 'info';
  const level = (levels as readonly string[]).includes(wanted) ? wanted : 'info';
  const base = { node: nodeId };
  const logger = process.stdout.isTTY
    ? pino({ level, base }, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }))
    : pino({ level, base });
  if (level !== wanted) logger.warn({ wanted }, `unknown GALLEON_LOG_LEVEL, using ${level}`);
  return logger;
}
