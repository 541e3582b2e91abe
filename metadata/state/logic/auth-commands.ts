/**
 * Users, tokens and volume access policies in the replicated state (issue #12). Pure like the
 * other handlers. A token is stored by the SHA-256 of its secret (`tk/<hash>`); the secret itself
 * is made and shown by the edge that created it and never enters a command, so the Raft log,
 * snapshots and this table hold no usable credential.
 */
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { roles, type PolicyEntry, type TokenInfo, type TokenRecord, type User } from '../../../proto/auth.js';
import type { CredentialRecord } from '../../../proto/auth-token.js';
import { listOf, requireScopedVolume } from './lookup.js';
import { Table, type StateReader, type Tx } from './tx.js';
import { checkInt, checkKeys, checkName, checkOneOf, invalidArgument, isRecord } from './validate.js';
import type { Volume } from '../../../proto/metadata-types.js';
// Type only: commands.ts imports this file, a value import back would be a cycle.
import type { CommandContext } from './commands.js';

/** Users a cluster holds at most (each is a mirror entry on every member). */
export const maxUsers = 10_000;
/** Live tokens one user may hold; revoked and expired ones still count until the user is deleted. */
export const maxTokensPerUser = 100;
/** Entries of one volume's access policy. */
export const maxPolicyEntries = 64;
/** The latest expiry a token may have: about 100 years after the epoch of 2000. */
const maxExpiresAtMs = 4_102_444_800_000;
const userSpecKeys = ['name', 'role', 'tenant'] as const;
const tokenSpecKeys = ['user', 'hash', 'expiresAtMs'] as const;

type Handler = (tx: Tx, ctx: CommandContext, args: unknown[]) => unknown;

export function requireUser(r: StateReader, name: unknown): User {
  const u = typeof name === 'string' ? r.get<User>(Table.User, name) : undefined;
  if (u === undefined) throw new GalleonError(ErrorCode.USER_NOT_FOUND, `user ${JSON.stringify(name)} not found`, { hint: 'list users with: galleon user list' });
  return u;
}

function tokensOf(r: StateReader, user: string): TokenRecord[] {
  return listOf<TokenRecord>(r, Table.Token).filter((t) => t.user === user);
}

export function tokenInfo(t: TokenRecord): TokenInfo {
  return { id: t.id, user: t.user, createdAtMs: t.createdAtMs, expiresAtMs: t.expiresAtMs, revoked: t.revoked };
}

function checkHash(v: unknown): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw invalidArgument('token hash must be 64 lowercase hex digits (SHA-256)', 'let the daemon make tokens: galleon token create');
  return v;
}

function checkPolicy(raw: unknown): PolicyEntry[] {
  if (!Array.isArray(raw) || raw.length > maxPolicyEntries) throw invalidArgument(`a policy is a list of at most ${maxPolicyEntries} entries`, 'e.g. [{"subject":"user:alice","access":"ro"}]');
  const seen = new Set<string>();
  return raw.map((e: unknown) => {
    if (!isRecord(e)) throw invalidArgument('a policy entry must be an object', 'e.g. {"subject":"role:viewer","access":"ro"}');
    checkKeys('policy entry', e, ['subject', 'access']);
    const subject = typeof e.subject === 'string' ? e.subject : '';
    const [kind, name] = subject.split(':', 2);
    if (kind === 'user') checkName('user', name);
    else if (kind === 'role') checkOneOf('role', name, roles);
    else throw invalidArgument(`policy subject ${JSON.stringify(subject)} is not user:<name> or role:<role>`, 'e.g. user:alice or role:viewer');
    if (seen.has(subject)) throw invalidArgument(`policy subject ${subject} is listed twice`, 'give each subject one entry');
    seen.add(subject);
    return { subject, access: checkOneOf('access', e.access, ['ro', 'rw'] as const) };
  });
}

export const authHandlers: Record<string, Handler> = {
  createUser(tx, ctx, [spec]) {
    if (!isRecord(spec)) throw invalidArgument('user spec must be an object', 'pass {"name": ..., "role": "viewer"}');
    checkKeys('user spec', spec, userSpecKeys);
    const name = checkName('user', spec.name);
    if (tx.get(Table.User, name) !== undefined) throw new GalleonError(ErrorCode.USER_EXISTS, `user ${name} already exists`, { hint: 'choose another name, or delete the user first' });
    if (tx.ids(Table.User).length >= maxUsers) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `the cluster holds ${maxUsers} users already`, { hint: 'delete unused users first' });
    const user: User = {
      name, role: checkOneOf('role', spec.role, roles),
      tenant: spec.tenant === undefined || spec.tenant === null ? null : checkName('tenant', spec.tenant), createdAtMs: ctx.stampMs,
    };
    tx.put(Table.User, name, user);
    return user;
  },

  deleteUser(tx, _ctx, [name]) {
    const user = requireUser(tx, name);
    for (const t of tokensOf(tx, user.name)) tx.del(Table.Token, t.hash);
    tx.del(Table.User, user.name);
    return user;
  },

  createToken(tx, ctx, [spec]) {
    if (!isRecord(spec)) throw invalidArgument('token spec must be an object', 'pass {"user": ..., "hash": ...}');
    checkKeys('token spec', spec, tokenSpecKeys);
    const user = requireUser(tx, spec.user);
    const hash = checkHash(spec.hash);
    if (tx.get(Table.Token, hash) !== undefined) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'a token with that hash exists', { hint: 'make a new token' });
    if (tokensOf(tx, user.name).length >= maxTokensPerUser) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `user ${user.name} holds ${maxTokensPerUser} tokens already`, { hint: 'revoke or delete old ones (galleon token list)' });
    }
    const expiresAtMs = spec.expiresAtMs === undefined || spec.expiresAtMs === null ? null : checkInt('expiresAtMs', spec.expiresAtMs, ctx.stampMs + 1, maxExpiresAtMs);
    const token: TokenRecord = { id: ctx.newId('token'), user: user.name, hash, createdAtMs: ctx.stampMs, expiresAtMs, revoked: false };
    tx.put(Table.Token, hash, token);
    return tokenInfo(token);
  },

  revokeToken(tx, _ctx, [id]) {
    const token = typeof id === 'string' ? listOf<TokenRecord>(tx, Table.Token).find((t) => t.id === id) : undefined;
    if (token === undefined) throw new GalleonError(ErrorCode.TOKEN_NOT_FOUND, `token ${JSON.stringify(id)} not found`, { hint: 'list tokens with: galleon token list' });
    const next = { ...token, revoked: true };
    tx.put(Table.Token, token.hash, next);
    return tokenInfo(next);
  },

  setVolumePolicy(tx, ctx, [ref, entries, scope]) {
    const vol = requireScopedVolume(tx, ref, scope);
    const policy = checkPolicy(entries);
    const { policy: _old, ...rest } = vol;
    const next: Volume = { ...rest, ...(policy.length === 0 ? {} : { policy }), updatedAtMs: ctx.stampMs, version: vol.version + 1 };
    tx.put(Table.Volume, next.id, next);
    return next;
  },
};

export const authQueries: Record<string, (r: StateReader, args: unknown[]) => unknown> = {
  listUsers: (r) => listOf<User>(r, Table.User),
  /** Every token, or one user's; never their hashes. */
  listTokens: (r, [user]) => listOf<TokenRecord>(r, Table.Token).filter((t) => user === undefined || user === null || t.user === user).map(tokenInfo),
  /** The edges' credential check (proto/auth-token.ts): a token by its hash, and its user. */
  authLookup: (r, [hash]): CredentialRecord => {
    const token = r.get<TokenRecord>(Table.Token, checkHash(hash)) ?? null;
    return { token, user: token === null ? null : r.get<User>(Table.User, token.user) ?? null };
  },
};
