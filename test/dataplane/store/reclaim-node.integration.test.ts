/**
 * The data node runs the reclaimer: a real data-node process whose blocks were overwritten is
 * restarted (its old segment is now sealed), its reclaimer deletes the dead segment on its own,
 * the counters show it on GET /metrics, and every block still reads back over HTTP.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { readFromNode, TestCluster } from '../cluster.js';
import { pattern, waitFor } from '../helpers.js';

const blockBytes = 64 * 1024; // above the inline limit: bodies go to segments
const blocks = 16;
const rounds = 4;

async function metric(address: string, name: string): Promise<number> {
  const res = await request(`http://${address}/metrics`);
  const text = await res.body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

describe('data node space reclamation (real process)', function () {
  this.timeout(40_000);
  const cluster = new TestCluster();
  after(async () => { await cluster.stopAll(); });

  it('deletes the dead segment of a restarted node by itself and keeps every block', async () => {
    const args = ['--reclaim-interval-ms', '200', '--scrub-rate', '0'];
    const n1 = await cluster.start('n1', 'z1', undefined, args);
    const p = cluster.placement('vol-gc', [{ replicas: ['n1'], primary: 'n1', epoch: 1 }]);
    await cluster.install(p);
    for (let r = 0; r < rounds; r++) {
      for (let b = 0; b < blocks; b++) {
        const res = await request(`http://${n1.address}/v1/blocks/vol-gc/1/${b}?epoch=1&concern=durable`, { method: 'PUT', body: pattern(b * 100 + r, blockBytes) });
        await res.body.dump();
        assert.equal(res.statusCode, 200);
      }
    }
    const segmentsDir = path.join(n1.dir, 'segments');
    const before = (await readdir(segmentsDir)).filter((n) => n.endsWith('.seg'));
    await cluster.stop('n1');

    const again = await cluster.start('n1', 'z1', n1.dir, args);
    await cluster.install(cluster.placement('vol-gc', [{ replicas: ['n1'], primary: 'n1', epoch: 1 }]));
    await waitFor('the reclaimer to delete the sealed segment', async () => (await metric(again.address, 'galleon_dataplane_gc_segments_deleted_total')) >= 1, 20_000, 100);
    const after = (await readdir(segmentsDir)).filter((n) => n.endsWith('.seg'));
    assert.ok(before.every((name) => !after.includes(name)), `old segments ${before.join(',')} gone (now ${after.join(',')})`);
    assert.ok(await metric(again.address, 'galleon_dataplane_gc_reclaimed_bytes_total') >= (rounds - 1) * blocks * blockBytes);
    for (let b = 0; b < blocks; b++) {
      const got = await readFromNode(again.address, 'vol-gc', 1, b);
      assert.equal(got.status, 200);
      assert.ok(got.data.equals(pattern(b * 100 + rounds - 1, blockBytes)), `block ${b} reads its last version`);
    }
  });
});
