/**
 * The namespace through the state machine's shell: determinism across batchings, exactly-once
 * retries, failed commands, the bounded cache, restarts, snapshots and the purge of a deleted
 * volume's namespace.
 */
import assert from 'node:assert/strict';
import { ClassicLevel } from 'classic-level';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { openStateMachine } from '../../../metadata/state/index.js';
import type { FsAttr, FsInodeRange } from '../../../proto/metadata-types.js';
import { inodeId, msToNs, purgeKeysPerStep, rootIno } from '../../../metadata/state/logic/ns-store.js';
import { decodeSnapshot } from '../../../metadata/state/snapshot-codec.js';
import type { NsCacheStats } from '../../../metadata/state/ns-cache.js';
import { Feeder, removeDir, tempDir } from './helpers.js';
import { NsFixture, root } from './ns-helpers.js';

const cacheOf = (sm: StateMachine): NsCacheStats => (sm as unknown as { cacheStats(): NsCacheStats }).cacheStats();

async function snapshotKeys(sm: StateMachine): Promise<Map<string, string>> {
  const snap = decodeSnapshot((await sm.snapshot()).data);
  return new Map(snap.entries.map((e) => [e.key.toString('utf8'), e.value.toString('utf8')]));
}

/** A small tree with every kind of command, on `f`'s machine. */
async function workload(f: Feeder): Promise<NsFixture> {
  const n = await new NsFixture(f).init(1_000);
  const lease = await f.ok<{ id: string }>('acquireLease', 'mount', 'fs', 'node-1', 60_000, 'rw');
  for (let d = 0; d < 5; d += 1) {
    const dir = await n.mkdir(rootIno, `d${d}`);
    for (let i = 0; i < 8; i += 1) {
      const file = await n.create(dir.ino, `f${i}`);
      await f.ok('fsCommitWrite', 'fs', file.ino, 5_000 * i);
      if (i % 3 === 0) await f.ok('fsOpen', 'fs', file.ino, lease.id);
    }
    await f.ok('fsRename', 'fs', root, dir.ino, 'f1', rootIno, `moved${d}`);
    await f.ok('fsUnlink', 'fs', root, dir.ino, 'f0');
    await f.ok('fsSetattr', 'fs', root, dir.ino, { mode: 0o700 });
    await f.run('fsRmdir', 'fs', root, rootIno, `d${d}`);
  }
  return n;
}

describe('metadata/state namespace: the machine shell', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  const machines: StateMachine[] = [];
  async function open(options: { nsCacheMaxEntries?: number } = {}, dir?: string): Promise<{ sm: StateMachine; dir: string }> {
    const d = dir ?? await tempDir();
    if (dir === undefined) dirs.push(d);
    const sm = await openStateMachine(d, options);
    machines.push(sm);
    return { sm, dir: d };
  }
  afterEach(async () => {
    for (const sm of machines.splice(0)) await sm.close();
    for (const d of dirs.splice(0)) await removeDir(d);
  });

  it('two machines fed the same records in different batches hold byte-identical state', async () => {
    const a = await open({ nsCacheMaxEntries: 16 });
    const b = await open();
    const f = new Feeder(a.sm);
    await workload(f);
    for (let i = 0; i < f.log.length; i += 7) await b.sm.apply(f.log.slice(i, i + 7));
    const [sa, sb] = [await a.sm.snapshot(), await b.sm.snapshot()];
    assert.equal(sa.index, sb.index);
    assert.ok(Buffer.from(sa.data).equals(Buffer.from(sb.data)), 'snapshots differ');
    assert.ok([...(await snapshotKeys(a.sm)).keys()].some((k) => k.startsWith('ni/')), 'the namespace is in the database');
  });

  it('answers namespace queries that arrive while an apply fetches, and applies behind them', async () => {
    const { sm } = await open({ nsCacheMaxEntries: 8 });
    const f = new Feeder(sm);
    const n = await new NsFixture(f).init(100);
    for (let i = 0; i < 20; i += 1) await n.create(rootIno, `f${i}`);
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i += 1) {
      work.push(sm.apply([f.record('fsCreate', ['fs', root, rootIno, `g${i}`, n.ino(), 0o644])]));
      work.push(sm.query('fsLookup', ['fs', rootIno, `f${i}`]));
      work.push(sm.query('fsReaddir', ['fs', rootIno, null, 5]));
    }
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('apply and queries deadlocked')), 10_000); });
    try {
      await Promise.race([Promise.all(work), stuck]);
    } finally {
      clearTimeout(timer);
    }
    assert.equal((await n.names(rootIno)).length, 40);
  });

  it('gives a volume made before namespaces existed its root on first use, with the volume\'s times', async () => {
    const a = await open();
    const f = new Feeder(a.sm);
    const n = await new NsFixture(f).init(10);
    await a.sm.close();
    machines.splice(machines.indexOf(a.sm), 1);
    // Take the namespace records away, as in a database written before this code.
    const db = new ClassicLevel<string, string>(a.dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.batch([{ type: 'del', key: `nv/${n.vol.id}` }, { type: 'del', key: `ni/${inodeId(n.vol.id, rootIno)}` }]);
    await db.close();
    const b = await open({}, a.dir);
    f.sm = b.sm;
    const t = msToNs(n.vol.createdAtMs);
    const before = await b.sm.query('fsGetattr', ['fs', rootIno]) as FsAttr;
    assert.deepEqual([before.type, before.mode, before.uid, before.nlink, before.ctimeNs], ['dir', 0o755, 0, 2, t]);
    const range = await f.ok<FsInodeRange>('fsAllocateInodes', 'fs', 5);
    assert.equal(range.start, 2);
    await f.ok('fsCreate', 'fs', root, rootIno, 'first', range.start, 0o644);
    const after = await b.sm.query('fsGetattr', ['fs', rootIno]) as FsAttr;
    assert.deepEqual([after.nlink, after.atimeNs], [2, t]);
    assert.deepEqual(await n.names(rootIno), ['first']);
  });

  it('applies a retried command once and answers it with its first result', async () => {
    const { sm } = await open();
    const f = new Feeder(sm);
    const n = await new NsFixture(f).init(10);
    const ino = n.ino();
    const rec = f.record('fsCreate', ['fs', root, rootIno, 'x', ino, 0o644]);
    const [first] = await sm.apply([rec]);
    f.index += 1;
    const [again] = await sm.apply([{ ...rec, index: f.index }]);
    assert.deepEqual(again, first);
    assert.ok(first?.ok);
    assert.equal((await sm.query('fsStatfs', ['fs']) as { inodes: number }).inodes, 2);
  });

  it('a command that fails half-way changes nothing', async () => {
    const { sm } = await open();
    const f = new Feeder(sm);
    const n = await new NsFixture(f).init(10);
    const a = await n.create(rootIno, 'a');
    await f.ok('fsSetattr', 'fs', root, a.ino, { size: 0 });
    await f.ok('fsCommitWrite', 'fs', a.ino, 10_000);
    await f.ok('fsSetattr', 'fs', root, a.ino, { size: 0 });
    const before = await snapshotKeys(sm);
    // Deletes the queued record of seq 1, then meets a bad seq: the delete must not stay.
    await f.fails('INVALID_ARGUMENT', 'fsAckBlocksFreed', 'fs', [1, 'two']);
    await n.errno('EINVAL', 'fsRename', root, rootIno, 'a', rootIno, 'b', 3);
    const after = await snapshotKeys(sm);
    for (const m of [before, after]) for (const k of [...m.keys()]) if (k.startsWith('cl/') || k.startsWith('meta/')) m.delete(k);
    assert.deepEqual(after, before);
  });

  it('keeps the cache within its bound however large the tree, and answers from disk after a restart', async () => {
    const bound = 64;
    const a = await open({ nsCacheMaxEntries: bound });
    const f = new Feeder(a.sm);
    const n = await new NsFixture(f).init(1_000);
    const files: FsAttr[] = [];
    for (let i = 0; i < 400; i += 1) files.push(await n.create(rootIno, `file-${i}`));
    assert.ok(cacheOf(a.sm).entries <= bound, `cache holds ${cacheOf(a.sm).entries} entries`);
    for (const file of files) assert.equal((await n.lookup(rootIno, `file-${file.ino - files[0]!.ino}`)).ino, file.ino);
    const st = cacheOf(a.sm);
    assert.ok(st.entries <= bound && st.misses > 400, JSON.stringify(st));
    await a.sm.close();
    machines.splice(machines.indexOf(a.sm), 1);
    const b = await open({ nsCacheMaxEntries: bound }, a.dir);
    assert.equal(cacheOf(b.sm).entries, 0, 'a restart loads no namespace record into memory');
    assert.equal((await b.sm.query('fsLookup', ['fs', rootIno, 'file-399']) as FsAttr).ino, files[399]!.ino);
    assert.equal((await b.sm.query('fsStatfs', ['fs']) as { inodes: number }).inodes, 401);
  });

  it('a restored snapshot replaces the namespace, cached entries included', async () => {
    const a = await open();
    const fa = new Feeder(a.sm);
    const na = await workload(fa);
    const b = await open();
    const fb = new Feeder(b.sm);
    const nb = await new NsFixture(fb).init(10);
    await nb.create(rootIno, 'only-on-b');
    assert.ok((await nb.lookup(rootIno, 'only-on-b')).ino > 0);
    const snap = await a.sm.snapshot();
    await b.sm.restore(snap.index, snap.data);
    await assert.rejects(b.sm.query('fsLookup', ['fs', rootIno, 'only-on-b']), (e: unknown) => (e as { code?: string }).code !== undefined);
    assert.deepEqual(await b.sm.query('fsReaddir', ['fs', rootIno, null, 100]), await a.sm.query('fsReaddir', ['fs', rootIno, null, 100]));
    assert.ok(na.vol.id.length > 0);
  });

  it('purges a deleted volume\'s namespace in bounded steps', async () => {
    const { sm } = await open();
    const f = new Feeder(sm);
    const n = await new NsFixture(f).init(1_000);
    for (let i = 0; i < 300; i += 1) await n.create(rootIno, `f${i}`);
    await f.ok('deleteVolume', 'fs');
    assert.equal(await sm.query('fsPendingPurges', []), 1);
    const first = await f.ok<{ purged: number }>('fsPurgeDeleted');
    assert.equal(first.purged, purgeKeysPerStep);
    assert.equal(await sm.query('fsPendingPurges', []), 1);
    await f.ok('fsPurgeDeleted');
    assert.equal(await sm.query('fsPendingPurges', []), 0);
    const left = [...(await snapshotKeys(sm)).keys()].filter((k) => k.includes(n.vol.id));
    assert.deepEqual(left, []);
    // A new volume of the same name starts with an empty root.
    const again = await new NsFixture(f).init(10, false);
    assert.deepEqual(await again.names(rootIno), []);
    assert.ok((await f.ok<FsInodeRange>('fsAllocateInodes', 'fs', 1)).start >= 2);
  });
});
