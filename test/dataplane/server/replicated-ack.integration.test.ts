/**
 * Rule 1 of issue #13 on real processes (1 metadata member, 3 data nodes; heartbeats 200 ms,
 * lease ttl 1 s, node down after 8 s so the killed replica stays in the group): a `replicated`
 * write is acknowledged only once every replica of its PG answered or was taken out of the
 * in-sync set by a committed mark. A replica killed before the write fails the forward; the
 * acknowledgement must find it out of sync already. On the old rule (primary + one replica) the
 * ack came back before the mark of the dead replica committed, and a moment later the primary
 * and the acknowledging replica could both die with the third still counted in sync.
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import { pgOf } from '../../../dataplane/logic/routing.js';
import type { PlacementGroup } from '../../../proto/metadata-types.js';
import { pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3' };

describe('replicated is acknowledged only after every replica answered or was marked out of sync (issue #13 rule 1)', function () {
  this.timeout(90_000);
  const env = useMetaAndData(zones, { heartbeatMs: 200, leaseTtlMs: 1000, downAfterMs: 8000 });

  async function group(volumeId: string, pg: number): Promise<PlacementGroup> {
    const g = (await env.api.getPlacement(volumeId)).find((x) => x.pg === pg);
    assert.ok(g !== undefined);
    return g;
  }

  async function put(address: string, volumeId: string, blockNo: number, epoch: number, body: Buffer): Promise<number> {
    const res = await request(`http://${address}/v1/blocks/${volumeId}/0/${blockNo}?epoch=${epoch}&concern=replicated`, { method: 'PUT', body });
    await res.body.dump();
    return res.statusCode;
  }

  it('a replica killed before the write is out of sync (committed) by the time the write is acknowledged', async () => {
    const vol = await env.api.createVolume({ name: 'acks-all', size: '1G', replicas: 3 });
    const blocks: number[] = [];
    for (let b = 0; blocks.length < 2; b++) if (pgOf(0, b, vol.pgCount) === 0) blocks.push(b);
    const [warm, probe] = blocks as [number, number];
    const g = await group(vol.id, 0);
    const primary = env.data.node(g.primary).address;
    // Peer and take the lease while every replica answers.
    await waitFor('the primary acknowledges a replicated write with all replicas up', async () => await put(primary, vol.id, warm, g.epoch, pattern(1, 4096)) === 200, 20_000, 100);
    const victim = g.replicas.find((id) => id !== g.primary);
    assert.ok(victim !== undefined);
    assert.ok((await group(vol.id, 0)).inSync.includes(victim), 'the victim starts in sync');

    await env.data.kill(victim);
    const status = await put(primary, vol.id, probe, g.epoch, pattern(2, 4096));
    // Read right after the acknowledgement: the mark must already be committed.
    const after = await group(vol.id, 0);
    assert.equal(status, 200, 'the write is acknowledged once the mark committed');
    assert.equal(after.epoch, g.epoch, 'the PG did not move (the victim was not marked down)');
    assert.ok(!after.inSync.includes(victim), `acknowledged while ${victim} was still counted in sync (in sync: ${after.inSync.join(', ')})`);
    // And the acknowledging replica holds it.
    const other = g.replicas.find((id) => id !== g.primary && id !== victim);
    assert.ok(other !== undefined);
    const res = await request(`http://${env.data.node(other).address}/v1/blocks/${vol.id}/0/${probe}`);
    assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(pattern(2, 4096)), 'the other replica holds the write');
  });
});
