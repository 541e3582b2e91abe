import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { MetadataClient } from '../../../metadata/service/client.js';
import type { CallReplyWire, CallRequestWire } from '../../../metadata/service/grpc-server.js';
import { GalleonError, isGalleonError } from '../../../proto/errors.js';
import { serviceConstructor } from '../../../proto/grpc-loader.js';
import { ProcessCluster, until } from './harness.js';

type RawClient = grpc.Client & { Call: (req: CallRequestWire, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: CallReplyWire) => void) => void };

function rawCall(address: string, method: string, args: unknown[], clientId = '', seq = 0): Promise<CallReplyWire> {
  const ctor = serviceConstructor('metadata.proto', 'metadata', 'Metadata');
  const c = new ctor(address, grpc.credentials.createInsecure()) as unknown as RawClient;
  return new Promise((resolve, reject) => {
    c.Call({ id: 0, method, args: JSON.stringify(args), client_id: clientId, seq, stale: false }, { deadline: Date.now() + 5000 }, (err, reply) => {
      c.close();
      if (err !== null || reply === undefined) reject(err ?? new Error('no reply'));
      else resolve(reply);
    });
  });
}

async function leaderOf(client: MetadataClient): Promise<{ id: string; address: string }> {
  const st = await client.clusterStatus();
  assert.ok(st.leaderId !== null && st.leaderAddress !== null);
  return { id: st.leaderId, address: st.leaderAddress };
}

describe('metadata service: three real member processes', function () {
  this.timeout(90_000);
  const cluster = new ProcessCluster();
  let client: MetadataClient;

  before(async () => {
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3']);
    client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
    for (let k = 1; k <= 3; k++) {
      await client.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9100 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
    }
  });

  after(async () => {
    client?.close();
    await cluster.destroy();
  });

  it('a follower answers NOT_LEADER with the leader address, and the client follows it', async () => {
    const leader = await leaderOf(client);
    const follower = [...cluster.procs.values()].find((p) => p.id !== leader.id)!;
    const reply = await rawCall(follower.address, 'listVolumes', []);
    const err = GalleonError.fromJSON(JSON.parse(reply.error));
    assert.equal(err.code, 'NOT_LEADER');
    assert.equal(err.details.leaderId, leader.id);
    assert.equal(err.details.leaderAddress, leader.address);

    const viaFollower = new MetadataClient({ addresses: [follower.address] });
    try {
      const v = await viaFollower.createVolume({ name: 'redirected', size: '1M' });
      assert.equal(v.name, 'redirected');
      assert.equal(viaFollower.currentLeader(), leader.address);
    } finally {
      viaFollower.close();
    }
  });

  it('a retried command (same clientId and seq) is applied once', async () => {
    const leader = await leaderOf(client);
    const args = [{ name: 'once', size: '1M' }];
    const first = await rawCall(leader.address, 'createVolume', args, 'test-client-1', 7);
    assert.equal(first.error, '');
    const again = await rawCall(leader.address, 'createVolume', args, 'test-client-1', 7);
    assert.equal(again.error, '', 'a replay returns the first result, not VOLUME_EXISTS');
    assert.equal((JSON.parse(again.result) as { id: string }).id, (JSON.parse(first.result) as { id: string }).id);
    const fresh = await rawCall(leader.address, 'createVolume', args, 'test-client-1', 8);
    assert.equal(GalleonError.fromJSON(JSON.parse(fresh.error)).code, 'VOLUME_EXISTS');
    const volumes = await client.listVolumes();
    assert.equal(volumes.filter((v) => v.name === 'once').length, 1);
  });

  it('kill -9 of the leader mid-load: a new leader takes over and every acknowledged write reads back', async () => {
    // 16 writers, each setting distinct labels on its own volume (a volume holds at most 64).
    const writers = 16;
    const labelsPerWriter = 60;
    for (let w = 0; w < writers; w++) await client.createVolume({ name: `load-${w}`, size: '1M' });
    const old = await leaderOf(client);
    const acked: [volume: string, key: string][] = [];
    const failures: string[] = [];
    let stopAt = Number.POSITIVE_INFINITY;
    const workers = Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < labelsPerWriter && acked.length < stopAt; i++) {
        try {
          await client.updateVolumeLabels(`load-${w}`, { [`k${i}`]: 'v' });
          acked.push([`load-${w}`, `k${i}`]);
        } catch (err) {
          failures.push(`load-${w}/k${i}: ${isGalleonError(err) ? err.code : String(err)}`);
        }
      }
    });
    await until(() => acked.length >= 150, 'writes before the kill', 30_000);
    const ackedBeforeKill = acked.length;
    await cluster.kill9(old.id);
    stopAt = ackedBeforeKill + 150;
    const t0 = Date.now();
    const newLeader = await until(async () => {
      const l = await leaderOf(client);
      return l.id !== old.id ? l : undefined;
    }, 'a new leader', 30_000);
    const failoverMs = Date.now() - t0;
    await Promise.all(workers);
    assert.notEqual(newLeader.id, old.id);
    assert.ok(acked.length >= ackedBeforeKill + 100, `writes continued after the failover (${acked.length} vs ${ackedBeforeKill})`);
    const volumes = new Map((await client.listVolumes()).map((v) => [v.name, v.labels]));
    const lost = acked.filter(([v, k]) => volumes.get(v)?.[k] !== 'v');
    assert.deepEqual(lost, [], `acknowledged writes lost: ${lost.slice(0, 10).join(',')}`);
    console.log(`      failover: new leader ${newLeader.id} seen after ${failoverMs} ms; ${acked.length} acknowledged, ${failures.length} failed calls (${failures.slice(0, 3).join("; ")}), 0 lost`);
  });
});
