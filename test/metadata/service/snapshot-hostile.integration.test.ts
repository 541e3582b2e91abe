/**
 * InstallSnapshot from a broken or foreign sender: a first piece with a malformed configuration,
 * term or sender is refused INVALID_ARGUMENT before anything is staged, and the member keeps
 * serving (the Raft core would stop the member on a conf of the wrong shape).
 */
import { strict as assert } from 'node:assert';
import { readdir } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { MetadataClient } from '../../../metadata/service/client.js';
import { serviceConstructor } from '../../../proto/grpc-loader.js';
import { ProcessCluster } from './harness.js';

const callDeadlineMs = 10_000;

function installSnapshot(address: string, pieces: object[]): Promise<grpc.ServiceError | null> {
  const Raft = serviceConstructor('raft.proto', 'raft', 'RaftTransport');
  const client = new Raft(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    const call = (client as unknown as { InstallSnapshot: (md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<object> })
      .InstallSnapshot(new grpc.Metadata(), { deadline: new Date(Date.now() + callDeadlineMs) }, (err) => { client.close(); resolve(err); });
    for (const p of pieces) call.write(p);
    call.end();
  });
}

describe('metadata member: malformed InstallSnapshot pieces change nothing', function () {
  this.timeout(60_000);
  const cluster = new ProcessCluster();
  let client: MetadataClient | null = null;
  after(async () => { client?.close(); await cluster.destroy(); });

  it('refuses a bad configuration, term or sender with INVALID_ARGUMENT, stages nothing, and keeps serving', async () => {
    await cluster.init();
    const [m] = await cluster.bootstrap(['n1']);
    assert.ok(m !== undefined);
    client = new MetadataClient({ addresses: [m.address], callDeadlineMs });
    const good = { from: 'n9', to: 'n1', term: 99, index: 5, snap_term: 99, conf_json: JSON.stringify({ voters: ['n1'], learners: [] }), offset: 0, chunk: Buffer.alloc(0) };
    const cases: [string, object][] = [
      ['conf not JSON', { ...good, conf_json: '{' }],
      ['conf of the wrong shape', { ...good, conf_json: JSON.stringify({ voters: 'n1' }) }],
      ['conf with no voters', { ...good, conf_json: JSON.stringify({ voters: [], learners: [] }) }],
      ['index 0', { ...good, index: 0 }],
      ['no sender', { ...good, from: '' }],
    ];
    for (const [what, piece] of cases) {
      const err = await installSnapshot(m.address, [piece]);
      assert.equal(err?.code, grpc.status.INVALID_ARGUMENT, `${what}: ${err?.code} ${err?.details}`);
      assert.match(err.details, /^malformed snapshot piece: /, what);
    }
    const staged = (await readdir(m.dataDir, { recursive: true })).filter((f) => f.includes('staging'));
    assert.deepEqual(staged, [], 'nothing staged');
    await client.createStorageClass({ name: 'still-serving', replicas: 1, writeConcern: 'durable', zoneSpread: 'none' });
    assert.equal(m.child.exitCode, null, 'the member is running');
  });
});
