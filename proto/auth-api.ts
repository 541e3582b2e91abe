/**
 * The metadata API's calls for users, tokens and volume access policies (issue #12), beside
 * MetadataApi (metadata-types.ts): `MetadataClient` implements both. Who may call each is decided
 * at the edges (metadata/service/auth-guard.ts), not here.
 */
import type { PolicyEntry, TokenInfo, User } from './auth.js';
import type { CredentialRecord } from './auth-token.js';
import type { ReadOptions, TenantScope, Volume } from './metadata-types.js';

export interface UserSpec {
  name: string;
  role: User['role'];
  tenant?: string | null;
}

export interface TokenSpec {
  user: string;
  /** Hex SHA-256 of the token; the secret stays with whoever made it. */
  hash: string;
  expiresAtMs?: number | null;
}

export interface AuthApi {
  createUser(spec: UserSpec): Promise<User>;
  deleteUser(name: string): Promise<User>;
  listUsers(opts?: ReadOptions): Promise<User[]>;
  createToken(spec: TokenSpec): Promise<TokenInfo>;
  revokeToken(id: string): Promise<TokenInfo>;
  listTokens(user: string | null, opts?: ReadOptions): Promise<TokenInfo[]>;
  /** Replaces a volume's access policy; an empty list removes it (access by role again). */
  setVolumePolicy(ref: string, entries: PolicyEntry[], scope?: TenantScope): Promise<Volume>;
  /** The credential check of the edges (nodes only). */
  authLookup(hash: string, opts?: ReadOptions): Promise<CredentialRecord>;
}
