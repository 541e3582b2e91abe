/**
 * Directory delegations through a real three-member metadata cluster (metadata/state/logic/
 * ns-delegation.ts, the client's recall in metadata/service/client.ts): another client's lookup,
 * listing or create in a delegated directory recalls it and completes only after the holder
 * committed its batch and released — so it sees the holder's files — and a dead holder's
 * delegation ends with its lease, its uncommitted files with it.
 */
import { strict as assert } from 'node:assert';
import { MetadataClient } from '../../../metadata/service/client.js';
import { GalleonError, posixErrnoOf, posixErrnos } from '../../../proto/errors.js';
import type { FsBatchFile, FsCaller, Volume } from '../../../proto/metadata-types.js';
import { ProcessCluster, until } from './harness.js';

const root: FsCaller = { uid: 0, gid: 0 };
const rootIno = 1;
const t = '1700000000000000000';

type Settled<T> = { value: T } | { error: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> => p.then((value) => ({ value }), (error: unknown) => ({ error }));

describe('metadata service: a delegated directory recalled by another client', function () {
  this.timeout(120_000);
  const cluster = new ProcessCluster();
  let holder: MetadataClient;
  let reader: MetadataClient;
  let vol: Volume;

  before(async () => {
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3'], ['--controller-interval-ms', '200']);
    holder = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
    reader = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
    for (let k = 1; k <= 3; k++) {
      await holder.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9400 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
    }
    vol = await holder.createVolume({ name: 'dg', size: '1G', accessMode: 'ReadWriteMany' });
  });

  after(async () => {
    holder?.close();
    reader?.close();
    await cluster.destroy();
  });

  const newFile = (name: string, ino: number): FsBatchFile => ({ name, ino, caller: { uid: 1000, gid: 1000 }, mode: 0o644, size: 4096, ctimeNs: t, mtimeNs: t });

  it('answers another client lookup and listing only after the holder committed and released, with the holder files', async () => {
    const lease = await holder.acquireLease('mount', vol.id, 'node-1', 15_000, 'rw');
    const range = await holder.fsAllocateInodes('dg', 10);
    const dir = await holder.fsMkdir('dg', root, rootIno, 'd', range.start, 0o755);
    assert.equal((await holder.fsDelegate('dg', dir.attr.ino, lease.id)).granted, true);
    // The holder reads its own directory as its session: no recall.
    assert.deepEqual((await holder.fsReaddir('dg', dir.attr.ino, null, 10, { session: lease.id })).entries, []);
    assert.deepEqual(await holder.fsDelegationsOf('dg', lease.id), [{ dir: dir.attr.ino, recallAtMs: null }]);
    let answered = false;
    const lookup = settle(reader.fsLookup('dg', dir.attr.ino, 'new.txt')).finally(() => { answered = true; });
    const listing = settle(reader.fsReaddir('dg', dir.attr.ino, null, 100));
    // The holder learns of the recall (what its watch would tell it); the reader still waits.
    await until(async () => (await holder.fsDelegationsOf('dg', lease.id)).some((d) => d.dir === dir.attr.ino && d.recallAtMs !== null), 'the reader recalled the directory');
    assert.equal(answered, false, 'the reader waits while the holder has not released');
    const committed = await holder.fsCommitBatch('dg', lease.id, dir.attr.ino, [newFile('new.txt', range.start + 1)], true);
    const releasedAt = Date.now();
    const seen = await lookup;
    // Woken by the release (the watch), not by the end of the 20 s recall wait.
    assert.ok(Date.now() - releasedAt < 10_000, `the reader answered ${Date.now() - releasedAt} ms after the release`);
    assert.ok('value' in seen, `lookup failed: ${'error' in seen ? String(seen.error) : ''}`);
    assert.deepEqual(seen.value, committed.attrs[0]);
    const listed = await listing;
    assert.ok('value' in listed);
    assert.deepEqual(listed.value.entries.map((e) => [e.name, e.attr.size]), [['new.txt', 4096]]);
    await holder.releaseLease(lease.id);
  });

  it('runs another client create in the directory once the holder released it (a new sequence number)', async () => {
    const lease = await holder.acquireLease('mount', vol.id, 'node-1', 15_000, 'rw');
    const range = await holder.fsAllocateInodes('dg', 10);
    const dir = await holder.fsMkdir('dg', root, rootIno, 'e', range.start, 0o755);
    await holder.fsDelegate('dg', dir.attr.ino, lease.id);
    const created = settle(reader.fsCreate('dg', root, dir.attr.ino, 'theirs', range.start + 1, 0o644));
    await until(async () => (await holder.fsDelegate('dg', dir.attr.ino, lease.id)).recallAtMs !== null, 'the create recalled the directory');
    await holder.fsReleaseDelegation('dg', dir.attr.ino, lease.id);
    const r = await created;
    assert.ok('value' in r, `create failed: ${'error' in r ? String(r.error) : ''}`);
    assert.equal(r.value.attr.ino, range.start + 1);
    await holder.releaseLease(lease.id);
  });

  it('keeps a reader waiting past recallWaitMs while the holder lease is live, up to maxRecallWaitMs', async () => {
    // The reader's first wait is 1.5 s; a live holder (its lease renewed) answers after 4 s.
    const slow = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000, recallWaitMs: 1_500, maxRecallWaitMs: 30_000 });
    const lease = await holder.acquireLease('mount', vol.id, 'node-1', 15_000, 'rw');
    try {
      const range = await holder.fsAllocateInodes('dg', 10);
      const dir = await holder.fsMkdir('dg', root, rootIno, 'slow', range.start, 0o755);
      assert.equal((await holder.fsDelegate('dg', dir.attr.ino, lease.id)).granted, true);
      const startMs = Date.now();
      const lookup = settle(slow.fsLookup('dg', dir.attr.ino, 'late.txt'));
      await until(async () => (await holder.fsDelegationsOf('dg', lease.id)).some((d) => d.dir === dir.attr.ino && d.recallAtMs !== null), 'the reader recalled the directory');
      await until(() => Date.now() - startMs > 4_000, 'the reader waited past its recallWaitMs');
      await holder.renewLease(lease.id, 15_000);
      const committed = await holder.fsCommitBatch('dg', lease.id, dir.attr.ino, [newFile('late.txt', range.start + 1)], true);
      const seen = await lookup;
      assert.ok('value' in seen, `lookup failed: ${'error' in seen ? String(seen.error) : ''}`);
      assert.deepEqual(seen.value, committed.attrs[0]);
      // Bounded: a live holder that never answers gives the last DELEGATED after maxRecallWaitMs.
      const dir2 = await holder.fsMkdir('dg', root, rootIno, 'stuck', range.start + 2, 0o755);
      assert.equal((await holder.fsDelegate('dg', dir2.attr.ino, lease.id)).granted, true);
      const bounded = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000, recallWaitMs: 500, maxRecallWaitMs: 3_000 });
      const t0 = Date.now();
      const err = await bounded.fsLookup('dg', dir2.attr.ino, 'x').then(() => null, (e: unknown) => e).finally(() => bounded.close());
      assert.ok(err instanceof GalleonError && err.code === 'DELEGATED', String(err));
      assert.ok(Date.now() - t0 >= 2_500 && Date.now() - t0 < 15_000, `gave up after ${Date.now() - t0} ms`);
    } finally {
      slow.close();
      await holder.releaseLease(lease.id);
    }
  });

  it('lets the reader through once a dead holder lease expired, none of its uncommitted files created', async () => {
    const lease = await holder.acquireLease('mount', vol.id, 'node-2', 3_000, 'rw'); // never renewed: a dead holder
    const range = await holder.fsAllocateInodes('dg', 10);
    const dir = await holder.fsMkdir('dg', root, rootIno, 'f', range.start, 0o755);
    assert.equal((await holder.fsDelegate('dg', dir.attr.ino, lease.id)).granted, true);
    const err = await reader.fsLookup('dg', dir.attr.ino, 'lost.txt').then(() => null, (e: unknown) => e);
    assert.equal(posixErrnoOf(err), posixErrnos.ENOENT, String(err));
    const late = await holder.fsCommitBatch('dg', lease.id, dir.attr.ino, [newFile('lost.txt', range.start + 1)], true).then(() => null, (e: unknown) => e);
    assert.ok(late instanceof GalleonError && late.code === 'LEASE_NOT_FOUND', String(late));
    assert.deepEqual((await reader.fsReaddir('dg', dir.attr.ino, null, 10)).entries, []);
  });
});
