/**
 * proto/grpc-tls.ts: the gRPC port's own TLS listener in front of a real grpc-js server, with a
 * real audit log on disk. A peer with no certificate, one of another CA or an expired one of the
 * cluster's CA makes no call and opens no Raft stream (the handlers count what reaches them), and
 * each such connection is exactly one `metadata:tls-handshake` event with OpenSSL's verdict and the
 * peer's address; the cluster's own certificate is served and not audited; plaintext bytes are cut
 * and not audited (they are no certificate verdict).
 */
import { strict as assert } from 'node:assert';
import { rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { AuditLog } from '../../cli/daemon/audit-log.js';
import { loadTlsDir, nodeTlsDir } from '../../cli/lib/tls.js';
import { makeTempDir, waitFor } from '../cli/helpers.js';
import { listenGrpc, splitHostPort, type GrpcListener } from '../../proto/grpc-tls.js';
import { serviceConstructor } from '../../proto/grpc-loader.js';
import type { TlsMaterial } from '../../proto/tls.js';
import { handshakeCutByServer, issueTestCert, makeTestPki } from '../support/tls.js';

const callDeadlineMs = 5_000;
type Unary = (req: object, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { result?: string }) => void) => void;
type RaftStream = (o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<unknown>;

/** One metadata call over a channel of `creds`: the reply, or the gRPC status code of its failure. */
async function call(port: number, creds: grpc.ChannelCredentials): Promise<{ result?: string } | number> {
  const client = new (serviceConstructor('metadata.proto', 'metadata', 'Metadata'))(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  try {
    return await new Promise((resolve) => {
      (client as unknown as { Call: Unary }).Call({ id: 1, method: 'listVolumes', args: '[]', client_id: '', seq: 0, stale: false }, new grpc.Metadata(), { deadline: Date.now() + callDeadlineMs },
        (err, reply) => resolve(err === null ? reply ?? {} : err.code));
    });
  } finally {
    client.close();
  }
}

/** Opens a Raft stream with `creds` and ends it: 0 when the server took it, else the gRPC status. */
async function raftStream(port: number, creds: grpc.ChannelCredentials): Promise<number> {
  const client = new (serviceConstructor('raft.proto', 'raft', 'RaftTransport'))(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  try {
    return await new Promise<number>((resolve) => {
      const s = (client as unknown as { Stream: RaftStream }).Stream({ deadline: Date.now() + callDeadlineMs }, (err) => resolve(err === null ? 0 : err.code));
      s.on('error', () => undefined);
      s.end();
    });
  } finally {
    client.close();
  }
}

describe('proto/grpc-tls: refused handshakes on the gRPC port are cut and audited (integration)', function () {
  this.timeout(60_000);
  let root = '';
  let node: TlsMaterial;
  let foreign: TlsMaterial;
  let expired: TlsMaterial;
  let audit: AuditLog;
  let server: grpc.Server;
  let listener: GrpcListener | null = null;
  const served = { calls: 0, streams: 0 };
  const handshakeEvents = (): ReturnType<AuditLog['list']> => audit.list({}).filter((e) => e.verb === 'metadata:tls-handshake');

  before(async () => {
    root = await makeTempDir('galleon-grpc-tls-');
    const pki = await makeTestPki(root, [{ id: 'node1', storagePath: join(root, 'n1') }]);
    node = await loadTlsDir(nodeTlsDir(join(root, 'n1')), 'cli');
    foreign = (await makeTestPki(root, [], 'foreign')).client;
    expired = await issueTestCert(pki.caDir, 'node', 'node9', join(root, 'expired'), true);
    audit = new AuditLog(join(root, 'audit-home'), 'node1', pino({ level: 'silent' }));
    server = new grpc.Server();
    server.addService(serviceConstructor('metadata.proto', 'metadata', 'Metadata').service, {
      Call: (_c: unknown, cb: grpc.sendUnaryData<object>) => { served.calls += 1; cb(null, { id: 1, result: '[]', error: '' }); },
      CallStream: (c: grpc.ServerDuplexStream<unknown, unknown>) => c.end(),
    });
    server.addService(serviceConstructor('raft.proto', 'raft', 'RaftTransport').service, {
      Stream: (c: grpc.ServerReadableStream<unknown, object>, cb: grpc.sendUnaryData<object>) => { served.streams += 1; c.on('data', () => undefined); c.on('end', () => cb(null, {})); },
    });
    listener = await listenGrpc(server, '127.0.0.1:0', { ...node, audit });
  });

  after(async () => {
    server?.forceShutdown();
    listener?.close();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  it('serves the cluster\'s own certificate (calls and Raft streams) and audits nothing (the control)', async () => {
    const port = listener?.port ?? 0;
    assert.deepEqual(await call(port, grpc.credentials.createSsl(node.ca, node.key, node.cert)), { id: 1, result: '[]', error: '' });
    assert.equal(await raftStream(port, grpc.credentials.createSsl(node.ca, node.key, node.cert)), 0);
    assert.deepEqual(served, { calls: 1, streams: 1 });
    assert.deepEqual(handshakeEvents(), []);
  });

  for (const kind of ['missing', 'foreign', 'expired'] as const) {
    const material = (): Partial<TlsMaterial> & { ca: Buffer } => (kind === 'missing' ? { ca: node.ca } : kind === 'foreign' ? { ...foreign, ca: node.ca } : { ...expired, ca: node.ca });
    const reason = { missing: 'certificate refused: no client certificate', foreign: 'certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE', expired: 'certificate refused: CERT_HAS_EXPIRED' }[kind];

    it(`${kind === 'expired' ? 'an' : 'a'} ${kind} certificate makes no call and opens no Raft stream; each connection is one event with the reason and the address`, async () => {
      const port = listener?.port ?? 0;
      const before = { ...served };
      const from = handshakeEvents().length;
      const m = material();
      const creds = m.cert === undefined ? grpc.credentials.createSsl(m.ca) : grpc.credentials.createSsl(m.ca, m.key ?? null, m.cert);
      assert.equal(await call(port, creds), grpc.status.UNAVAILABLE);
      assert.equal(await raftStream(port, creds), grpc.status.UNAVAILABLE);
      assert.deepEqual(served, before, 'nothing reached the handlers');
      // grpc-js may open more than one connection per refused call: each is its own event.
      await waitFor('the refused gRPC connections audited', 10_000, () => handshakeEvents().length >= from + 2);
      // A bare connection whose address we know: exactly one event, from it.
      const local = await handshakeCutByServer(`127.0.0.1:${port}`, m);
      await waitFor('the bare connection audited', 10_000, () => handshakeEvents().some((e) => e.source === `127.0.0.1:${local}`));
      const mine = handshakeEvents().filter((e) => e.source === `127.0.0.1:${local}`);
      assert.equal(mine.length, 1, 'one connection, one event');
      assert.deepEqual({ ...mine[0], time: undefined, id: undefined }, {
        time: undefined, id: undefined, node: 'node1', user: null, tenant: null, verb: 'metadata:tls-handshake', object: null,
        outcome: 'denied', code: 'UNAUTHENTICATED', reason, source: `127.0.0.1:${local}`,
      });
      for (const e of handshakeEvents().slice(from)) assert.equal(e.reason, reason);
    });
  }

  it('plaintext bytes are cut without an event (no certificate was judged) and the port keeps serving', async () => {
    const port = listener?.port ?? 0;
    const count = handshakeEvents().length;
    const closed = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      s.on('error', () => undefined);
      s.on('close', () => resolve(true));
      s.setTimeout(callDeadlineMs, () => { s.destroy(); resolve(false); });
    });
    assert.equal(closed, true, 'the server closed the plaintext connection');
    assert.equal(handshakeEvents().length, count);
    assert.deepEqual(await call(port, grpc.credentials.createSsl(node.ca, node.key, node.cert)), { id: 1, result: '[]', error: '' });
  });
});

describe('proto/grpc-tls: splitHostPort', () => {
  it('reads host:port, [v6]:port and :port, and refuses anything else', () => {
    assert.deepEqual(splitHostPort('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(splitHostPort('[::1]:7000'), { host: '::1', port: 7000 });
    assert.deepEqual(splitHostPort(':7000'), { host: undefined, port: 7000 });
    for (const bad of ['7000', 'h:', 'h:x', 'h:70000', 'h:-1']) assert.throws(() => splitHostPort(bad), /not a host:port address/, bad);
  });
});
