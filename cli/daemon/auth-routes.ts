/**
 * Handlers of the admin routes for users, tokens, access policies and the audit log (issue #12).
 * A token's secret is made here, on the daemon that answers `token create`, and shown once: the
 * metadata service receives only its SHA-256 (proto/auth-token.ts).
 */
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { hashToken, newToken } from '../../proto/auth-token.js';
import type { PolicyEntry, Role } from '../../proto/auth.js';
import type { AdminApi } from './admin-auth.js';
import type { DaemonHost, Handlers } from './admin-server.js';

type AuthRoutes = 'userList' | 'userCreate' | 'userDelete' | 'tokenList' | 'tokenCreate' | 'tokenRevoke' | 'volumePolicy' | 'auditList';

export function authHandlers(host: DaemonHost, api: () => AdminApi): Pick<Handlers, AuthRoutes> {
  return {
    userList: () => api().listUsers(),
    userCreate: (_, b) => api().createUser({ name: b.name, role: b.role as Role, ...(b.tenant === undefined ? {} : { tenant: b.tenant }) }),
    userDelete: ({ name }) => api().deleteUser(name),
    tokenList: () => api().listTokens(null),
    tokenCreate: async (_, b) => {
      const token = newToken();
      const info = await api().createToken({ user: b.user, hash: hashToken(token), expiresAtMs: b.ttlSec === undefined ? null : Date.now() + b.ttlSec * 1000 });
      return { ...info, token };
    },
    tokenRevoke: ({ id }) => api().revokeToken(id),
    volumePolicy: ({ ref }, b) => api().setVolumePolicy(ref, b.entries as PolicyEntry[]),
    auditList: (_, b) => {
      const log = host.auditLog();
      if (log === null) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this daemon runs without authentication and without TLS, and keeps no audit log', {
          hint: 'start it with --auth and TLS (galleon up does)',
        });
      }
      return Promise.resolve(log.list({ ...(b?.sinceMs === undefined ? {} : { sinceMs: b.sinceMs }), ...(b?.user === undefined ? {} : { user: b.user }), ...(b?.limit === undefined ? {} : { limit: b.limit }) }));
    },
  };
}
