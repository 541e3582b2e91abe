/** `host:port` parsing shared by the CLI and the daemon. Pure. */
import { ErrorCode, GalleonError } from '../../proto/errors.js';

export const defaultIpcAddress = '127.0.0.1:8090';
export const defaultBindAddress = '127.0.0.1:8080';
export const defaultDataAddress = '127.0.0.1:8070';

export interface HostPort {
  host: string;
  port: number;
}

/** Accepts `host:port`, `[v6]:port` or `http://host:port`; port 0 only when `allowZero`. */
export function parseHostPort(input: string, what: string, allowZero = false): HostPort {
  const raw = input.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(raw);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || match[1] === undefined || port > 65535 || (port === 0 && !allowZero)) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `invalid ${what} "${input}"`, {
      hint: 'write it as host:port, e.g. 127.0.0.1:8090',
    });
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Comma-separated peer list; empty entries are ignored, each entry validated. */
export function parsePeerList(input: string | readonly string[]): string[] {
  const parts = typeof input === 'string' ? input.split(',') : input.flatMap((p) => p.split(','));
  return parts.map((p) => p.trim()).filter((p) => p !== '').map((p) => formatHostPort(parseHostPort(p, 'peer address')));
}
