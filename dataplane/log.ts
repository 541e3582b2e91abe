import { pino } from 'pino';
import type { Logger } from 'pino';

/** Data-plane logger: level from GALLEON_LOG_LEVEL (default info), JSON to stderr. */
export function dataplaneLogger(name: string): Logger {
  return pino({ name, level: process.env.GALLEON_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
export type { Logger };
