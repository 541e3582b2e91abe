/**
 * A data node whose disk was wiped right after it acknowledged a `replicated` write, restarted at
 * once on its old address while the metadata service still counts it in sync (the chaos
 * finding, seed 8). Until the service has marked it down and it registered, it answers every
 * data request UNAVAILABLE: no primary claim (no epoch change), no pg-primary lease (so the
 * controller can mark it down), no read of its empty store. Afterwards it serves again.
 * Real processes: one metadata member, four data nodes (a replacement exists for every PG).
 * Timing: heartbeats 200 ms, lease ttl 1 s, node down after 10 s (the window in which the
 * restarted node must be probed; a node still starting when it closes would not be "wiped").
 */
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { request } from 'undici';
import { pgOf } from '../../../dataplane/logic/routing.js';
import type { Volume } from '../../../proto/metadata-types.js';
import { pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const heartbeatMs = 200;
const leaseTtlMs = 1000;
const downAfterMs = 10_000;
const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3', d4: 'z1' };

async function call(method: 'GET' | 'PUT' | 'POST', url: string, body?: Buffer): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const res = await request(url, { method, ...(body === undefined ? {} : { body }), headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await res.body.text();
  let parsed: { code?: string; message?: string } = {};
  try { parsed = JSON.parse(text) as typeof parsed; } catch { /* binary answers: only the status matters */ }
  return { status: res.statusCode, body: parsed };
}

describe('a wiped data node serves nothing before it registers (real processes)', function () {
  this.timeout(120_000);
  const env = useMetaAndData(zones, { heartbeatMs, leaseTtlMs, downAfterMs });

  it('answers 503 without claiming or leasing while counted in sync, and serves once marked down and registered', async () => {
    const vol: Volume = await env.api.createVolume({ name: 'wiped', size: '1G', replicas: 3 });
    const groups = await env.groups(vol.id);
    const victimGroup = groups.find((g) => g.primary === 'd1');
    assert.ok(victimGroup !== undefined, 'd1 is the primary of some PG');
    const blockNo = Array.from({ length: 64 * 256 }, (_, i) => i).find((b) => pgOf(0, b, vol.pgCount) === victimGroup.pg);
    assert.ok(blockNo !== undefined);
    const payload = pattern(7, 4096);
    await env.client.writeBlock(vol.id, 0, blockNo, payload, 'replicated');

    const old = env.data.node('d1');
    const port = old.address.split(':').at(-1) ?? '';
    await env.data.kill('d1');
    await rm(old.dir, { recursive: true, force: true });
    await mkdir(old.dir, { recursive: true });
    // `start` resolves once the node printed its address, which it does after registering.
    const registered = env.data.start('d1', 'z1', old.dir, [...env.flags, '--port', port]);
    registered.catch(() => undefined);
    const base = `http://${old.address}`;
    await waitFor('the wiped d1 to listen', async () => (await call('GET', `${base}/healthz`).catch(() => null))?.status === 200, 30_000, 50);
    const wipedLine = /data node d1 is not registered with the metadata service yet \(its store is empty while the service counts it in sync\); retry another replica/;
    // Until its agent has asked the service, a refusal does not say why yet (`registered yet;`).
    await waitFor('d1 to have asked the metadata service', async () => !/registered .*yet; retry/.test((await call('GET', `${base}/v1/pgs`)).body.message ?? ''), 30_000, 50);

    const epoch = victimGroup.epoch;
    const probes = [
      await call('PUT', `${base}/v1/blocks/${vol.id}/0/${blockNo}?epoch=${epoch}&concern=replicated`, pattern(8, 4096)),
      await call('GET', `${base}/v1/blocks/${vol.id}/0/${blockNo}?epoch=${epoch}`),
      await call('POST', `${base}/v1/peer/${vol.id}/${victimGroup.pg}?epoch=${epoch}`),
      await call('GET', `${base}/v1/journal/${vol.id}/${victimGroup.pg}?from=1`),
      await call('GET', `${base}/v1/pgs`),
    ];
    for (const p of probes) {
      assert.equal(p.status, 503, `a data request to the wiped node answered ${p.status}: ${JSON.stringify(p.body)}`);
      assert.equal(p.body.code, 'UNAVAILABLE');
      assert.match(p.body.message ?? '', wipedLine);
    }
    assert.equal((await call('GET', `${base}/metrics`)).status, 200, 'metrics keep working');
    assert.equal(((await call('GET', `${base}/healthz`)).body as { serving?: boolean }).serving, false, 'healthz says it serves nothing');
    // The probes ran while the service still counted d1 in sync: that is the window of the bug.
    const now = (await env.groups(vol.id))[victimGroup.pg];
    assert.equal(await env.stateOf('d1'), 'up', 'd1 was probed before it was marked down (raise downAfterMs if this host is slow)');
    assert.equal(now?.epoch, epoch, 'no primary claim moved the epoch');
    assert.equal(now?.primary, 'd1');

    // The wiped node registers only once the service marked it down (its agent checks), and a
    // node holding a live pg-primary lease is never marked down: that it registers proves it took none.
    await registered;
    await waitFor('d1 registered again', async () => (await env.stateOf('d1')) === 'up', 20_000, 100);
    const h = await call('GET', `${base}/healthz`);
    assert.equal((h.body as { serving?: boolean }).serving, true);
    assert.equal((await call('GET', `${base}/v1/pgs`)).status, 200, 'a registered node serves');
    const moved = (await env.groups(vol.id))[victimGroup.pg];
    assert.notEqual(moved?.primary, 'd1', 'the PG moved to a replica that has the data');
    assert.deepEqual((await env.client.readBlock(vol.id, 0, blockNo)).data, payload, 'the acknowledged write reads back');
  });
});
