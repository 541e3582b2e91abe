/**
 * metadata/service/grpc-server.ts, second line behind the gRPC port's TLS listener
 * (proto/grpc-tls.ts): were a connection without a verified client certificate ever to reach
 * grpc-js under TLS (here: a port bound without TLS, so grpc-js's auth context is empty), every
 * metadata call on it is refused UNAUTHENTICATED and audited, and the service is never reached.
 */
import { strict as assert } from 'node:assert';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { AuditLog } from '../../../cli/daemon/audit-log.js';
import { makeTempDir } from '../../cli/helpers.js';
import { registerMetadataService } from '../../../metadata/service/grpc-server.js';
import type { MetadataService } from '../../../metadata/service/api-handler.js';
import { serviceConstructor } from '../../../proto/grpc-loader.js';
import { makeTestPki } from '../../support/tls.js';

type Unary = (req: object, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { result: string; error: string }) => void) => void;

describe('metadata gRPC server: a call without a verified certificate under TLS (integration)', function () {
  this.timeout(30_000);
  let root = '';
  let server: grpc.Server | null = null;

  after(async () => {
    server?.forceShutdown();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  it('is refused UNAUTHENTICATED, audited once, and never reaches the service', async () => {
    root = await makeTempDir('galleon-grpc-2nd-');
    const pki = await makeTestPki(root, []);
    const audit = new AuditLog(join(root, 'audit-home'), 'node1', pino({ level: 'silent' }));
    let reached = 0;
    // Any use of the service would count: the refusal must come before it.
    const svc = new Proxy({}, { get: () => { reached += 1; return () => Promise.reject(new Error('reached the service')); } }) as MetadataService;
    const srv = new grpc.Server();
    server = srv;
    registerMetadataService(srv, () => svc, pino({ level: 'silent' }), undefined, { ...pki.client, audit });
    const port = await new Promise<number>((resolve, reject) => srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
    const client = new (serviceConstructor('metadata.proto', 'metadata', 'Metadata'))(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<{ result: string; error: string }>((resolve, reject) => {
        (client as unknown as { Call: Unary }).Call({ id: 1, method: 'createVolume', args: '[{"name":"x"}]', client_id: '', seq: 0, stale: false }, new grpc.Metadata(), { deadline: Date.now() + 5_000 },
          (err, r) => (err === null && r !== undefined ? resolve(r) : reject(err ?? new Error('no reply'))));
      });
      assert.equal(reply.result, '');
      assert.equal((JSON.parse(reply.error) as { code: string }).code, 'UNAUTHENTICATED');
    } finally {
      client.close();
    }
    assert.equal(reached, 0, 'the service was not reached');
    const events = audit.list({});
    assert.equal(events.length, 1);
    assert.deepEqual([events[0]?.verb, events[0]?.outcome, events[0]?.code, events[0]?.reason, events[0]?.user], ['metadata:createVolume', 'denied', 'UNAUTHENTICATED', 'no verified certificate', null]);
  });
});
