/**
 * Issue #12, against a real daemon (`galleon up --nodes 1`: one process holding the metadata
 * member, the data node and the admin endpoint): on each of the three doors — the admin endpoint
 * (HTTP), the metadata API (gRPC, `authorization` metadata) and the block port (HTTP) — a request
 * without a token, or with a bad, expired or revoked one, gets 401; a viewer's write gets 403;
 * a user of tenant B gets exactly the "not found" of a missing volume for tenant A's volume; a
 * volume's access policy holds for block writes and mounts. Every refusal is in the node's audit
 * log, and none of them changed anything.
 */
import { strict as assert } from 'node:assert';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import type { LocalCluster, UpResult } from '../../cli/local/cluster.js';
import type { AuditEvent, TokenInfo } from '../../proto/auth.js';
import { isGalleonError, type SerializedError } from '../../proto/errors.js';
import type { Snapshot, Volume } from '../../proto/metadata-types.js';
import type { BackupSummary, JobView } from '../../dataplane/backup/service.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';

interface HttpAnswer { status: number; error: SerializedError | undefined; body: unknown }

async function http(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, token: string | null, body?: unknown): Promise<HttpAnswer> {
  const res = await request(url, {
    method, headersTimeout: 15_000, bodyTimeout: 15_000,
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let parsed: unknown = null;
  try { parsed = JSON.parse(text); } catch { /* a block body */ }
  const error = (parsed as { error?: SerializedError } | null)?.error ?? (typeof (parsed as SerializedError | null)?.code === 'string' ? parsed as SerializedError : undefined);
  return { status: res.statusCode, error, body: parsed };
}

/** The GalleonError code a metadata call fails with (or 'OK'). */
async function grpcCode(address: string, token: string | undefined, call: (c: MetadataClient) => Promise<unknown>): Promise<string> {
  const c = new MetadataClient({ addresses: [address], callDeadlineMs: 10_000, ...(token === undefined ? {} : { token }) });
  try {
    await call(c);
    return 'OK';
  } catch (err) {
    return isGalleonError(err) ? err.code : `non-GalleonError ${String(err)}`;
  } finally {
    c.close();
  }
}

describe('auth: tokens, roles, tenants, policies and audit on every door of a real daemon (integration)', function () {
  this.timeout(240_000);
  let root = '';
  let dir = '';
  let cluster: LocalCluster;
  let admin = '';
  const tokens: Record<string, string> = {};
  let revokedId = '';
  let volA: Volume;
  let startMs = 0;

  const env = (token: string): Record<string, string> => ({ GALLEON_ADDRESS: cluster.daemonAddress, GALLEON_TOKEN: token });
  const adminUrl = (path: string): string => `http://${cluster.daemonAddress}${path}`;
  const n1 = (): LocalCluster['nodes'][number] => { const n = cluster.nodes[0]; assert.ok(n !== undefined); return n; };
  const blockUrl = (volumeId: string, block = 0): string => `http://${n1().dataAddress}/v1/blocks/${volumeId}/0/${block}?epoch=1&concern=durable`;
  const makeToken = async (user: string, ttl?: string): Promise<TokenInfo & { token: string }> =>
    cliJson<TokenInfo & { token: string }>(['token', 'create', '--user', user, ...(ttl === undefined ? [] : ['--ttl', ttl])], env(admin));

  before(async function () {
    root = await makeTempDir('galleon-auth-');
    dir = join(root, 'cluster');
    startMs = Date.now();
    // Tokens are the point, not TLS (test/cli/tls.integration.test.ts): raw requests go in plaintext.
    const r = await runCli(['up', '--insecure-plaintext', '--no-first-volume', '--dir', dir, '--nodes', '1', '--base-port', '0', '--json'], {}, 120_000);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    cluster = (JSON.parse(r.stdout) as UpResult).cluster;
    assert.equal(cluster.auth, true, 'up requires tokens by default');
    admin = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
    for (const [name, role, tenant] of [['vera', 'viewer', null], ['ann', 'operator', 'a'], ['bob', 'operator', 'b'], ['olga', 'operator', 'a'], ['tad', 'admin', 'a']] as const) {
      await cliJson(['user', 'create', name, '--role', role, ...(tenant === null ? [] : ['--tenant', tenant])], env(admin));
      tokens[name] = (await makeToken(name)).token;
    }
    const expiring = await makeToken('ann', '1s');
    tokens.expired = expiring.token;
    const revoked = await makeToken('ann');
    tokens.revoked = revoked.token;
    revokedId = revoked.id;
    volA = await cliJson<Volume>(['volume', 'create', '-n', 'va', '-s', '1M', '--storage-class', 'fast-local-ssd', '--replicas', '1'], env(tokens.ann ?? ''));
    assert.equal(volA.tenant, 'a', 'a tenant\'s volume is stamped with its tenant');
    await cliJson(['volume', 'write-block', 'va', '0', '--data', 'tenant-a'], env(tokens.ann ?? ''));
    // Used once before revocation: the node has it cached, and must still refuse it within its bound.
    assert.equal((await http('GET', adminUrl('/v1/volumes'), tokens.revoked ?? '')).status, 200);
    await cliJson(['token', 'revoke', revokedId], env(admin));
    await waitFor('the 1 s token to expire', 10_000, async () => (await http('GET', adminUrl('/v1/volumes'), tokens.expired ?? '')).status === 401);
  });

  after(async function () {
    this.timeout(60_000);
    if (dir !== '') {
      await runCli(['down', '--dir', dir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(dir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('admin endpoint: 401 without, with a bad, expired or revoked token; 403 for a viewer\'s write; 404 for another tenant\'s volume', async () => {
    const list = adminUrl('/v1/volumes');
    for (const [what, t] of [['none', null], ['garbage', 'glt_not-a-real-token'], ['malformed', '!!'], ['expired', tokens.expired], ['revoked', tokens.revoked]] as const) {
      const a = what === 'revoked'
        ? await waitFor('the revoked token refused (cache bound 5 s)', 10_000, async () => { const x = await http('GET', list, t ?? null); return x.status === 401 ? x : null; })
        : await http('GET', list, t ?? null);
      assert.equal(a.status, 401, `${what}: ${JSON.stringify(a.body)}`);
      assert.equal(a.error?.code, 'UNAUTHENTICATED');
    }
    const viewerWrite = await http('POST', list, tokens.vera ?? '', { name: 'nope', size: '1M' });
    assert.equal(viewerWrite.status, 403);
    assert.equal(viewerWrite.error?.code, 'PERMISSION_DENIED');
    assert.match(viewerWrite.error?.message ?? '', /vera \(role viewer\) may not/);

    const missing = await http('GET', adminUrl('/v1/volumes/no-such-volume'), tokens.bob ?? '');
    for (const [method, path, body] of [['GET', '/v1/volumes/va', undefined], ['DELETE', '/v1/volumes/va', undefined], ['POST', '/v1/volumes/va/expand', { size: '2M' }]] as const) {
      const a = await http(method, adminUrl(path), tokens.bob ?? '', body);
      assert.equal(a.status, 404, `${method} ${path} by tenant b`);
      assert.deepEqual({ ...a.error, message: a.error?.message.replace('"va"', '"X"') }, { ...missing.error, message: missing.error?.message.replace('"no-such-volume"', '"X"') },
        'the same answer as a volume that does not exist');
    }
    const bobs = (await http('GET', list, tokens.bob ?? '')).body as Volume[];
    assert.deepEqual(bobs.map((v) => v.name), [], 'tenant b lists nothing of tenant a');
    const blockByBob = await http('GET', adminUrl('/v1/volumes/va/inodes/0/blocks/0'), tokens.bob ?? '');
    assert.equal(blockByBob.status, 404);

    // A tenant's admin manages its tenant only: other tenants' users are not listed, cluster-wide routes are refused.
    const users = (await http('GET', adminUrl('/v1/users'), tokens.tad ?? '')).body as { name: string }[];
    assert.deepEqual(users.map((u) => u.name).sort(), ['ann', 'olga', 'tad']);
    assert.equal((await http('DELETE', adminUrl('/v1/users/bob'), tokens.tad ?? '')).status, 404, 'another tenant\'s user is not found');
    const auditByTenant = await http('POST', adminUrl('/v1/audit/search'), tokens.tad ?? '', {});
    assert.equal(auditByTenant.status, 403, 'the audit log names every tenant');
    assert.match(auditByTenant.error?.message ?? '', /tenant a may not .* acts on every tenant/);
  });

  it('metadata API (gRPC): UNAUTHENTICATED, PERMISSION_DENIED, and another tenant\'s volume not found', async () => {
    const addr = n1().bindAddress;
    assert.equal(await grpcCode(addr, undefined, (c) => c.listVolumes()), 'UNAUTHENTICATED');
    assert.equal(await grpcCode(addr, 'glt_bogus', (c) => c.listVolumes()), 'UNAUTHENTICATED');
    assert.equal(await grpcCode(addr, tokens.expired, (c) => c.listVolumes()), 'UNAUTHENTICATED');
    assert.equal(await grpcCode(addr, tokens.revoked, (c) => c.listVolumes()), 'UNAUTHENTICATED');
    assert.equal(await grpcCode(addr, tokens.vera, (c) => c.createVolume({ name: 'nope', size: '1M' })), 'PERMISSION_DENIED');
    assert.equal(await grpcCode(addr, tokens.ann, (c) => c.heartbeatDataNode('node1', 0, [])), 'PERMISSION_DENIED', 'node-only calls refuse users');
    assert.equal(await grpcCode(addr, tokens.bob, (c) => c.getVolume('va')), 'VOLUME_NOT_FOUND');
    assert.equal(await grpcCode(addr, tokens.bob, (c) => c.deleteVolume('va')), 'VOLUME_NOT_FOUND');
    assert.equal(await grpcCode(addr, tokens.bob, (c) => c.getPlacement(volA.id)), 'VOLUME_NOT_FOUND');
    assert.equal(await grpcCode(addr, tokens.ann, (c) => c.getVolume('va')), 'OK');
    assert.equal(await grpcCode(addr, tokens.tad, (c) => c.removeMember('node1')), 'PERMISSION_DENIED', 'membership is cluster-wide');
    const c = new MetadataClient({ addresses: [addr], token: tokens.bob ?? '' });
    try {
      assert.deepEqual((await c.listVolumes()).map((v) => v.name), []);
    } finally {
      c.close();
    }
  });

  it('block port: 401 without a token, 403 for a viewer\'s write or a user on a node route, 404 for another tenant; the owner writes', async () => {
    assert.equal((await http('PUT', blockUrl(volA.id), null, 'x')).status, 401);
    assert.equal((await http('PUT', blockUrl(volA.id), tokens.revoked ?? '', 'x')).status, 401);
    assert.equal((await http('GET', blockUrl(volA.id), tokens.expired ?? '')).status, 401);
    const viewer = await http('PUT', blockUrl(volA.id), tokens.vera ?? '', 'x');
    assert.equal(viewer.status, 403, JSON.stringify(viewer.body));
    assert.equal((await http('POST', `http://${n1().dataAddress}/v1/replicate-batch`, tokens.ann ?? '', 'x')).status, 403, 'replication is for nodes');
    const foreign = await http('GET', blockUrl(volA.id), tokens.bob ?? '');
    assert.equal(foreign.status, 404);
    assert.equal(foreign.error?.code, 'VOLUME_NOT_FOUND');
    const own = await http('GET', blockUrl(volA.id), tokens.ann ?? '');
    assert.notEqual(own.status, 401);
    assert.notEqual(own.status, 403);
    assert.notEqual(own.status, 404, JSON.stringify(own.body));
    // A range read (issue #14) is a read: the same door as GET.
    const rangeUrl = (volumeId: string): string => `http://${n1().dataAddress}/v1/block-range/${volumeId}`;
    const range = { inode: 0, from: 0, count: 4, epoch: 1 };
    assert.equal((await http('POST', rangeUrl(volA.id), null, range)).status, 401);
    assert.equal((await http('POST', rangeUrl(volA.id), tokens.expired ?? '', range)).status, 401);
    const foreignRange = await http('POST', rangeUrl(volA.id), tokens.bob ?? '', range);
    assert.equal(foreignRange.status, 404);
    assert.equal(foreignRange.error?.code, 'VOLUME_NOT_FOUND');
    const ownRange = await http('POST', rangeUrl(volA.id), tokens.ann ?? '', range);
    assert.ok(ownRange.status !== 401 && ownRange.status !== 403 && ownRange.status !== 404, `the owner's tenant reads a range: ${ownRange.status} ${JSON.stringify(ownRange.body)}`);
  });

  it('a volume\'s access policy: read-only for one user holds for block writes and rw mounts, on the admin endpoint and the block port', async () => {
    await cliJson(['volume', 'policy', 'va', '--allow', 'user:ann=ro', '--allow', 'user:olga=rw'], env(admin));
    const write = await http('PUT', adminUrl('/v1/volumes/va/inodes/0/blocks/1'), tokens.ann ?? '', { dataBase64: Buffer.from('no').toString('base64') });
    assert.equal(write.status, 403, JSON.stringify(write.body));
    const read = await http('GET', adminUrl('/v1/volumes/va/inodes/0/blocks/0'), tokens.ann ?? '');
    assert.equal(read.status, 200, JSON.stringify(read.body));
    const mount = await http('POST', adminUrl('/v1/vfs/mounts'), tokens.ann ?? '', { volume: 'va', mountPoint: join(root, 'm') });
    assert.equal(mount.status, 403, 'a read-write mount needs rw access');
    assert.match(mount.error?.hint ?? '', /read-only/);
    await waitFor('the block port to apply the policy (volume cache bound 5 s)', 10_000, async () => (await http('PUT', blockUrl(volA.id, 5), tokens.ann ?? '', 'x')).status === 403);
    const olga = await http('PUT', adminUrl('/v1/volumes/va/inodes/0/blocks/1'), tokens.olga ?? '', { dataBase64: Buffer.from('ok').toString('base64') });
    assert.equal(olga.status, 200, JSON.stringify(olga.body));
  });

  it('every refused call is one audit event (user, tenant, verb, object, outcome, source) on the node, and none changed anything', async () => {
    const events = await cliJson<AuditEvent[]>(['audit', 'list', '--since', new Date(startMs).toISOString()], env(admin));
    const denied = events.filter((e) => e.outcome === 'denied');
    const has = (pred: (e: AuditEvent) => boolean, what: string): void => assert.ok(denied.some(pred), `audited: ${what}`);
    has((e) => e.verb === 'admin:volumeList' && e.user === null && e.code === 'UNAUTHENTICATED', 'admin 401');
    has((e) => e.verb === 'admin:volumeCreate' && e.user === 'vera' && e.code === 'PERMISSION_DENIED', 'admin 403');
    has((e) => e.verb === 'admin:volumeDelete' && e.user === 'bob' && e.tenant === 'b' && e.object === 'va' && e.code === 'VOLUME_NOT_FOUND', 'admin tenant 404');
    has((e) => e.verb === 'metadata:listVolumes' && e.user === null && e.code === 'UNAUTHENTICATED', 'gRPC 401');
    has((e) => e.verb === 'metadata:createVolume' && e.user === 'vera' && e.code === 'PERMISSION_DENIED', 'gRPC 403');
    has((e) => e.verb === 'metadata:deleteVolume' && e.user === 'bob' && e.code === 'VOLUME_NOT_FOUND', 'gRPC tenant 404');
    has((e) => e.verb === 'block:PUT /v1/blocks' && e.user === null && e.code === 'UNAUTHENTICATED', 'block 401');
    has((e) => e.verb === 'block:PUT /v1/blocks' && e.user === 'vera' && e.code === 'PERMISSION_DENIED', 'block 403');
    has((e) => e.verb === 'block:GET /v1/blocks' && e.user === 'bob' && e.object === volA.id && e.code === 'VOLUME_NOT_FOUND', 'block tenant 404');
    has((e) => e.verb === 'block:POST /v1/block-range' && e.user === 'bob' && e.object === volA.id && e.code === 'VOLUME_NOT_FOUND', 'block range tenant 404');
    has((e) => e.verb === 'admin:vfsMount' && e.user === 'ann', 'mount refused by policy');
    assert.ok(denied.every((e) => e.node === 'node1' && /^(\d{1,3}\.){3}\d{1,3}:\d+$|^ipv4:/.test(e.source) && typeof e.id === 'string' && !Number.isNaN(Date.parse(e.time))), 'each event is whole');
    assert.ok(events.some((e) => e.verb === 'admin:volumeCreate' && e.user === 'ann' && e.outcome === 'ok'), 'a user\'s mutating call is audited too');

    const volumes = await cliJson<Volume[]>(['volume', 'list'], env(admin));
    assert.deepEqual(volumes.map((v) => v.name), ['va'], 'no refused call created or deleted a volume');
    assert.deepEqual((await cliJson<{ name: string }[]>(['user', 'list'], env(admin))).map((u) => u.name).sort(), ['admin', 'ann', 'bob', 'olga', 'tad', 'vera'], 'nor a user');
    assert.equal(volumes[0]?.sizeBytes, volA.sizeBytes, 'nor expanded one');
    const block = await cliJson<{ data: string }>(['volume', 'read-block', 'va', '0'], env(admin));
    assert.equal(Buffer.from(block.data, 'base64').toString('utf8').replace(/\0+$/, ''), 'tenant-a', 'nor wrote a block');
  });

  /** An error with the name it was asked about blanked out: the same shape for a hidden object and a missing one. */
  const shape = (a: HttpAnswer, name: string): unknown => ({ status: a.status, ...a.error, message: a.error?.message.replace(JSON.stringify(name), '"X"').replace(` ${name} `, ' X ') });

  it('snapshots are their volume\'s tenant\'s: ann snapshots, clones and restores va; bob finds none of it, each refusal audited', async () => {
    const sinceMs = Date.now();
    const ann = tokens.ann ?? '';
    const bob = tokens.bob ?? '';
    const snap = await http('POST', adminUrl('/v1/snapshots'), ann, { volume: 'va', name: 'sa' });
    assert.equal(snap.status, 200, JSON.stringify(snap.body));
    assert.equal((snap.body as Snapshot).volumeId, volA.id);
    assert.equal((await http('POST', adminUrl('/v1/volumes'), bob, { name: 'vb', size: '1M', storageClass: 'fast-local-ssd', replicas: 1 })).status, 200);

    const missingSnap = await http('GET', adminUrl('/v1/snapshots/no-such-snap'), bob);
    const missingVol = await http('GET', adminUrl('/v1/volumes/no-such-volume'), bob);
    const refusals: [string, 'GET' | 'POST', string, unknown, HttpAnswer][] = [
      ['sa', 'GET', '/v1/snapshots/sa', undefined, missingSnap],
      ['sa', 'POST', '/v1/snapshots/sa/delete', {}, missingSnap],
      ['sa', 'POST', '/v1/snapshots/sa/clone', { name: 'stolen' }, missingSnap],
      ['sa', 'GET', '/v1/snapshots/sa/inodes/0/blocks/0', undefined, missingSnap],
      ['sa', 'POST', '/v1/volumes/vb/restore', { snapshot: 'sa' }, missingSnap],
      ['va', 'POST', '/v1/volumes/va/restore', { snapshot: 'sa' }, missingVol],
      ['va', 'POST', '/v1/snapshots', { volume: 'va', name: 'sb' }, missingVol],
      ['va', 'GET', '/v1/volumes/va/snapshots', undefined, missingVol],
    ];
    for (const [name, method, path, body, missing] of refusals) {
      const a = await http(method, adminUrl(path), bob, body);
      assert.equal(a.status, 404, `${method} ${path} by tenant b: ${JSON.stringify(a.body)}`);
      assert.deepEqual(shape(a, name), shape(missing, name === 'sa' ? 'no-such-snap' : 'no-such-volume'), `${method} ${path}: the answer of a missing one`);
    }
    assert.deepEqual((await http('GET', adminUrl('/v1/snapshots'), bob)).body, [], 'tenant b lists none of a\'s snapshots');
    const addr = n1().bindAddress;
    assert.equal(await grpcCode(addr, bob, (c) => c.getSnapshot('sa')), 'SNAPSHOT_NOT_FOUND');
    assert.equal(await grpcCode(addr, bob, (c) => c.deleteSnapshot('sa')), 'SNAPSHOT_NOT_FOUND');
    assert.equal(await grpcCode(addr, bob, (c) => c.cloneVolume('sa', 'stolen2')), 'SNAPSHOT_NOT_FOUND');

    assert.deepEqual(((await http('GET', adminUrl('/v1/snapshots'), ann)).body as Snapshot[]).map((x) => x.name), ['sa']);
    const clone = await http('POST', adminUrl('/v1/snapshots/sa/clone'), ann, { name: 'va-clone' });
    assert.equal(clone.status, 200, JSON.stringify(clone.body));
    assert.equal((clone.body as Volume).tenant, 'a', 'the clone is its source\'s tenant\'s');
    const restore = await http('POST', adminUrl('/v1/volumes/va/restore'), ann, { snapshot: 'sa' });
    assert.equal(restore.status, 200, JSON.stringify(restore.body));
    // The restore's background freeing is ann's to follow, and bob's to find missing.
    const opId = (restore.body as { operation?: { id: string } }).operation?.id ?? '';
    assert.notEqual(opId, '', 'a restore names its operation');
    assert.equal((await http('GET', adminUrl(`/v1/operations/${opId}`), ann)).status, 200, 'ann follows her restore');
    const missingOp = await http('GET', adminUrl('/v1/operations/op-none'), bob);
    const bobOp = await http('GET', adminUrl(`/v1/operations/${opId}`), bob);
    assert.equal(bobOp.status, 404, JSON.stringify(bobOp.body));
    assert.deepEqual(shape(bobOp, opId), shape(missingOp, 'op-none'), 'another tenant\'s operation: the answer of a missing one');

    const events = (await cliJson<AuditEvent[]>(['audit', 'list', '--since', new Date(sinceMs).toISOString(), '--user', 'bob'], env(admin)))
      .filter((e) => e.outcome === 'denied');
    assert.equal(events.filter((e) => e.verb.startsWith('admin:')).length, refusals.length + 1, `one event per refusal: ${JSON.stringify(events.map((e) => e.verb))}`);
    assert.equal(events.filter((e) => e.verb.startsWith('metadata:')).length, 3, 'and per gRPC refusal');
    assert.deepEqual(((await http('GET', adminUrl('/v1/snapshots'), admin)).body as Snapshot[]).map((x) => x.name), ['sa'], 'bob deleted no snapshot and made none');
    const names = ((await http('GET', adminUrl('/v1/volumes'), admin)).body as Volume[]).map((v) => v.name).sort();
    assert.deepEqual(names, ['va', 'va-clone', 'vb'], 'nor cloned one');
  });

  it('backups are their source volume\'s tenant\'s: ann backs up, verifies and restores va; bob finds none of it, each refusal audited', async () => {
    const sinceMs = Date.now();
    const ann = tokens.ann ?? '';
    const bob = tokens.bob ?? '';
    await mkdir(join(root, 'target'));
    assert.equal((await http('POST', adminUrl('/v1/backup-targets'), admin, { name: 't', dir: join(root, 'target') })).status, 200);
    const done = async (token: string, job: JobView): Promise<JobView> => waitFor(`${job.kind} job ${job.id}`, 60_000, async () => {
      const j = (await http('GET', adminUrl(`/v1/backup-jobs/${job.id}`), token)).body as JobView;
      return j.state === 'running' ? null : j;
    });
    const started = await http('POST', adminUrl('/v1/backups'), ann, { volume: 'va', target: 't', snapshot: 'sa', strategy: 'full' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const backup = await done(ann, started.body as JobView);
    assert.equal(backup.state, 'done', JSON.stringify(backup.error));
    const id = backup.backupId;
    assert.deepEqual(((await http('GET', adminUrl('/v1/backups'), ann)).body as BackupSummary[]).map((b) => [b.id, b.tenant]), [[id, 'a']]);

    const otherId = `${id.slice(0, -8)}00000000`;
    const missingBackup = await http('GET', adminUrl(`/v1/backups/${otherId}`), bob);
    const missingJob = await http('GET', adminUrl('/v1/backup-jobs/job-000000000000'), bob);
    const missingVol = await http('GET', adminUrl('/v1/volumes/no-such-volume'), bob);
    const missingSnap = await http('GET', adminUrl('/v1/snapshots/no-such-snap'), bob);
    const refusals: [string, string, 'GET' | 'POST' | 'DELETE', string, unknown, HttpAnswer][] = [
      [id, otherId, 'GET', `/v1/backups/${id}`, undefined, missingBackup],
      [id, otherId, 'DELETE', `/v1/backups/${id}`, undefined, missingBackup],
      [id, otherId, 'POST', `/v1/backups/${id}/restore`, { name: 'stolen' }, missingBackup],
      [id, otherId, 'POST', `/v1/backups/${id}/verify`, {}, missingBackup],
      [backup.id, 'job-000000000000', 'GET', `/v1/backup-jobs/${backup.id}`, undefined, missingJob],
      ['va', 'no-such-volume', 'POST', '/v1/backups', { volume: 'va', target: 't' }, missingVol],
      ['sa', 'no-such-snap', 'POST', '/v1/backups', { volume: 'vb', target: 't', snapshot: 'sa' }, missingSnap],
    ];
    for (const [name, missingName, method, path, body, missing] of refusals) {
      const a = await http(method, adminUrl(path), bob, body);
      assert.equal(a.status, 404, `${method} ${path} by tenant b: ${JSON.stringify(a.body)}`);
      assert.deepEqual(shape(a, name), shape(missing, missingName), `${method} ${path}: the answer of a missing one`);
    }
    assert.deepEqual((await http('GET', adminUrl('/v1/backups'), bob)).body, [], 'tenant b lists none of a\'s backups');
    assert.equal((await http('GET', adminUrl('/v1/backup-targets'), bob)).status, 403, 'targets are cluster-wide');

    const verify = await done(ann, (await http('POST', adminUrl(`/v1/backups/${id}/verify`), ann, {})).body as JobView);
    assert.equal(verify.state, 'done', JSON.stringify(verify.error));
    const restore = await done(ann, (await http('POST', adminUrl(`/v1/backups/${id}/restore`), ann, { name: 'va-restored' })).body as JobView);
    assert.equal(restore.state, 'done', JSON.stringify(restore.error));
    const restored = (await http('GET', adminUrl('/v1/volumes/va-restored'), ann)).body as Volume;
    assert.equal(restored.tenant, 'a', 'the restored volume is the caller\'s tenant\'s');
    const block = await cliJson<{ data: string }>(['volume', 'read-block', 'va-restored', '0'], env(admin));
    assert.equal(Buffer.from(block.data, 'base64').toString('utf8').replace(/\0+$/, ''), 'tenant-a');

    const events = (await cliJson<AuditEvent[]>(['audit', 'list', '--since', new Date(sinceMs).toISOString(), '--user', 'bob'], env(admin)))
      .filter((e) => e.outcome === 'denied');
    assert.equal(events.length, refusals.length + 1, `one event per refusal: ${JSON.stringify(events.map((e) => e.verb))}`);
    assert.deepEqual(((await http('GET', adminUrl('/v1/backups'), admin)).body as BackupSummary[]).map((b) => b.id), [id], 'bob deleted no backup and made none');
    const names = ((await http('GET', adminUrl('/v1/volumes'), admin)).body as Volume[]).map((v) => v.name).sort();
    assert.deepEqual(names, ['va', 'va-clone', 'va-restored', 'vb'], 'nor restored one');
  });

  it('a backup restore naming a key file on the daemon\'s disk (--source-key-file) needs admin, not write', async () => {
    await cliJson(['user', 'create', 'otto', '--role', 'operator'], env(admin));
    const otto = (await makeToken('otto')).token;
    const url = adminUrl('/v1/backups/bk-none/restore');
    const withFile = await http('POST', url, otto, { name: 'r1', sourceKeyFile: '/etc/shadow' });
    assert.equal(withFile.status, 403, JSON.stringify(withFile.body));
    assert.match(withFile.error?.message ?? '', /otto \(role operator\) may not restore with --source-key-file/);
    // The role is enough without the file: the route runs and finds no such backup.
    const without = await http('POST', url, otto, { name: 'r1' });
    assert.notEqual(without.status, 403, JSON.stringify(without.body));
    const byAdmin = await http('POST', url, admin, { name: 'r1', sourceKeyFile: '/etc/shadow' });
    assert.notEqual(byAdmin.status, 403, JSON.stringify(byAdmin.body));
  });
});
