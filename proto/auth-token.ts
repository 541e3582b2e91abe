/**
 * Tokens and the check every edge runs on them (issue #12).
 *
 * A token is `glt_` + 256 random bits (base64url). The cluster keeps only its SHA-256 (hex): the
 * secret is shown once, at creation, and is in no Raft entry, snapshot or log. A bearer is found
 * by the hash of what it presents; the node credential (a cluster-wide token in a 0600 file, read
 * at start) is compared with `timingSafeEqual` on the hashes, so its check takes the same time
 * whatever the guess.
 *
 * Cost: a verified token is cached (`tokenCacheTtlMs`, at most `maxCachedTokens`), so a request
 * costs one SHA-256 and a map lookup; a miss costs one local read of the state (a member's own
 * replica, or a stale read of one member for a data-only node), never a Raft round. The price is
 * a bound on revocation and deletion: a revoked token may pass for up to `tokenCacheTtlMs`
 * (5 s) on a node that cached it. Expiry is checked on every request against the cached record.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { principalOfToken, unauthenticated, type Principal, type TokenRecord, type User } from './auth.js';

export const tokenPrefix = 'glt_';
/** 256 bits of randomness per token. */
export const tokenEntropyBytes = 32;
/** How long a verified token is trusted without looking again: the bound on revocation. */
export const tokenCacheTtlMs = 5_000;
/** Verified tokens kept per process; the oldest goes first. */
export const maxCachedTokens = 10_000;
/** Longest bearer accepted; a real token is 47 characters. */
export const maxBearerChars = 256;
/** The HTTP header and gRPC metadata key carrying `Bearer <token>`. */
export const authorizationHeader = 'authorization';

export function newToken(): string {
  return tokenPrefix + randomBytes(tokenEntropyBytes).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** The token of an `authorization` value, or throws UNAUTHENTICATED saying what is wrong. */
export function parseBearer(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value === '') throw unauthenticated('no token: the request has no authorization header');
  if (value.length > maxBearerChars) throw unauthenticated(`the authorization header is longer than ${maxBearerChars} characters`);
  const m = /^Bearer ([A-Za-z0-9_-]+)$/.exec(value);
  if (m === null || m[1] === undefined) throw unauthenticated('the authorization header is not "Bearer <token>"');
  return m[1];
}

/** What the state holds for a token hash: the record and its user (either may be gone). */
export interface CredentialRecord { token: TokenRecord | null; user: User | null }
export type CredentialLookup = (hash: string) => Promise<CredentialRecord>;

export interface AuthenticatorOptions {
  /** SHA-256 (hex) of the cluster's node credential. */
  nodeTokenHash: string;
  lookup: CredentialLookup;
  nowMs?: () => number;
  cacheTtlMs?: number;
  maxEntries?: number;
}

export class Authenticator {
  private readonly cache = new Map<string, { rec: CredentialRecord; fetchedAtMs: number }>();
  private readonly nodeHash: Buffer;
  private readonly now: () => number;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.nodeHash = Buffer.from(opts.nodeTokenHash, 'hex');
    this.now = opts.nowMs ?? Date.now;
  }

  /** The caller of an `authorization` header value; throws UNAUTHENTICATED. */
  async authenticate(header: string | string[] | undefined): Promise<Principal> {
    const hash = hashToken(parseBearer(header));
    const h = Buffer.from(hash, 'hex');
    if (h.length === this.nodeHash.length && timingSafeEqual(h, this.nodeHash)) return { kind: 'node' };
    const now = this.now();
    let hit = this.cache.get(hash);
    if (hit === undefined || now - hit.fetchedAtMs >= (this.opts.cacheTtlMs ?? tokenCacheTtlMs)) {
      const rec = await this.opts.lookup(hash);
      this.cache.delete(hash);
      // Only usable tokens are kept: a refused one costs its sender a lookup, never memory here.
      if (rec.token !== null && !rec.token.revoked && rec.user !== null) {
        hit = { rec, fetchedAtMs: now };
        this.cache.set(hash, hit);
        if (this.cache.size > (this.opts.maxEntries ?? maxCachedTokens)) this.cache.delete(this.cache.keys().next().value as string);
      } else {
        hit = { rec, fetchedAtMs: now };
      }
    }
    return principalOfToken(hit.rec.token, hit.rec.user, now);
  }

  /** Drops what this process cached (a revocation served here applies at once here). */
  forget(): void {
    this.cache.clear();
  }
}
