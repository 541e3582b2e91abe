/**
 * The CLI side of the daemon's admin endpoint: JSON over HTTP with undici. Every failure comes
 * back as a GalleonError: the daemon's own (deserialized), or DAEMON_UNREACHABLE / TIMEOUT when
 * no daemon answers, or UNAVAILABLE "… is not a galleon daemon" when something else answers.
 *
 * Several candidate addresses may be known (a `--daemon-address` list, the config file, the local
 * cluster's cluster.json). Before the first request the client picks one with `GET /healthz`
 * (idempotent, answered by any galleon daemon with `{ ok, reason }`, leader or not): a candidate
 * that refuses the connection or does not answer in time is skipped, so no request that changes
 * state is ever sent twice; something that answers but is not a daemon stops the command.
 */
import { Agent, request } from 'undici';
import { ErrorCode, GalleonError, isGalleonError, isSerializedError } from '../../proto/errors.js';
import { httpUrl, tlsFailureCode, undiciConnectOptions, type TlsMaterial } from '../../proto/tls.js';
import { formatHostPort, parseHostPort } from './address.js';
import { adminPath, adminRoutes } from './admin-routes.js';
import type { AdminMethod, AdminRouteName } from './admin-routes.js';

/** Long enough for a write that waits on a Raft commit during an election. */
export const adminRequestTimeoutMs = 15_000;
/** A daemon that does not accept a connection in this long is taken as down (undici's default is 10 s). */
export const connectTimeoutMs = 2_000;
/** The identity probe; /healthz answers from memory, so a live daemon is far faster. */
export const probeTimeoutMs = 3_000;

export type HttpMethod = AdminMethod;

export interface DaemonCandidate {
  address: string;
  /** Where it came from, for the fallback note: `--daemon-address`, `GALLEON_ADDRESS`, a file path. */
  source: string;
}

export interface AdminClientOptions {
  /** Try later candidates when the first is unreachable (off for commands aimed at one daemon). */
  fallback?: boolean;
  /** Told once which candidate was used when it was not the first. */
  onFallback?: (line: string) => void;
  /** More candidates, asked for only when the given ones are unreachable (files are read then). */
  more?: () => Promise<DaemonCandidate[]>;
  /** Sent as `authorization: Bearer <token>` on every request (issue #12). */
  token?: string;
  /** The CLI's client certificate (cli/lib/tls.ts resolveClientTls); null/absent: plaintext. */
  tls?: TlsMaterial | null;
}

const notADaemonHint = 'point --daemon-address at a daemon\'s --ipc-address (`galleon daemon status` on that host shows it)';

function unreachable(err: unknown): boolean {
  return isGalleonError(err, ErrorCode.DAEMON_UNREACHABLE) || isGalleonError(err, ErrorCode.TIMEOUT);
}

export class AdminClient {
  private readonly candidates: DaemonCandidate[];
  private readonly dispatcher: Agent;
  private readonly tls: TlsMaterial | null;
  private picked: string | null = null;
  private askedForMore = false;

  constructor(candidates: string | readonly DaemonCandidate[], private readonly opts: AdminClientOptions = {}) {
    this.tls = opts.tls ?? null;
    this.dispatcher = new Agent({ connect: { timeout: connectTimeoutMs, ...undiciConnectOptions(this.tls) } });
    const list = typeof candidates === 'string' ? [{ address: candidates, source: 'the given address' }] : candidates;
    if (list.length === 0) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'no daemon address given', { hint: 'pass --daemon-address host:port' });
    // Each is validated here (bad input: one line, nothing sent); duplicates are tried once.
    const seen = new Set<string>();
    this.candidates = list.map((c) => ({ ...c, address: formatHostPort(parseHostPort(c.address, 'daemon address')) }))
      .filter((c) => !seen.has(c.address) && seen.add(c.address) !== undefined);
  }

  /** The address requests go to (the first candidate until one was picked). */
  get address(): string {
    return this.picked ?? this.candidates[0]?.address ?? '';
  }

  /**
   * Calls one route of the admin route table (admin-routes.ts) by name: the only way to reach the
   * daemon, so the CLI cannot use a method and path the daemon does not serve.
   */
  route<T>(name: AdminRouteName, params: Readonly<Record<string, string>>, body?: unknown, timeoutMs = adminRequestTimeoutMs): Promise<T> {
    return this.call<T>(adminRoutes[name].method, adminPath(name, params), body, timeoutMs);
  }

  private async call<T>(method: HttpMethod, path: string, body: unknown, timeoutMs: number): Promise<T> {
    const address = await this.pick();
    const { status, parsed } = await this.send(address, method, path, body, timeoutMs);
    if (status >= 400) {
      const raw = (parsed as { error?: unknown } | null)?.error ?? parsed;
      if (!isSerializedError(raw)) throw this.notADaemon(address, `HTTP ${status} without a galleon error`);
      throw GalleonError.fromJSON(raw);
    }
    return parsed as T;
  }

  /** The first candidate that answers /healthz as a galleon daemon does. */
  private async pick(): Promise<string> {
    if (this.picked !== null) return this.picked;
    const tried: string[] = [];
    let last: unknown = null;
    const fallback = this.opts.fallback === true;
    const candidates = fallback ? [...this.candidates] : this.candidates.slice(0, 1);
    for (let i = 0; i < candidates.length; i += 1) {
      const c = candidates[i] as DaemonCandidate;
      if (tried.includes(c.address)) continue;
      try {
        await this.identify(c.address);
      } catch (err) {
        if (!unreachable(err)) throw err;
        tried.push(c.address);
        last = err;
        if (i === candidates.length - 1 && fallback && this.opts.more !== undefined && !this.askedForMore) {
          this.askedForMore = true;
          candidates.push(...(await this.opts.more()).flatMap((m) => this.valid(m)));
        }
        continue;
      }
      if (tried.length > 0) this.opts.onFallback?.(`Note: no daemon answered at ${tried.join(', ')}; using ${c.address} (from ${c.source}).`);
      this.picked = c.address;
      return c.address;
    }
    if (tried.length === 1) throw last;
    throw new GalleonError(ErrorCode.DAEMON_UNREACHABLE, `cannot reach a daemon at any of ${tried.join(', ')}`, {
      hint: 'start one with `galleon daemon start` (or `galleon up`) or set --daemon-address',
      cause: last,
    });
  }

  /** A fallback from a file: one with a bad address is skipped, not an error of the user's command. */
  private valid(c: DaemonCandidate): DaemonCandidate[] {
    try {
      return [{ ...c, address: formatHostPort(parseHostPort(c.address, 'daemon address')) }];
    } catch {
      return [];
    }
  }

  private async identify(address: string): Promise<void> {
    const { status, parsed } = await this.send(address, 'GET', '/healthz', undefined, probeTimeoutMs);
    const refusal = (parsed as { error?: unknown } | null)?.error;
    if (status === 400 && isSerializedError(refusal) && refusal.code === ErrorCode.TLS_REQUIRED) throw GalleonError.fromJSON(refusal);
    const h = parsed as { ok?: unknown; reason?: unknown } | null;
    if ((status !== 200 && status !== 503) || typeof h?.ok !== 'boolean' || typeof h.reason !== 'string') {
      throw this.notADaemon(address, `GET /healthz answered HTTP ${status}`);
    }
  }

  private async send(address: string, method: HttpMethod, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; parsed: unknown }> {
    let res;
    try {
      res = await request(`${httpUrl(address, this.tls)}${path}`, {
        method,
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(this.opts.token === undefined ? {} : { authorization: `Bearer ${this.opts.token}` }) },
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs + connectTimeoutMs),
      });
    } catch (err) {
      throw this.transportError(address, err);
    }
    const text = await res.body.text().catch((err: unknown) => { throw this.transportError(address, err); });
    if (text === '') return { status: res.statusCode, parsed: null };
    try {
      return { status: res.statusCode, parsed: JSON.parse(text) };
    } catch {
      throw this.notADaemon(address, `HTTP ${res.statusCode} with something other than JSON`);
    }
  }

  private notADaemon(address: string, what: string): GalleonError {
    return new GalleonError(ErrorCode.UNAVAILABLE, `${address} is not a galleon daemon (${what})`, { hint: notADaemonHint });
  }

  private transportError(address: string, err: unknown): GalleonError {
    const code = (err as { code?: string } | null)?.code;
    const name = (err as { name?: string } | null)?.name;
    const tlsCode = tlsFailureCode(err);
    if (tlsCode !== null) {
      return new GalleonError(ErrorCode.UNAVAILABLE, `TLS with the daemon at ${address} failed (${tlsCode})`, {
        hint: this.tls === null ? 'that port does not speak plain HTTP' : 'the CLI\'s certificate (--tls-dir, GALLEON_TLS_DIR) and the daemon\'s must come from the same cluster CA; a plaintext daemon (--insecure-plaintext) takes no --tls-dir',
        cause: err,
      });
    }
    if (name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new GalleonError(ErrorCode.TIMEOUT, `the daemon at ${address} did not answer in time`, {
        hint: 'check `galleon daemon status` and the daemon log; the cluster may have no leader',
        cause: err,
      });
    }
    return new GalleonError(ErrorCode.DAEMON_UNREACHABLE, `cannot reach a daemon at ${address}`, {
      hint: 'start one with `galleon daemon start` (or `galleon up`) or set --daemon-address',
      cause: err,
    });
  }
}
