/**
 * One admin route table (cli/lib/admin-routes.ts) for the daemon's admin server and the CLI's
 * client: every client call in cli/ names a route of the table with that route's path parameters,
 * no CLI code writes an admin path of its own, and the real admin server answers every route of the
 * table (a route on one side only would be a 404/405 here, or a name the table lacks).
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { startAdminServer } from '../../cli/daemon/admin-server.js';
import type { AdminServer, DaemonHost } from '../../cli/daemon/admin-server.js';
import { adminPath, adminRouteParamNames, adminRoutes } from '../../cli/lib/admin-routes.js';
import type { AdminRouteName } from '../../cli/lib/admin-routes.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { repoRoot } from './helpers.js';

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...await sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** `.route<T>('name', { a: …, b })` → name and the keys of its params literal. */
const routeCall = /\.route(?:<[^>]*>)?\(\s*'([A-Za-z]+)',\s*\{([^}]*)\}/g;

function keysOf(literal: string): string[] {
  return literal.split(',').map((part) => part.split(':')[0]?.trim() ?? '').filter((k) => k !== '').sort();
}

/** A host whose every part is down: each routed request fails inside its handler, never before. */
function downHost(): DaemonHost {
  const unavailable = (): GalleonError => new GalleonError(ErrorCode.UNAVAILABLE, 'role not running in this test', { hint: 'none' });
  const down = (): never => { throw unavailable(); };
  const rejected = (): Promise<never> => Promise.reject(unavailable());
  return {
    metadata: down, status: rejected, config: down, health: () => Promise.resolve({ ok: false, reason: 'test' }),
    requestStop: down, restart: rejected, join: rejected, leave: rejected, blocks: down, metrics: rejected, mounts: down, keys: down, backups: down,
    auth: () => null, auditLog: () => null,
  };
}

describe('cli admin route table', () => {
  it('every client call in cli/ names a table route with exactly its path parameters, and no CLI code writes an admin path', async () => {
    const files = await sourceFiles(path.join(repoRoot, 'cli'));
    let calls = 0;
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      const rel = path.relative(repoRoot, file);
      if (!rel.endsWith(path.join('lib', 'admin-routes.ts'))) {
        assert.doesNotMatch(text, /['`]\/v1\//, `${rel} writes an admin path of its own: add it to cli/lib/admin-routes.ts and call it by name`);
      }
      for (const m of text.matchAll(routeCall)) {
        const name = m[1] ?? '';
        calls += 1;
        assert.ok(name in adminRoutes, `${rel} calls admin route ${name}, which the table does not have`);
        assert.deepEqual(keysOf(m[2] ?? ''), adminRouteParamNames(name as AdminRouteName).sort(), `${rel}: path parameters of ${name}`);
      }
    }
    // Every command that talks to a daemon goes through route(): far more than a handful of calls.
    assert.ok(calls >= 25, `found only ${calls} route() calls in cli/`);
  });

  it('fills path parameters as single percent-encoded segments and refuses missing or unknown ones', () => {
    assert.equal(adminPath('blockRead', { ref: 'a b', inode: '0', block: '../7' }), '/v1/volumes/a%20b/inodes/0/blocks/..%2F7');
    assert.throws(() => adminPath('volumeGet', {}), /needs the path parameter ref/);
    assert.throws(() => adminPath('volumeList', { ref: 'x' }), /has no path parameter ref/);
  });

  describe('the real admin server', () => {
    let server: AdminServer | null = null;
    before(async () => {
      server = await startAdminServer(downHost(), { host: '127.0.0.1', port: 0 }, pino({ level: 'silent' }));
    });
    after(async () => { await server?.close(); });

    it('answers every route of the table (no 404 or 405), and 404/405 for what the table lacks', async () => {
      assert.ok(server);
      for (const name of Object.keys(adminRoutes) as AdminRouteName[]) {
        const spec = adminRoutes[name];
        const params = Object.fromEntries(adminRouteParamNames(name).map((p) => [p, 'x']));
        const res = await request(`http://${server.address}${adminPath(name, params)}`, {
          method: spec.method, headers: { 'content-type': 'application/json' }, body: 'body' in spec ? '{}' : null,
        });
        const text = await res.body.text();
        // A 404 of the handler itself (an id the daemon's own memory lacks) is routed, not missing.
        const handlerNotFound = res.statusCode === 404 && (JSON.parse(text) as { error?: { code?: string } }).error?.code === ErrorCode.OPERATION_NOT_FOUND;
        assert.ok((res.statusCode !== 404 || handlerNotFound) && res.statusCode !== 405, `${spec.method} ${spec.path} (${name}): HTTP ${res.statusCode} ${text}`);
        assert.ok(res.statusCode >= 400, `${name} cannot succeed against a host that is down: HTTP ${res.statusCode}`);
      }
      const unknown = await request(`http://${server.address}/v1/volumes/x/no-such-route`, { method: 'GET' });
      assert.equal(unknown.statusCode, 404);
      await unknown.body.dump();
      const wrongMethod = await request(`http://${server.address}/v1/nodes`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(wrongMethod.statusCode, 405);
      await wrongMethod.body.dump();
    });
  });
});
