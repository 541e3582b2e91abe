/**
 * The pure rules of issue #12 (proto/auth.ts), exhaustively over roles × tenants × policies, and
 * the token check's cache (proto/auth-token.ts) with a fake clock: the revocation bound, expiry
 * on every request, the size bound, and the node credential.
 */
import { strict as assert } from 'node:assert';
import { principalOfToken, requireClusterWide, roles, seesClass, seesTenant, volumeAccess, requireNeed, type PolicyEntry, type Principal, type TokenRecord, type User } from '../../proto/auth.js';
import { Authenticator, hashToken, newToken, parseBearer, tokenCacheTtlMs, type CredentialRecord } from '../../proto/auth-token.js';
import { isGalleonError } from '../../proto/errors.js';

const user = (role: User['role'], tenant: string | null, name = 'u'): Principal => ({ kind: 'user', user: name, role, tenant, tokenId: 't' });

describe('auth rules (pure)', () => {
  it('roles grant read < write < admin, and only nodes make node calls', () => {
    const grants = { viewer: ['read'], operator: ['read', 'write'], admin: ['read', 'write', 'admin'] } as const;
    for (const role of roles) {
      for (const need of ['read', 'write', 'admin', 'node'] as const) {
        const allowed = (grants[role] as readonly string[]).includes(need);
        let refused: unknown = null;
        try { requireNeed(user(role, null), need, 'x'); } catch (err) { refused = err; }
        assert.equal(refused === null, allowed, `${role} ${need}`);
        if (!allowed) assert.ok(isGalleonError(refused, 'PERMISSION_DENIED'));
      }
    }
    requireNeed({ kind: 'node' }, 'node', 'x');
    requireClusterWide({ kind: 'node' }, 'x');
    requireClusterWide(user('admin', null), 'x');
    assert.throws(() => requireClusterWide(user('admin', 'a'), 'stop daemons'), /tenant a may not stop daemons/);
  });

  it('tenants see their own volumes only; shared classes are seen by all', () => {
    for (const mine of [null, 'a', 'b']) {
      for (const owner of [undefined, 'a', 'b']) {
        const p = user('operator', mine);
        assert.equal(seesTenant(p, owner), mine === null || owner === mine, `tenant ${String(mine)} volume of ${String(owner)}`);
        assert.equal(seesClass(p, owner), owner === undefined || mine === null || owner === mine);
      }
    }
  });

  it('volume access: role by default, the user\'s entry over its role\'s, none when unlisted, admin always rw, other tenants none', () => {
    const policy: PolicyEntry[] = [{ subject: 'user:ann', access: 'ro' }, { subject: 'role:operator', access: 'rw' }, { subject: 'role:viewer', access: 'ro' }];
    assert.equal(volumeAccess(user('viewer', null), {}), 'ro');
    assert.equal(volumeAccess(user('operator', null), {}), 'rw');
    assert.equal(volumeAccess(user('operator', null, 'ann'), { policy }), 'ro');
    assert.equal(volumeAccess(user('operator', null, 'bob'), { policy }), 'rw');
    assert.equal(volumeAccess(user('viewer', null, 'vic'), { policy: [{ subject: 'user:ann', access: 'rw' }] }), 'none');
    assert.equal(volumeAccess(user('admin', null), { policy: [] }), 'rw');
    assert.equal(volumeAccess(user('admin', 'b'), { tenant: 'a' }), 'none');
    assert.equal(volumeAccess(user('operator', 'a'), { tenant: 'a', policy }), 'rw');
    assert.equal(volumeAccess({ kind: 'node' }, { tenant: 'a', policy: [] }), 'rw');
  });

  it('a token is refused when unknown, revoked, expired or its user is gone', () => {
    const t: TokenRecord = { id: 'i', user: 'u', hash: 'h', createdAtMs: 0, expiresAtMs: 100, revoked: false };
    const u: User = { name: 'u', role: 'viewer', tenant: null, createdAtMs: 0 };
    assert.deepEqual(principalOfToken(t, u, 99), { kind: 'user', user: 'u', role: 'viewer', tenant: null, tokenId: 'i' });
    for (const [tok, usr, now] of [[null, u, 0], [{ ...t, revoked: true }, u, 0], [t, u, 100], [t, null, 0]] as const) {
      assert.throws(() => principalOfToken(tok, usr, now), (err: unknown) => isGalleonError(err, 'UNAUTHENTICATED'));
    }
  });
});

describe('Authenticator (token check with a bounded cache)', () => {
  const node = newToken();
  const alice = newToken();

  function fixture(): { auth: Authenticator; now: { ms: number }; lookups: { n: number }; rec: CredentialRecord } {
    const now = { ms: 1_000 };
    const lookups = { n: 0 };
    const rec: CredentialRecord = {
      token: { id: 'ta', user: 'alice', hash: hashToken(alice), createdAtMs: 0, expiresAtMs: 1_000 + 60_000, revoked: false },
      user: { name: 'alice', role: 'operator', tenant: 'a', createdAtMs: 0 },
    };
    const auth = new Authenticator({
      nodeTokenHash: hashToken(node), nowMs: () => now.ms, maxEntries: 2,
      lookup: (hash) => { lookups.n += 1; return Promise.resolve(hash === rec.token?.hash ? structuredClone(rec) : { token: null, user: null }); },
    });
    return { auth, now, lookups, rec };
  }

  it('the node credential needs no lookup; a user\'s token is looked up once per ttl', async () => {
    const { auth, now, lookups } = fixture();
    assert.deepEqual(await auth.authenticate(`Bearer ${node}`), { kind: 'node' });
    assert.equal(lookups.n, 0);
    for (let i = 0; i < 100; i++) assert.equal((await auth.authenticate(`Bearer ${alice}`)).kind, 'user');
    assert.equal(lookups.n, 1, 'one lookup for 100 requests inside the ttl');
    now.ms += tokenCacheTtlMs;
    await auth.authenticate(`Bearer ${alice}`);
    assert.equal(lookups.n, 2, 'looked up again once the ttl passed');
  });

  it('a revocation is honoured within tokenCacheTtlMs; an expiry at once', async () => {
    const { auth, now, rec } = fixture();
    await auth.authenticate(`Bearer ${alice}`);
    assert.ok(rec.token !== null);
    rec.token.revoked = true;
    await auth.authenticate(`Bearer ${alice}`);
    now.ms += tokenCacheTtlMs;
    await assert.rejects(auth.authenticate(`Bearer ${alice}`), (err: unknown) => isGalleonError(err, 'UNAUTHENTICATED'));
    const f2 = fixture();
    await f2.auth.authenticate(`Bearer ${alice}`);
    f2.now.ms = 1_000 + 60_000;
    await assert.rejects(f2.auth.authenticate(`Bearer ${alice}`), /expired/);
  });

  it('refuses missing and malformed headers and unknown tokens, and keeps refused ones out of the cache', async () => {
    const { auth, lookups } = fixture();
    for (const h of [undefined, '', 'Basic abc', 'Bearer', 'Bearer a b', `Bearer ${'x'.repeat(300)}`]) {
      await assert.rejects(auth.authenticate(h), (err: unknown) => isGalleonError(err, 'UNAUTHENTICATED'), String(h));
    }
    await assert.rejects(auth.authenticate(`Bearer ${newToken()}`), /not known/);
    await assert.rejects(auth.authenticate(`Bearer ${newToken()}`), /not known/);
    assert.equal(lookups.n, 2, 'each unknown token is looked up, never cached');
    assert.equal(parseBearer(`Bearer ${alice}`), alice);
  });
});
