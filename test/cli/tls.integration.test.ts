/**
 * Mutual TLS against real daemons (issue #12): `galleon up` runs every node with certificates of
 * its own CA; a client without a certificate, or a node or client with a certificate of another
 * CA, is refused at the admin endpoint, the metadata API, Raft and the block port (reads and
 * replication), and nothing changes. Each refusal has a control: the same request with the
 * cluster's own certificate goes through, so the refusals are the TLS check and not a broken
 * request.
 */
import { strict as assert } from 'node:assert';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Agent, request } from 'undici';
import type { UpResult } from '../../cli/local/cluster.js';
import type { DaemonStatus } from '../../cli/daemon/types.js';
import { loadTlsDir, nodeTlsDir } from '../../cli/lib/tls.js';
import { osFreePort } from '../../cli/local/ports.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { grpcChannelOptions, serviceConstructor } from '../../proto/grpc-loader.js';
import type { ClusterStatus, Volume } from '../../proto/metadata-types.js';
import type { AuditEvent } from '../../proto/auth.js';
import { undiciConnectOptions, type TlsMaterial } from '../../proto/tls.js';
import { blockPath, Header } from '../../dataplane/wire.js';
import { handshakeCutByServer, issueTestCert, makeTestPki, upClientEnv, type TestPki } from '../support/tls.js';
import { cliJson, killClusterDir, killDaemonAt, makeTempDir, runCli, waitFor } from './helpers.js';

const callTimeoutMs = 5_000;

/** An HTTPS request with `tls` (or only a trusted CA: no client certificate); resolves to status + text. */
async function httpsCall(address: string, path: string, tls: Partial<TlsMaterial> & { ca: Buffer }, init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: Buffer } = {}): Promise<{ status: number; text: string }> {
  const dispatcher = new Agent({ connect: { ...(tls.cert === undefined ? { ca: tls.ca } : undiciConnectOptions(tls as TlsMaterial)), timeout: callTimeoutMs } });
  try {
    const res = await request(`https://${address}${path}`, { dispatcher, method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body ?? null, headersTimeout: callTimeoutMs, bodyTimeout: callTimeoutMs });
    return { status: res.statusCode, text: await res.body.text() };
  } finally {
    await dispatcher.close();
  }
}

async function plainCall(address: string, path: string): Promise<{ status: number; code: unknown }> {
  const res = await request(`http://${address}${path}`, { headersTimeout: callTimeoutMs, bodyTimeout: callTimeoutMs });
  const body = (await res.body.json()) as { error?: { code?: unknown } };
  return { status: res.statusCode, code: body.error?.code };
}

/** Opens a Raft stream with `creds` and ends it at once: resolves to the gRPC status code (0 = accepted). */
function raftStream(address: string, creds: grpc.ChannelCredentials): Promise<number> {
  const Ctor = serviceConstructor('raft.proto', 'raft', 'RaftTransport');
  const client = new Ctor(address, creds, grpcChannelOptions);
  return new Promise<number>((resolve) => {
    const call = (client as unknown as { Stream: (o: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<unknown> })
      .Stream({ deadline: Date.now() + callTimeoutMs }, (err) => resolve(err === null ? 0 : err.code));
    call.on('error', () => undefined);
    call.end();
  }).finally(() => client.close());
}

/** One unary metadata call over a channel of `creds`: the reply, or the gRPC status code of its failure. */
function metadataCall(address: string, creds: grpc.ChannelCredentials, method: string, args: unknown[]): Promise<object | number> {
  type Unary = (req: object, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: object) => void) => void;
  const client = new (serviceConstructor('metadata.proto', 'metadata', 'Metadata'))(address, creds, grpcChannelOptions);
  return new Promise<object | number>((resolve) => {
    (client as unknown as { Call: Unary }).Call({ id: 1, method, args: JSON.stringify(args), client_id: '', seq: 0, stale: false }, new grpc.Metadata(), { deadline: Date.now() + callTimeoutMs },
      (err, reply) => resolve(err === null ? reply ?? {} : err.code));
  }).finally(() => client.close());
}

function replicateHeaders(volumeId: string, primary: string): Record<string, string> {
  return {
    'content-type': 'application/octet-stream', [Header.volume]: encodeURIComponent(volumeId), [Header.inode]: '0', [Header.block]: '0',
    [Header.pg]: '0', [Header.seq]: '999', [Header.epoch]: '99', [Header.op]: 'put', [Header.sync]: '1', [Header.primary]: primary, [Header.trim]: '0',
  };
}

describe('mutual TLS on every port of a real cluster (integration)', function () {
  this.timeout(120_000);
  let root = '';
  let dir = '';
  let up: UpResult;
  let own: TlsMaterial;
  let ownNode: TlsMaterial;
  let ownClientOnRaft: grpc.ChannelCredentials;
  let foreign: TestPki;
  let foreignNode: TlsMaterial;
  let vol: Volume;
  let env: Record<string, string> = {};
  let foreignStorage = '';
  const node = (): UpResult['cluster']['nodes'][number] => up.cluster.nodes[0] as UpResult['cluster']['nodes'][number];

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-tls-');
    dir = join(root, 'cluster');
    // Certificates are the point, not tokens (test/cli/auth.integration.test.ts): a cluster without them.
    const r = await runCli(['up', '--no-auth', '--no-first-volume', '--dir', dir, '--nodes', '1', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    up = JSON.parse(r.stdout) as UpResult;
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...upClientEnv(dir) };
    own = await loadTlsDir(upClientEnv(dir).GALLEON_TLS_DIR, 'cli');
    ownNode = await loadTlsDir(nodeTlsDir(node().storagePath), 'cli');
    ownClientOnRaft = grpc.credentials.createSsl(own.ca, own.key, own.cert);
    foreignStorage = join(root, 'foreign-node');
    // Same node name, same subject layout, another CA: only the issuer differs.
    foreign = await makeTestPki(root, [{ id: 'node1', storagePath: foreignStorage }], 'foreign');
    foreignNode = await loadTlsDir(nodeTlsDir(foreignStorage), 'cli');
    vol = await cliJson<Volume>(['volume', 'create', '--name', 'tls', '--size', '1M', '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '1'], env);
    const w = await runCli(['volume', 'write-block', 'tls', '0', '--data', 'secret'], env);
    assert.equal(w.code, 0, w.stderr);
  });

  after(async function () {
    this.timeout(60_000);
    if (foreignStorage !== '') await killDaemonAt(foreignStorage);
    if (dir !== '') {
      await runCli(['down', '--dir', dir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(dir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('galleon up makes a CA and certificates (private keys mode 0600) and runs the node with mutual TLS, as daemon status says', async () => {
    const s = await cliJson<DaemonStatus>(['daemon', 'status'], env);
    assert.equal(s.security.mode, 'mutual-tls');
    assert.match(s.security.certSubject ?? '', /CN=node1/);
    const human = await runCli(['daemon', 'status'], env);
    assert.match(human.stdout, /Security: +mutual TLS \(CN=node1/);
    for (const key of [join(dir, 'tls', 'ca', 'ca.key'), join(dir, 'tls', 'client', 'tls.key'), join(nodeTlsDir(node().storagePath), 'tls.key')]) {
      assert.equal((await stat(key)).mode & 0o777, 0o600, key);
    }
  });

  it('the cluster\'s own certificates reach the admin endpoint, the metadata API, the block port and Raft (the control)', async () => {
    assert.equal((await httpsCall(node().ipcAddress, '/healthz', own)).status, 200);
    const read = await httpsCall(node().dataAddress, blockPath({ volumeId: vol.id, inode: 0, blockNo: 0 }), own);
    assert.equal(read.status, 200);
    assert.equal(read.text.slice(0, 6), 'secret');
    const api = new MetadataClient({ addresses: [node().bindAddress], tls: own, callDeadlineMs: callTimeoutMs });
    try {
      assert.deepEqual((await api.listVolumes()).map((v) => v.name), ['tls']);
    } finally {
      api.close();
    }
    assert.equal(await raftStream(node().bindAddress, grpc.credentials.createSsl(ownNode.ca, ownNode.key, ownNode.cert)), grpc.status.OK);
  });

  it('a client without a certificate is refused at the admin endpoint, the metadata API and the block port', async () => {
    assert.deepEqual(await plainCall(node().ipcAddress, '/v1/volumes'), { status: 400, code: 'TLS_REQUIRED' });
    assert.deepEqual(await plainCall(node().dataAddress, blockPath({ volumeId: vol.id, inode: 0, blockNo: 0 })), { status: 400, code: 'TLS_REQUIRED' });
    // TLS that trusts the CA but presents no certificate: the handshake is refused.
    await assert.rejects(httpsCall(node().ipcAddress, '/v1/volumes', { ca: own.ca }));
    await assert.rejects(httpsCall(node().dataAddress, blockPath({ volumeId: vol.id, inode: 0, blockNo: 0 }), { ca: own.ca }));
    const plain = new MetadataClient({ addresses: [node().bindAddress], callDeadlineMs: 2_000 });
    await assert.rejects(plain.listVolumes()).finally(() => plain.close());
    assert.notEqual(await raftStream(node().bindAddress, grpc.credentials.createSsl(own.ca)), grpc.status.OK);
    const cli = await runCli(['volume', 'list'], { GALLEON_ADDRESS: node().ipcAddress });
    assert.equal(cli.code, 2);
    assert.match(cli.stderr, /^Error: this endpoint accepts only mutual TLS with a certificate of the cluster CA — .*--tls-dir/);
  });

  it('a node with a certificate of another CA (or an expired one) cannot read a block, replicate to a data node, call the API or speak Raft; nothing changes', async () => {
    const path = blockPath({ volumeId: vol.id, inode: 0, blockNo: 0 });
    await assert.rejects(httpsCall(node().dataAddress, path, foreignNode));
    await assert.rejects(httpsCall(node().dataAddress, '/v1/replicate', foreignNode, { method: 'POST', headers: replicateHeaders(vol.id, node().dataAddress), body: Buffer.alloc(4096, 0x41) }));
    await assert.rejects(httpsCall(node().ipcAddress, '/v1/volumes', foreign.client));
    // The cluster's own CA, but expired: refused as well.
    const expired = await issueTestCert(join(dir, 'tls', 'ca'), 'client', 'expired', join(root, 'expired'), true);
    await assert.rejects(httpsCall(node().ipcAddress, '/v1/volumes', expired));
    await assert.rejects(httpsCall(node().dataAddress, path, expired));
    const api = new MetadataClient({ addresses: [node().bindAddress], tls: foreignNode, callDeadlineMs: 2_000 });
    await assert.rejects(api.listVolumes()).finally(() => api.close());
    assert.equal(await raftStream(node().bindAddress, grpc.credentials.createSsl(foreignNode.ca, foreignNode.key, foreignNode.cert)), grpc.status.UNAVAILABLE);
    // A client certificate of the cluster's own CA may use the API and read blocks, but Raft and replication are for nodes.
    assert.equal(await raftStream(node().bindAddress, ownClientOnRaft), grpc.status.PERMISSION_DENIED);
    const forward = await httpsCall(node().dataAddress, '/v1/replicate', own, { method: 'POST', headers: replicateHeaders(vol.id, node().dataAddress), body: Buffer.alloc(4096, 0x41) });
    assert.equal(forward.status, 403);
    assert.equal((JSON.parse(forward.text) as { code: string }).code, 'PERMISSION_DENIED');
    const after = await httpsCall(node().dataAddress, path, own);
    assert.equal(after.text.slice(0, 6), 'secret', 'the block is as written');
    assert.deepEqual((await cliJson<Volume[]>(['volume', 'list'], env)).map((v) => v.name), ['tls']);
  });

  it('each handshake the gRPC port refuses (no, a foreign, an expired certificate) is one audit event metadata:tls-handshake; no call, no Raft stream, nothing changed', async () => {
    const t0 = new Date().toISOString();
    const expiredNode = await issueTestCert(join(dir, 'tls', 'ca'), 'node', 'node1', join(root, 'expired-node'), true);
    const kinds: { tls: Partial<TlsMaterial> & { ca: Buffer }; reason: string }[] = [
      { tls: { ca: own.ca }, reason: 'certificate refused: no client certificate' },
      { tls: { ...foreignNode, ca: own.ca }, reason: 'certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
      { tls: { ...expiredNode, ca: own.ca }, reason: 'certificate refused: CERT_HAS_EXPIRED' },
    ];
    for (const k of kinds) {
      const creds = k.tls.cert === undefined ? grpc.credentials.createSsl(k.tls.ca) : grpc.credentials.createSsl(k.tls.ca, k.tls.key ?? null, k.tls.cert);
      assert.equal(await raftStream(node().bindAddress, creds), grpc.status.UNAVAILABLE, k.reason);
      assert.equal(await metadataCall(node().bindAddress, creds, 'createVolume', [{ name: 'sneaky', sizeBytes: 1 << 20 }]), grpc.status.UNAVAILABLE, k.reason);
    }
    const locals: { source: string; reason: string }[] = [];
    for (const k of kinds) locals.push({ source: `127.0.0.1:${await handshakeCutByServer(node().bindAddress, k.tls)}`, reason: k.reason });
    const handshakes = async (): Promise<AuditEvent[]> => (await cliJson<AuditEvent[]>(['audit', 'list', '--since', t0, '--json'], env)).filter((e) => e.verb === 'metadata:tls-handshake');
    await waitFor('every refused handshake audited', 10_000, async () => { const ev = await handshakes(); return locals.every((l) => ev.some((e) => e.source === l.source)); });
    const events = await handshakes();
    for (const l of locals) {
      const mine = events.filter((e) => e.source === l.source);
      assert.equal(mine.length, 1, `one connection, one event (${l.reason})`);
      assert.deepEqual([mine[0]?.outcome, mine[0]?.code, mine[0]?.reason, mine[0]?.user], ['denied', 'UNAUTHENTICATED', l.reason, null]);
    }
    // The gRPC clients above: each of their connections one event too (grpc-js may retry once), each with its kind's reason.
    for (const k of kinds) assert.ok(events.filter((e) => e.reason === k.reason).length >= 3, `the refused calls and streams are audited (${k.reason})`);
    assert.ok(events.every((e) => kinds.some((k) => k.reason === e.reason) && /^127\.0\.0\.1:\d+$/.test(e.source)));
    assert.deepEqual((await cliJson<Volume[]>(['volume', 'list'], env)).map((v) => v.name), ['tls'], 'nothing changed');
  });

  it('a daemon with certificates of another CA cannot join the cluster; the cluster keeps its members', async () => {
    const ports = await Promise.all([osFreePort(), osFreePort(), osFreePort()]);
    const [bind, ipc, data] = ports.map((p) => `127.0.0.1:${p}`) as [string, string, string];
    const foreignEnv = { GALLEON_ADDRESS: ipc, GALLEON_TLS_DIR: foreign.clientDir };
    const start = await runCli(['daemon', 'start', '-d', '--node-id', 'node1', '--storage-path', foreignStorage, '--bind-address', bind, '--ipc-address', ipc,
      '--data-address', data, '--target-voters', '1'], foreignEnv);
    assert.equal(start.code, 0, start.stderr);
    const joined = await runCli(['cluster', 'join', node().bindAddress], foreignEnv);
    assert.equal(joined.code, 3, joined.stdout);
    assert.match(joined.stderr, /^Error: no metadata member answered at .* nothing changed/);
    const s = await cliJson<ClusterStatus>(['cluster', 'status'], env);
    assert.deepEqual(s.members.map((m) => m.id), ['node1']);
    assert.equal(s.members[0]?.address, node().bindAddress);
  });
});
