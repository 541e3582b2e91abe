/**
 * Rule 2 of issue #13 on real processes (1 metadata member, 4 data nodes; heartbeats 200 ms,
 * lease ttl 1 s, node down after 4 s): hand-back compares versions of blocks at the primary,
 * not the new primary's journal, so a journal trimmed past the old epoch no longer loses what the
 * replaced node held alone. The primary acknowledges a `durable` write while both replicas are
 * frozen (SIGSTOP); then it is killed, and so are they (the forward still in their sockets goes
 * with them) and they restart at once; the PG fails over, the new primary takes
 * more than a journal's trim step of writes and trims; the old primary comes back, no longer a
 * member, and hands its block back. On the old code it found the journal trimmed and handed
 * nothing: the acknowledged write was gone.
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { trimEveryEntries } from '../../../dataplane/server/replication.js';
import { pgStates } from '../cluster.js';
import { blocksInPg, pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3', d4: 'z1' };

describe('hand-back after the new primary trimmed its journal (issue #13 rule 2)', function () {
  this.timeout(180_000);
  const env = useMetaAndData(zones, { heartbeatMs: 200, leaseTtlMs: 1000, downAfterMs: 4000 });
  const stopped = new Set<string>();

  // Per test, not once at the end: a case failing between SIGSTOP and the kill left the replicas
  // frozen, and the next case then timed out behind them (seen under load).
  afterEach(() => { for (const id of stopped) env.data.nodes.get(id)?.proc.kill('SIGCONT'); stopped.clear(); });


  it('a durable write only the replaced primary held comes back although the new primary trimmed its journal', async () => {
    const vol = await env.api.createVolume({ name: 'hb-trim', size: '1G', replicas: 3 });
    const inPg0 = blocksInPg(vol.pgCount, 0, trimEveryEntries + 200);
    const [x, ...rest] = inPg0 as [number, ...number[]];
    await env.client.writeBlock(vol.id, 0, rest[0] ?? 1, pattern(9, 4096), 'replicated');
    // Read after the first write: under load a node can miss heartbeats for downAfterMs and the PG
    // move on (seen: epoch 1 → 3 before the raw PUT, which then got 409 STALE_EPOCH at epoch 1);
    // the client retries such moves by itself, the raw PUT below must use the group it peered.
    const g = await env.group(vol.id, 0);
    const old = g.primary;
    const replicas = g.replicas.filter((id) => id !== old);

    for (const id of replicas) { env.data.node(id).proc.kill('SIGSTOP'); stopped.add(id); }
    const body = pattern(7, 4096);
    const res = await request(`http://${env.data.node(old).address}/v1/blocks/${vol.id}/0/${x}?epoch=${g.epoch}&concern=durable`, { method: 'PUT', body });
    await res.body.dump();
    assert.equal(res.statusCode, 200, 'the primary acknowledged the durable write alone');
    await env.data.kill(old);
    for (const id of replicas) { await env.data.kill(id); stopped.delete(id); }
    await Promise.all(replicas.map((id) => env.startNode(id)));

    const moved = await waitFor('PG 0 failed over and got a replacement', async () => {
      const now = await env.group(vol.id, 0);
      return now.primary !== old && !now.replicas.includes(old) && now.replicas.length === 3 ? now : undefined;
    }, 30_000, 100);
    await env.client.writeBlocks(vol.id, rest.map((b, i) => ({ inode: 0, blockNo: b, data: pattern(100 + i, 512) })), 'replicated');
    const primaryAddress = env.data.node(moved.primary).address;
    await waitFor('the new primary trimmed its journal', async () => {
      const st = (await pgStates(primaryAddress)).find((s) => s.volumeId === vol.id && s.pg === 0);
      return st !== undefined && st.trimmedSeq > 0;
    }, 30_000, 100);

    await env.startNode(old);
    const back = await waitFor('the handed-back write reads through the new primary', async () => {
      try {
        const r = await env.client.readBlock(vol.id, 0, x);
        return r.data.equals(body) ? r : undefined;
      } catch {
        return undefined;
      }
    }, 30_000, 200);
    assert.ok(back.epoch > g.epoch, 'it came back as a write at the new epoch');
  });

  it('refuses a malformed or too-new hand-back version with one clear error, storing nothing', async () => {
    const vol = await env.api.createVolume({ name: 'hb-bad', size: '1G', replicas: 3 });
    const g = await env.group(vol.id, 0);
    let b = 0;
    while (pgOf(0, b, vol.pgCount) !== 0) b++;
    const primary = env.data.node(g.primary).address;
    let warm = b + 1;
    while (pgOf(0, warm, vol.pgCount) !== 0) warm++;
    await env.client.writeBlock(vol.id, 0, warm, pattern(1, 512), 'replicated'); // peer and lease
    const put = async (version: string): Promise<{ status: number; body: { code?: string; message?: string } }> => {
      const res = await request(`http://${primary}/v1/blocks/${vol.id}/0/${b}?epoch=${g.epoch}&concern=replicated&handBack=${version}`, { method: 'PUT', body: pattern(2, 512) });
      return { status: res.statusCode, body: await res.body.json() as { code?: string; message?: string } };
    };
    for (const bad of ['abc', '1', `${g.epoch}.1`]) {
      const r = await put(bad);
      assert.equal(r.status, 400, `handBack=${bad}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'INVALID_ARGUMENT');
      assert.match(r.body.message ?? '', /handBack|handed-back/);
    }
    await assert.rejects(env.client.readBlock(vol.id, 0, b), (err: { code?: string }) => err.code === 'BLOCK_NOT_FOUND');
  });
});
