/**
 * The daemon's data role (in process) against a real metadata member: restarted on a wiped
 * storage dir while the service still counts it in sync, its block server answers data requests
 * UNAVAILABLE (health keeps working) until the service marked it down and the role registered;
 * then it serves. Timing: heartbeats 200 ms, lease ttl 1 s, node down after 3 s.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { DataRole, dataDirName } from '../../cli/daemon/data-role.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { freePort, ProcessCluster } from '../metadata/service/harness.js';
import { pattern, removeDir, tempDir, waitFor } from '../dataplane/helpers.js';

const heartbeatIntervalMs = 200;
const leaseTtlMs = 1000;
const downAfterMs = 3000;

async function get(url: string): Promise<{ status: number; body: { code?: string; message?: string; serving?: boolean } }> {
  const res = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
  return { status: res.statusCode, body: JSON.parse(await res.body.text()) as { code?: string; message?: string; serving?: boolean } };
}

describe('daemon data role: a wiped node serves nothing before it registers', function () {
  this.timeout(60_000);
  const meta = new ProcessCluster();
  const roles: DataRole[] = [];
  let api: MetadataClient | null = null;
  let dir = '';

  after(async () => {
    for (const r of roles) await r.stop().catch(() => undefined);
    api?.close();
    await meta.destroy();
    await removeDir(dir);
  });

  it('answers 503 while counted in sync, serves once marked down and registered', async () => {
    await meta.init();
    const [member] = await meta.bootstrap(['m1'], ['--data-node-timeout-ms', String(downAfterMs), '--controller-interval-ms', '100']);
    assert.ok(member !== undefined);
    const client = new MetadataClient({ addresses: [member.address] });
    api = client;
    dir = await tempDir('data-role-gate');
    const dataAddress = `127.0.0.1:${await freePort()}`;
    const role = (): DataRole => {
      const r = new DataRole({ nodeId: 'd1', dataAddress, zone: 'z1', storagePath: dir, metadata: () => client, logger: pino({ level: 'silent' }), heartbeatIntervalMs, leaseTtlMs });
      roles.push(r);
      return r;
    };
    const first = role();
    await first.start();
    await waitFor('d1 registered', () => first.registered, 20_000);
    await client.createStorageClass({ name: 'single', replicas: 1, writeConcern: 'durable' });
    const vol = await client.createVolume({ name: 'gate', size: '1G', storageClass: 'single' });
    await first.blocks().writeBlock(vol.id, 0, 0, pattern(3, 4096), 'durable');
    const before = await client.getPlacement(vol.id);
    await first.stop();
    await rm(join(dir, dataDirName), { recursive: true, force: true });

    const second = role();
    await second.start();
    const wipedLine = /data node d1 is not registered with the metadata service yet \(its store is empty while the service counts it in sync\); retry another replica/;
    // Until its agent has asked the service, a refusal does not say why yet (`registered yet;`).
    const refused = await waitFor('the wiped d1 to have asked the service', async () => {
      const r = await get(`http://${dataAddress}/v1/pgs`).catch(() => null);
      return r !== null && !/registered .*yet; retry/.test(r.body.message ?? '') ? r : undefined;
    }, 20_000, 50);
    assert.equal(refused.status, 503, `the wiped node answered ${refused.status}: ${JSON.stringify(refused.body)}`);
    assert.equal(refused.body.code, 'UNAVAILABLE');
    assert.match(refused.body.message ?? '', wipedLine);
    const health = await get(`http://${dataAddress}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.body.serving, false);
    assert.equal(second.registered, false);
    assert.deepEqual((await client.getPlacement(vol.id)).map((g) => g.epoch), before.map((g) => g.epoch), 'no epoch moved');

    await waitFor('d1 marked down, then registered', () => second.registered, 30_000);
    assert.equal((await get(`http://${dataAddress}/v1/pgs`)).status, 200, 'a registered node serves');
    assert.equal((await get(`http://${dataAddress}/healthz`)).body.serving, true);
    // It registered saying its store is empty: the service no longer counts it in sync for the
    // PG whose only copy it held (unavailable rather than silently empty; pg-safety.ts).
    const after = await client.getPlacement(vol.id);
    assert.ok(after.every((g) => !g.inSync.includes('d1')), `the wiped d1 is still counted in sync: ${JSON.stringify(after.map((g) => g.inSync))}`);
  });
});
