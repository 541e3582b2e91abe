/**
 * Certificates after issue (issue #12, gaps 1–3), against a real daemon of `galleon up`:
 *  - a node certificate speaks only for the node it names: node2's certificate cannot open a Raft
 *    stream as node1 nor forward writes as the PG's primary (the block stays as written);
 *  - `galleon cert revoke` makes every port refuse the certificate within the daemon's reload
 *    bound, without a restart, on a connection opened before the revocation too;
 *  - `galleon cert rotate` is picked up by the running daemon (its status shows the new serial);
 *    with the old serials revoked the cluster keeps serving through the new certificates.
 * Each refusal has its control: the same request with a certificate that may make it goes through.
 */
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Agent, request } from 'undici';
import type { UpResult } from '../../cli/local/cluster.js';
import type { DaemonStatus } from '../../cli/daemon/types.js';
import { loadTlsDir, nodeTlsDir } from '../../cli/lib/tls.js';
import { tlsReloadIntervalMs } from '../../cli/lib/tls-watch.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { osFreePort } from '../../cli/local/ports.js';
import { grpcChannelOptions, serviceConstructor } from '../../proto/grpc-loader.js';
import type { PlacementGroup, Volume } from '../../proto/metadata-types.js';
import type { AuditEvent } from '../../proto/auth.js';
import { undiciConnectOptions, type TlsMaterial } from '../../proto/tls.js';
import { blockPath, Header } from '../../dataplane/wire.js';
import { issueTestCert, upClientEnv } from '../support/tls.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';

const callTimeoutMs = 5_000;
/** The reload interval plus a read and a generous margin for a machine shared with other runs. */
const revocationBoundMs = tlsReloadIntervalMs + 9_000;

function agentFor(tls: TlsMaterial): Agent {
  return new Agent({ connect: { ...undiciConnectOptions(tls), timeout: callTimeoutMs }, keepAliveTimeout: 60_000 });
}

async function call(dispatcher: Agent, address: string, path: string, init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: Buffer } = {}): Promise<{ status: number; text: string }> {
  const res = await request(`https://${address}${path}`, { dispatcher, method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body ?? null, headersTimeout: callTimeoutMs, bodyTimeout: callTimeoutMs });
  return { status: res.statusCode, text: await res.body.text() };
}

async function once(tls: TlsMaterial, address: string, path: string, init: Parameters<typeof call>[3] = {}): Promise<{ status: number; text: string }> {
  const a = agentFor(tls);
  try {
    return await call(a, address, path, init);
  } finally {
    await a.close();
  }
}

const codeOf = (text: string): unknown => (JSON.parse(text) as { code?: unknown }).code;

/** Opens a Raft stream with `creds`, sends one empty frame claiming to be `from`, ends it: the gRPC status (0 = accepted). */
function raftFrom(address: string, creds: grpc.ChannelCredentials, from: string): Promise<number> {
  const Ctor = serviceConstructor('raft.proto', 'raft', 'RaftTransport');
  const client = new Ctor(address, creds, grpcChannelOptions);
  return new Promise<number>((resolve) => {
    const stream = (client as unknown as { Stream: (o: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<unknown> })
      .Stream({ deadline: Date.now() + callTimeoutMs }, (err) => resolve(err === null ? 0 : err.code));
    stream.on('error', () => undefined);
    stream.write({ from });
    stream.end();
  }).finally(() => client.close());
}

const credsOf = (m: TlsMaterial): grpc.ChannelCredentials => grpc.credentials.createSsl(m.ca, m.key, m.cert);

describe('certificates bound to node ids, revoked and rotated on a running cluster (integration)', function () {
  this.timeout(180_000);
  let root = '';
  let dir = '';
  let caDir = '';
  let up: UpResult;
  let env: Record<string, string> = {};
  let vol: Volume;
  const node = (): UpResult['cluster']['nodes'][number] => up.cluster.nodes[0] as UpResult['cluster']['nodes'][number];
  const operator = (): Promise<TlsMaterial> => loadTlsDir(upClientEnv(dir).GALLEON_TLS_DIR, 'cli');
  const blk = (): string => blockPath({ volumeId: vol.id, inode: 0, blockNo: 0 });

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-cert-life-');
    dir = join(root, 'cluster');
    const r = await runCli(['up', '--no-auth', '--no-first-volume', '--dir', dir, '--nodes', '1', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    up = JSON.parse(r.stdout) as UpResult;
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...upClientEnv(dir) };
    caDir = join(dir, 'tls', 'ca');
    vol = await cliJson<Volume>(['volume', 'create', '--name', 'certs', '--size', '1M', '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '1'], env);
    const w = await runCli(['volume', 'write-block', 'certs', '0', '--data', 'original'], env);
    assert.equal(w.code, 0, w.stderr);
  });

  after(async function () {
    this.timeout(60_000);
    if (dir !== '') {
      await runCli(['down', '--dir', dir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(dir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('a node certificate cannot speak Raft as another node (its own name is accepted)', async () => {
    const node2 = await issueTestCert(caDir, 'node', 'node2', join(root, 'node2'));
    assert.equal(await raftFrom(node().bindAddress, credsOf(node2), 'node1'), grpc.status.PERMISSION_DENIED);
    assert.equal(await raftFrom(node().bindAddress, credsOf(node2), 'node2'), grpc.status.OK, 'the control: a frame in its own name');
  });

  it('a daemon whose node id is not its certificate\'s stops at start with one line, and writes no node id', async () => {
    await issueTestCert(caDir, 'node', 'node2', join(root, 'node2'));
    const storage = join(root, 'mismatch');
    const [bind, ipc, data] = (await Promise.all([osFreePort(), osFreePort(), osFreePort()])).map((p) => `127.0.0.1:${p}`) as [string, string, string];
    const r = await runCli(['daemon', 'start', '--node-id', 'node9', '--storage-path', storage, '--tls-dir', join(root, 'node2'), '--bind-address', bind,
      '--ipc-address', ipc, '--data-address', data], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^Error: TLS: the certificate in .*node2 is node node2's, and this is node node9 — issue this node its own certificate: galleon cert issue --node node9/);
    await assert.rejects(readFile(join(storage, 'node-id')), 'no node id was written');
  });

  it('a node certificate cannot forward writes as the PG\'s primary or peer as another node; the block stays as written', async () => {
    const node2 = await issueTestCert(caDir, 'node', 'node2', join(root, 'node2'));
    const api = new MetadataClient({ addresses: [node().bindAddress], tls: await operator(), callDeadlineMs: callTimeoutMs });
    let groups: PlacementGroup[];
    try {
      groups = await api.getPlacement(vol.id);
    } finally {
      api.close();
    }
    const group = groups.find((g) => g.pg === 0);
    assert.ok(group !== undefined);
    const headers = {
      'content-type': 'application/octet-stream', [Header.volume]: encodeURIComponent(vol.id), [Header.inode]: '0', [Header.block]: '0',
      [Header.pg]: '0', [Header.seq]: '999', [Header.epoch]: String(group.epoch), [Header.op]: 'put', [Header.sync]: '1', [Header.primary]: node().dataAddress, [Header.trim]: '0',
    };
    const forged = await once(node2, node().dataAddress, '/v1/replicate', { method: 'POST', headers, body: Buffer.alloc(4096, 0x58) });
    assert.equal(forged.status, 403, forged.text);
    assert.equal(codeOf(forged.text), 'PERMISSION_DENIED');
    assert.match(forged.text, /node node2's; it may not forward writes/);
    const peer = await once(node2, node().dataAddress, `/v1/peer/${encodeURIComponent(vol.id)}/0?epoch=${group.epoch}&from=node1`, { method: 'POST' });
    assert.equal(peer.status, 403, peer.text);
    const read = await once(await operator(), node().dataAddress, blk());
    assert.equal(read.status, 200, 'the control: the operator reads the block');
    assert.equal(read.text.slice(0, 8), 'original', 'the forged forward changed nothing');
  });

  it('the metadata API binds node calls to the certificate\'s node: node2 cannot heartbeat, register, claim or lease as node1, nor touch node1\'s lease; each refusal audited, nothing changed', async () => {
    const node2 = await issueTestCert(caDir, 'node', 'node2', join(root, 'node2'));
    const node1 = await loadTlsDir(nodeTlsDir(node().storagePath), 'cli');
    const as = (tls: TlsMaterial): MetadataClient => new MetadataClient({ addresses: [node().bindAddress], tls, callDeadlineMs: callTimeoutMs });
    const [a1, a2, op] = [as(node1), as(node2), as(await operator())];
    const denied = async (p: Promise<unknown>, re: RegExp): Promise<void> => {
      await assert.rejects(p, (err: Error & { code?: string }) => { assert.equal(err.code, 'PERMISSION_DENIED', err.message); assert.match(err.message, re); return true; });
    };
    const t0 = new Date().toISOString();
    try {
      const group = (await a1.getPlacement(vol.id)).find((g) => g.pg === 0);
      assert.ok(group !== undefined);
      const stable = async (): Promise<unknown> => ({
        nodes: (await a1.listDataNodes()).map(({ lastHeartbeatAtMs: _h, usedBytes: _u, ...rest }) => rest), placement: await a1.getPlacement(vol.id),
      });
      const before = await stable();
      // node1's own certificate holds a lease in its own name (the control that binding lets the node through).
      const lease = await a1.acquireLease('mount', vol.id, 'node1', 60_000, 'ro');
      assert.equal(lease.holder, 'node1');
      const mismatch = /this certificate is node node2's; it may not call \w+ as node node1/;
      await denied(a2.heartbeatDataNode('node1', 0, []), mismatch);
      await denied(a2.registerDataNode({ id: 'node1', address: '127.0.0.1:1', zone: 'z', capacityBytes: 1 }), mismatch);
      await denied(a2.claimPgPrimary(vol.id, 0, 'node1', group.epoch + 1), mismatch);
      await denied(a2.markPgReplicaOutOfSync(vol.id, 0, 'node1', group.epoch, 'node1', 0), mismatch);
      await denied(a2.acquireLease('pg-primary', `${vol.id}/0`, 'node1', 4_000, undefined, group.epoch), mismatch);
      await denied(a2.renewLease(lease.id, 1), new RegExp(`lease ${lease.id} is held by node1; node node2 may not renew it`));
      await denied(a2.releaseLease(lease.id), new RegExp(`lease ${lease.id} is held by node1; node node2 may not release it`));
      await denied(op.heartbeatDataNode('node1', 0, []), /heartbeatDataNode is for cluster nodes; this is not a node certificate/);
      // In its own name node2 passes the binding and meets the service's own answer.
      await assert.rejects(a2.heartbeatDataNode('node2', 0, []), (err: Error & { code?: string }) => err.code !== 'PERMISSION_DENIED');
      // The lease is node1's still: its holder renews and releases it.
      assert.equal((await a1.renewLease(lease.id, 60_000)).holder, 'node1');
      await a1.releaseLease(lease.id);
      assert.deepEqual(await stable(), before, 'data nodes and placement unchanged');
      // node1's daemon heartbeats through the binding with its own certificate.
      const hb = (await a1.listDataNodes()).find((n) => n.id === 'node1')?.lastHeartbeatAtMs ?? 0;
      await waitFor('node1 to heartbeat again', 30_000, async () => ((await a1.listDataNodes()).find((n) => n.id === 'node1')?.lastHeartbeatAtMs ?? 0) > hb);
    } finally {
      a1.close(); a2.close(); op.close();
    }
    const events = (await cliJson<AuditEvent[]>(['audit', 'list', '--since', t0], env)).filter((e) => e.reason === 'node certificate mismatch');
    assert.deepEqual(events.map((e) => e.verb).sort(), ['metadata:acquireLease', 'metadata:claimPgPrimary', 'metadata:heartbeatDataNode', 'metadata:heartbeatDataNode',
      'metadata:markPgReplicaOutOfSync', 'metadata:registerDataNode', 'metadata:releaseLease', 'metadata:renewLease']);
    for (const e of events) {
      assert.equal(e.outcome, 'denied');
      assert.equal(e.code, 'PERMISSION_DENIED');
      assert.match(e.source, /127\.0\.0\.1/);
    }
  });

  it('on a cluster without tokens, an API create or clone of an encrypted class without a key gets one from the member (issue #12, gap 3)', async () => {
    const api = new MetadataClient({ addresses: [node().bindAddress], tls: await operator(), callDeadlineMs: callTimeoutMs });
    try {
      await api.createStorageClass({ name: 'enc-open', encryption: true, replicas: 1, writeConcern: 'durable' });
      const v = await api.createVolume({ name: 'open-enc', size: '1M', storageClass: 'enc-open', replicas: 1 });
      assert.equal(v.encrypted, true);
      const snap = await api.createSnapshot('open-enc', 'open-snap');
      assert.equal((await api.cloneVolume(snap.name, 'open-clone')).encrypted, true);
      const keys = await cliJson<{ volume: string }[]>(['key', 'list'], env);
      assert.deepEqual(keys.map((k) => k.volume).sort(), ['open-clone', 'open-enc']);
    } finally {
      api.close();
    }
  });

  it('galleon cert revoke: every port refuses the certificate within the reload bound, open connections too, without a restart', async () => {
    const mallory = await issueTestCert(caDir, 'client', 'mallory', join(root, 'mallory'));
    const node7 = await issueTestCert(caDir, 'node', 'node7', join(root, 'node7'));
    const agent = agentFor(mallory);
    const api = new MetadataClient({ addresses: [node().bindAddress], tls: mallory, callDeadlineMs: callTimeoutMs });
    try {
      // The controls, which also open the connections the revocation must reach.
      assert.equal((await call(agent, node().ipcAddress, '/v1/volumes')).status, 200);
      assert.equal((await call(agent, node().dataAddress, blk())).status, 200);
      assert.ok((await api.listVolumes()).some((v) => v.name === 'certs'));
      assert.equal(await raftFrom(node().bindAddress, credsOf(node7), 'node7'), grpc.status.OK);
      const pidBefore = (await cliJson<DaemonStatus>(['daemon', 'status'], env)).pid;

      const t0 = Date.now();
      for (const name of ['mallory', 'node7']) {
        const r = await runCli(['cert', 'revoke', name, '--dir', dir], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`Revoked (client|node) ${name}: serial [0-9a-f]+`));
      }
      await waitFor('the admin endpoint to refuse the revoked certificate on its open connection', revocationBoundMs, async () => {
        const r = await call(agent, node().ipcAddress, '/v1/volumes').catch(() => null);
        return r?.status === 401 ? r : null;
      });
      const boundMs = Date.now() - t0;
      const admin = await once(mallory, node().ipcAddress, '/v1/volumes');
      assert.equal(admin.status, 401);
      assert.match(admin.text, /certificate [0-9a-f]+ is revoked/);
      const block = await once(mallory, node().dataAddress, blk());
      assert.equal(block.status, 401);
      assert.equal(codeOf(block.text), 'UNAUTHENTICATED');
      await assert.rejects(api.listVolumes(), (err: Error & { code?: string }) => err.code === 'UNAUTHENTICATED' || /revoked/.test(err.message));
      // node7 was revoked by the second `cert revoke`, which the daemon may read a reload later than the first.
      await waitFor('Raft to refuse the revoked node certificate', revocationBoundMs, async () => (await raftFrom(node().bindAddress, credsOf(node7), 'node7')) === Number(grpc.status.UNAUTHENTICATED));
      // Each refusal of a revoked certificate is one audit event: denied, reason revoked, the source address (gap 2).
      const revokedEvents = (await cliJson<AuditEvent[]>(['audit', 'list', '--since', new Date(t0).toISOString()], env)).filter((e) => e.reason === 'certificate revoked');
      for (const edge of ['admin:', 'block:', 'metadata:', 'raft:']) assert.ok(revokedEvents.some((e) => e.verb.startsWith(edge)), `a revoked-certificate event of ${edge} in ${JSON.stringify(revokedEvents.map((e) => e.verb))}`);
      for (const e of revokedEvents) {
        assert.equal(e.outcome, 'denied');
        assert.equal(e.code, 'UNAUTHENTICATED');
        assert.match(e.object ?? '', /^certificate [0-9a-f]+$/);
        assert.match(e.user ?? '', /^cert:(mallory|node7)$/);
        assert.match(e.source, /127\.0\.0\.1/);
      }
      const s = await cliJson<DaemonStatus>(['daemon', 'status'], env);
      assert.equal(s.pid, pidBefore, 'no restart');
      assert.equal(s.security.revokedCertificates, 2);
      console.log(`      revocation refused on an open connection ${boundMs} ms after \`cert revoke\` returned (bound ${revocationBoundMs} ms)`);
      // The control: the operator's certificate still works.
      assert.equal((await once(await operator(), node().ipcAddress, '/v1/volumes')).status, 200);
      const bad = await runCli(['cert', 'revoke', 'nobody', '--dir', dir], env);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^Error: the CA in .* issued no certificate with serial or name "nobody" — see the serials and names with: galleon cert list/);
    } finally {
      api.close();
      await agent.close();
    }
  });

  it('galleon cert rotate: the running daemon takes its new certificate; with the old ones revoked the cluster keeps serving', async () => {
    const before = await cliJson<DaemonStatus>(['daemon', 'status'], env);
    const oldNodeSerial = before.security.certSerial;
    assert.ok(oldNodeSerial !== null && oldNodeSerial !== undefined);
    const oldNode = await loadTlsDir(nodeTlsDir(node().storagePath), 'cli');
    const rotated = await runCli(['cert', 'rotate', '--dir', dir], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    const now = await waitFor('the daemon to use its rotated certificate', revocationBoundMs, async () => {
      const s = await cliJson<DaemonStatus>(['daemon', 'status'], env);
      return s.security.certSerial !== oldNodeSerial ? s : null;
    });
    assert.equal(now.pid, before.pid, 'no restart');
    const r = await runCli(['cert', 'revoke', oldNodeSerial, '--dir', dir], env);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the old node certificate to be refused', revocationBoundMs, async () => (await once(oldNode, node().dataAddress, blk())).status === 401);
    // The daemon's own calls (admin -> metadata API, block client -> block port) now go through its new certificate.
    const v2 = await cliJson<Volume>(['volume', 'create', '--name', 'after-rotation', '--size', '1M', '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '1'], env);
    const w = await runCli(['volume', 'write-block', v2.name, '0', '--data', 'rotated'], env);
    assert.equal(w.code, 0, w.stderr);
    const got = await runCli(['volume', 'read-block', v2.name, '0'], env);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /rotated/);
    const read = await once(await operator(), node().dataAddress, blk());
    assert.equal(read.text.slice(0, 8), 'original');
  });
});
