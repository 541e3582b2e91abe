/**
 * POST /v1/block-range (issue #14): a reader's run of blocks in one request per object, against
 * three real data-node processes. The client splits a range at object boundaries (one PG each),
 * a block missing in the middle is a hole (null) and not an error, the primary stops at its byte
 * limit and the client asks for the rest, and bad input gets one clear 4xx and changes nothing.
 * (The encrypted case, every block of a range checked against the other replicas, is in
 * rollback.integration.test.ts; the block port's door for users, in test/cli/auth.integration.test.ts.)
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { request } from 'undici';
import { BlockClient, defaultRangeRequestBlocks } from '../../../dataplane/client/block-client.js';
import { blocksPerObject, pgOf } from '../../../dataplane/logic/routing.js';
import { StaticPlacementSource, type VolumePlacement } from '../../../dataplane/placement.js';
import { maxRangeReadBlocks, maxRangeReadBytes } from '../../../dataplane/wire.js';
import { pgStates, TestCluster } from '../cluster.js';
import { pattern } from '../helpers.js';

describe('block range reads (3 processes)', function () {
  this.timeout(120_000);
  const cluster = new TestCluster();
  const vol = 'vol-range';
  const all = ['n1', 'n2', 'n3'];
  let client: BlockClient;
  /** One request per object (the route's limit), where `client` sends `defaultRangeRequestBlocks`. */
  let wide: BlockClient;
  let placement: VolumePlacement;
  const paths: string[] = [];
  const onRequest = (message: unknown): void => {
    const r = (message as { request?: { path?: unknown; method?: unknown } }).request;
    if (typeof r?.path === 'string') paths.push(`${String(r.method)} ${r.path.split('?')[0] ?? ''}`);
  };

  before(async () => {
    await Promise.all([cluster.start('n1', 'z1'), cluster.start('n2', 'z2'), cluster.start('n3', 'z3')]);
    placement = cluster.placement(vol, [{ replicas: all, primary: 'n1', epoch: 1 }, { replicas: all, primary: 'n2', epoch: 1 }, { replicas: all, primary: 'n3', epoch: 1 }]);
    await cluster.install(placement);
    const source = new StaticPlacementSource();
    source.set(placement);
    client = new BlockClient({ placement: source, coalesceWrites: false });
    wide = new BlockClient({ placement: source, coalesceWrites: false, rangeRequestBlocks: maxRangeReadBlocks });
    diagnostics.subscribe('undici:request:create', onRequest);
  });
  after(async () => {
    diagnostics.unsubscribe('undici:request:create', onRequest);
    await client?.close();
    await wide?.close();
    await cluster.stopAll();
  });

  /** An inode whose first two objects live on different PGs (so on different primaries). */
  const twoPgInode = (): number => {
    for (let ino = 1; ; ino++) if (pgOf(ino, 0, 3) !== pgOf(ino, blocksPerObject, 3)) return ino;
  };

  it('reads a run across an object boundary in one request per object; a block missing in the middle is a hole', async () => {
    const ino = twoPgInode();
    const count = blocksPerObject + 6;
    const missing = new Set([3, blocksPerObject + 2]);
    const size = (b: number): number => (b % 3 === 0 ? 4096 : 1000 + b);
    await client.writeBlocks(vol, Array.from({ length: count }, (_, b) => b).filter((b) => !missing.has(b)).map((b) => ({ inode: ino, blockNo: b, data: pattern(b, size(b)) })), 'durable');
    paths.length = 0;
    const got = await wide.readBlockRange(vol, ino, 0, count);
    assert.equal(got.length, count);
    got.forEach((r, b) => {
      if (missing.has(b)) assert.equal(r, null, `block ${b} was never written`);
      else assert.ok(r !== null && r.data.equals(pattern(b, size(b))) && r.seq > 0 && r.epoch === 1, `block ${b}`);
    });
    assert.deepEqual(paths.sort(), [`POST /v1/block-range/${vol}`, `POST /v1/block-range/${vol}`], 'one request per object, no single-block GET');
    // The default client: requests of `defaultRangeRequestBlocks` inside each object, the same answer.
    paths.length = 0;
    const narrow = await client.readBlockRange(vol, ino, 0, count);
    assert.deepEqual(narrow.map((r) => r?.data ?? null), got.map((r) => r?.data ?? null));
    assert.equal(paths.length, Math.ceil(blocksPerObject / defaultRangeRequestBlocks) + Math.ceil((count - blocksPerObject) / defaultRangeRequestBlocks));
    // A range inside one object from its middle, and one block: the same bytes as single reads.
    const mid = await client.readBlockRange(vol, ino, 60, 8);
    for (let i = 0; i < 8; i++) {
      const single = await client.readBlock(vol, ino, 60 + i).catch(() => null);
      assert.deepEqual(mid[i]?.data ?? null, single?.data ?? null, `block ${60 + i}`);
    }
    assert.deepEqual(await client.readBlockRange(vol, ino, 0, 0), []);
  });

  it('a primary stops at its byte limit and the client asks for the rest', async () => {
    const ino = twoPgInode() + 1000;
    const bytes = 1024 * 1024;
    const count = maxRangeReadBytes / bytes + 4;
    assert.ok(count <= maxRangeReadBlocks);
    await client.writeBlocks(vol, Array.from({ length: count }, (_, b) => ({ inode: ino, blockNo: b, data: pattern(100 + b, bytes) })), 'durable');
    paths.length = 0;
    const got = await wide.readBlockRange(vol, ino, 0, count);
    got.forEach((r, b) => assert.ok(r?.data.equals(pattern(100 + b, bytes)), `block ${b}`));
    assert.equal(paths.filter((p) => p.startsWith('POST /v1/block-range')).length, 2, `${count} MiB in answers of at most ${maxRangeReadBytes / bytes} MiB: ${paths.join(', ')}`);
  });

  it('bad input: one line, a 4xx, nothing changed; a stale epoch is refused as GET refuses it', async () => {
    const before = await pgStates(cluster.node('n1').address);
    const base = `http://${cluster.node('n1').address}`;
    const post = async (path: string, body: string): Promise<{ status: number; json: { code?: string; message?: string } }> => {
      const res = await request(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      const text = await res.body.text();
      assert.ok(res.statusCode !== 200, `${path} ${body.slice(0, 80)} answered 200`);
      return { status: res.statusCode, json: JSON.parse(text) as { code?: string; message?: string } };
    };
    for (const [path, body, message] of [
      [`/v1/block-range/${vol}`, '{"inode":', /^block-range body is not valid JSON$/],
      [`/v1/block-range/${vol}`, JSON.stringify({ inode: 1, from: 0, count: 0 }), /^block-range body: count Too small/],
      [`/v1/block-range/${vol}`, JSON.stringify({ inode: 1, from: 0, count: 65 }), /^block-range body: count Too big/],
      [`/v1/block-range/${vol}`, JSON.stringify({ inode: -1, from: 0, count: 1 }), /^block-range body: inode Too small/],
      [`/v1/block-range/${vol}`, JSON.stringify({ inode: 1, from: 0.5, count: 1 }), /^block-range body: from /],
      [`/v1/block-range/${vol}`, JSON.stringify({ inode: 1, from: 0, count: 1, extra: true }), /^block-range body: body Unrecognized key/],
      [`/v1/block-range/${vol}`, JSON.stringify({ inode: 1, from: 60, count: 8 }), /^block-range 60\.\.67 crosses an object boundary \(objects are 64 blocks, one PG each\)$/],
      [`/v1/block-range/${vol}/1`, JSON.stringify({ inode: 1, from: 0, count: 1 }), /^block-range path is \/v1\/block-range\/:volume$/],
      [`/v1/block-range/${vol}`, 'x'.repeat(2000), /^body of 2000 bytes exceeds the 1024-byte limit$/],
    ] as const) {
      const r = await post(path, body);
      assert.ok(r.status === 400 || r.status === 413, `${path} ${body.slice(0, 60)}: ${r.status}`);
      assert.match(r.json.message ?? '', message);
      assert.ok(!(r.json.message ?? '').includes('\n'));
    }
    const unknown = await post('/v1/block-range/no-such-volume', JSON.stringify({ inode: 1, from: 0, count: 1 }));
    assert.equal(unknown.status, 404);
    // Admitted at the reader's epoch as GET admits one block: an epoch older than the PG's is refused alike.
    const get = await request(`${base}/v1/blocks/${vol}/1/0?epoch=0`);
    const getJson = (await get.body.json()) as { code?: string };
    const stale = await post(`/v1/block-range/${vol}`, JSON.stringify({ inode: 1, from: 0, count: 4, epoch: 0 }));
    assert.ok(get.statusCode >= 400 && get.statusCode < 500, String(get.statusCode));
    assert.equal(stale.status, get.statusCode);
    assert.equal(stale.json.code, getJson.code, JSON.stringify(stale.json));
    assert.deepEqual(await pgStates(cluster.node('n1').address), before, 'no state changed');
  });
});
