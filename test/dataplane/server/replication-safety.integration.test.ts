/**
 * Replication safety under double failures, with real processes (3 metadata members, 3 data
 * nodes; heartbeats 200 ms, lease ttl 1 s, node down after 6 s so a killed node can return
 * before it is replaced):
 *  (a) seq reuse: a primary forwards a write to one replica and dies before storing it (test
 *      fault hook), comes back while that replica is down: it must not give the same seq to
 *      another write; once all are back, every replica of the PG holds the same blocks;
 *  (b) a replica that failed a write is taken out of sync; when the primary and the replica
 *      that acknowledged the write die, the stale one is never made primary, and the write
 *      reads back once they return.
 */
import assert from 'node:assert/strict';
import { crc32c } from '@node-rs/crc32';
import { request } from 'undici';
import { BlockClient } from '../../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../../dataplane/placement.js';
import { pgOf } from '../../../dataplane/logic/routing.js';
import type { PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import { pgBlockEntries, readFromNode } from '../cluster.js';
import { pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const heartbeatMs = 200;
const leaseTtlMs = 1000;
const downAfterMs = 6000;
const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3' };
const hookEnv = 'GALLEON_TEST_DIE_AFTER_FORWARD';

describe('replication safety under double failures (3 metadata + 3 data processes)', function () {
  this.timeout(90_000);
  const env = useMetaAndData(zones, { heartbeatMs, leaseTtlMs, downAfterMs }, { metadataMembers: 3 });
  const { data } = env;
  const clients: BlockClient[] = [];
  const stopped = new Set<string>();

  function client(): BlockClient {
    const c = new BlockClient({ placement: new MetadataPlacementSource(env.api), maxAttempts: 8, retryBaseDelayMs: 25, coalesceWrites: false, requestTimeoutMs: 5000 });
    clients.push(c);
    return c;
  }

  async function group(volumeId: string, pg: number): Promise<PlacementGroup> {
    const g = (await env.api.getPlacement(volumeId)).find((x) => x.pg === pg);
    assert.ok(g !== undefined);
    return g;
  }

  const start = env.startNode;

  function signal(id: string, sig: 'SIGSTOP' | 'SIGCONT'): void {
    data.node(id).proc.kill(sig);
    if (sig === 'SIGSTOP') stopped.add(id);
    else stopped.delete(id);
  }

  /** Blocks of PG `pg` (inode 0), in block-number order. */
  function blocksOf(vol: Volume, pg: number, count: number): number[] {
    const out: number[] = [];
    for (let b = 0; out.length < count; b++) if (pgOf(0, b, vol.pgCount) === pg) out.push(b);
    return out;
  }

  /** crc32c over (block, body crc) of every live block of the PG on one node. */
  async function digest(id: string, volumeId: string, pg: number): Promise<{ digest: number; blocks: string[] }> {
    const entries = await pgBlockEntries(data.node(id).address, volumeId, pg);
    return { digest: crc32c(entries.join(',')), blocks: entries.map((e) => e.slice(0, e.indexOf(':'))) };
  }


  after(async () => {
    // The nodes are SIGKILLed (stopped or not) by useMetaAndData's own hook, which runs first.
    for (const id of stopped) data.nodes.get(id)?.proc.kill('SIGCONT');
    for (const c of clients) await c.close().catch(() => undefined);
  });

  it('(a) a primary that dies after forwarding and restarts without that replica never reuses the seq; replicas converge', async () => {
    const vol = await env.api.createVolume({ name: 'seq-reuse', size: '1G', replicas: 3 });
    const g = (await env.api.getPlacement(vol.id)).find((x) => x.primary === 'd1');
    assert.ok(g !== undefined, 'd1 is primary of some PG');
    const [a, b] = g.replicas.filter((id) => id !== 'd1') as [string, string];
    const [b1, b2] = blocksOf(vol, g.pg, 2) as [number, number];
    // d1 restarts with the fault hook: its first write as primary is forwarded, never stored, and
    // it dies. (Its restart moves the PG to a new epoch: it had claimed the first one.)
    await data.kill('d1');
    await start('d1', { [hookEnv]: '1' });
    const primary = data.node('d1');
    // Peer (and take the lease) while every replica answers: a read at the epoch does that.
    const epoch = await waitFor('d1 serves PG reads', async () => {
      const now = await group(vol.id, g.pg);
      const res = await request(`http://${primary.address}/v1/blocks/${vol.id}/0/${b1}?epoch=${now.epoch}`);
      await res.body.dump();
      return res.statusCode === 404 ? now.epoch : undefined;
    }, 20_000, 100);

    // Replica a is frozen: the write reaches b only; d1 dies before storing it.
    signal(a, 'SIGSTOP');
    const w1 = pattern(1, 4096);
    const answer = await request(`http://${primary.address}/v1/blocks/${vol.id}/0/${b1}?epoch=${epoch}&concern=replicated`, { method: 'PUT', body: w1 })
      .then(async (res) => { await res.body.dump(); return res.statusCode; }, () => 'connection lost');
    assert.equal(answer, 'connection lost', 'the hooked primary never answers');
    await waitFor('d1 killed itself', () => primary.proc.exitCode !== null || primary.proc.signalCode !== null);
    const onB = await readFromNode(data.node(b).address, vol.id, 0, b1);
    assert.ok(onB.status === 200 && onB.data.equals(w1), 'replica b stored the forwarded write');

    // b goes away, a comes back, d1 restarts (no hook) and a new write arrives.
    await data.kill(b);
    signal(a, 'SIGCONT');
    await start('d1');
    const c = client();
    const w2 = pattern(2, 4096);
    let acked = false;
    const writing = (async () => {
      const deadline = Date.now() + 40_000;
      for (;;) {
        try {
          await c.writeBlock(vol.id, 0, b2, w2, 'replicated');
          acked = true;
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
    })();
    // The restarted primary claimed its epoch again: the PG moved to a new one.
    await waitFor('the PG moved to a new epoch', async () => (await group(vol.id, g.pg)).epoch > epoch, 20_000, 100);
    await start(b);
    await writing;
    assert.ok(acked);

    const ids = [g.primary, a, b];
    const last = await waitFor('every replica holds the same blocks', async () => {
      const ds = await Promise.all(ids.map((id) => digest(id, vol.id, g.pg)));
      const same = ds.every((d) => d.digest === ds[0]?.digest);
      return same && ds[0]?.blocks.length === 2 ? ds : undefined;
    }, 20_000, 200).catch(async () => {
      const ds = await Promise.all(ids.map(async (id) => `${id}: ${(await digest(id, vol.id, g.pg)).blocks.join(' ')}`));
      assert.fail(`replicas diverge: ${ds.join(' | ')}`);
    });
    assert.deepEqual(last[0]?.blocks, [`0/${b1}`, `0/${b2}`].sort());
    assert.ok((await c.readBlock(vol.id, 0, b2)).data.equals(w2));
  });

  it('(b) a replica that failed an acknowledged write is never made primary; the write survives the double failure', async () => {
    const vol = await env.api.createVolume({ name: 'out-of-sync', size: '1G', replicas: 3 });
    const [g0] = await env.api.getPlacement(vol.id);
    assert.ok(g0 !== undefined);
    const p = g0.primary;
    const [a, b] = g0.replicas.filter((id) => id !== p) as [string, string];
    const [b1, b2] = blocksOf(vol, g0.pg, 2) as [number, number];
    const c = client();
    await c.writeBlock(vol.id, 0, b1, pattern(10, 4096), 'distributed');

    // b dies; the write is acknowledged by p and a, and p takes b out of sync.
    await data.kill(b);
    const w = pattern(11, 4096);
    const ack = await c.writeBlock(vol.id, 0, b2, w, 'replicated');
    assert.equal(ack.pg, g0.pg);
    // Out of sync by its primary's word, well before it could be marked down and replaced.
    const marked = await waitFor(`${b} taken out of sync`, async () => {
      const g = await group(vol.id, g0.pg);
      return g.inSync.includes(b) ? undefined : g;
    }, downAfterMs / 2, 50);
    assert.ok(marked.replicas.includes(b) && marked.epoch === g0.epoch, 'b is still a replica at the same epoch, only out of sync');
    assert.equal((await env.api.getVolume(vol.id)).state, 'degraded');

    // p and a die together; b returns before it could be marked down.
    await Promise.all([data.kill(p), data.kill(a)]);
    await start(b);
    await waitFor(`${p} and ${a} marked down`, async () => {
      const nodes = await env.api.listDataNodes();
      return [p, a].every((id) => nodes.find((n) => n.id === id)?.state === 'down');
    }, 30_000, 100);
    const during = await group(vol.id, g0.pg);
    assert.notEqual(during.primary, b, 'the stale replica was made primary');
    assert.ok(during.replicas.includes(b) && !during.inSync.includes(b), 'b stayed a replica, out of sync');
    assert.ok([p, a].includes(during.primary));
    const status = await env.api.clusterStatus();
    assert.ok(status.degradedPgs >= 1, 'the PG without a serving primary shows as degraded');
    assert.equal((await env.api.listDataNodes()).find((n) => n.id === b)?.state, 'up');

    // They return: the acknowledged write reads back, and b catches up and rejoins.
    await Promise.all([start(p), start(a)]);
    const reader = client();
    const got = await waitFor('the acknowledged write reads back', async () => {
      try { return (await reader.readBlock(vol.id, 0, b2)).data; } catch { return undefined; }
    }, 30_000, 200);
    assert.ok(got.equals(w), 'the acknowledged replicated write was lost');
    await waitFor(`${b} back in sync`, async () => (await group(vol.id, g0.pg)).inSync.includes(b), 20_000, 100);
  });
});
