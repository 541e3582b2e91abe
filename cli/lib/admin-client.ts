/**
 * The CLI side of the daemon's admin endpoint: JSON over HTTP with undici. Every failure comes
 * back as a GalleonError: the daemon's own (deserialized), or DAEMON_UNREACHABLE / TIMEOUT when
 * no daemon answers.
 */
import { request } from 'undici';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { formatHostPort, parseHostPort } from './address.js';

/** Long enough for a write that waits on a Raft commit during an election. */
export const adminRequestTimeoutMs = 15_000;
const connectTimeoutMs = 2_000;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export class AdminClient {
  readonly address: string;
  private readonly origin: string;

  constructor(address: string) {
    this.address = formatHostPort(parseHostPort(address, 'daemon address'));
    this.origin = `http://${this.address}`;
  }

  async call<T>(method: HttpMethod, path: string, body?: unknown, timeoutMs = adminRequestTimeoutMs): Promise<T> {
    let res;
    try {
      res = await request(`${this.origin}${path}`, {
        method,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs + connectTimeoutMs),
      });
    } catch (err) {
      throw this.transportError(err);
    }
    const text = await res.body.text();
    let parsed: unknown = null;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new GalleonError(ErrorCode.UNAVAILABLE, `${this.address} answered with something other than JSON (HTTP ${res.statusCode})`, {
          hint: 'check that --daemon-address points at a galleon daemon\'s --ipc-address',
        });
      }
    }
    if (res.statusCode >= 400) {
      const raw = (parsed as { error?: unknown } | null)?.error ?? parsed;
      throw GalleonError.fromJSON(raw);
    }
    return parsed as T;
  }

  private transportError(err: unknown): GalleonError {
    const code = (err as { code?: string } | null)?.code;
    const name = (err as { name?: string } | null)?.name;
    if (name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new GalleonError(ErrorCode.TIMEOUT, `the daemon at ${this.address} did not answer in time`, {
        hint: 'check `galleon daemon status` and the daemon log; the cluster may have no leader',
        cause: err,
      });
    }
    return new GalleonError(ErrorCode.DAEMON_UNREACHABLE, `cannot reach a daemon at ${this.address}`, {
      hint: 'start one with `galleon daemon start` (or `galleon up`) or set --daemon-address',
      cause: err,
    });
  }
}
