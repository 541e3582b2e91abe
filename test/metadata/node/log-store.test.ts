import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../../metadata/raft/core/types.js';
import { LogStore } from '../../../metadata/raft/node/log-store.js';
import { isGalleonError } from '../../../proto/errors.js';

function ent(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) };
}

function texts(entries: Entry[]): string[] {
  return entries.map((e) => `${e.index}/${e.term}/${new TextDecoder().decode(e.data)}`);
}

describe('metadata/raft/node LogStore (real LevelDB files)', () => {
  let dir: string;
  let store: LogStore | null = null;

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'galleon-logstore-')); });
  afterEach(async () => {
    if (store !== null) await store.close().catch(() => undefined);
    store = null;
    await rm(dir, { recursive: true, force: true });
  });

  async function reopen(): Promise<LogStore> {
    if (store !== null) await store.close();
    store = await LogStore.open(dir, { voters: ['a', 'b', 'c'], learners: [] });
    return store;
  }

  it('a new store loads an empty state with the initial conf', async () => {
    const s = await reopen();
    const init = await s.load();
    assert.deepEqual(init.hardState, { term: 0, vote: null, commit: 0 });
    assert.deepEqual(init.snapshotMeta, { index: 0, term: 0, conf: { voters: ['a', 'b', 'c'], learners: [] } });
    assert.deepEqual(init.entries, []);
    assert.equal(init.applied, 0);
  });

  it('persists entries and hard state across reopen exactly', async () => {
    let s = await reopen();
    await s.save({ hardState: { term: 2, vote: 'b', commit: 2 }, entries: [ent(1, 1), ent(2, 2), ent(3, 2)], snapshot: null });
    await s.save({ hardState: null, entries: [{ index: 4, term: 2, type: 'conf-change', data: new Uint8Array([1, 2, 3]) }], snapshot: null });
    s = await reopen();
    const init = await s.load();
    assert.deepEqual(init.hardState, { term: 2, vote: 'b', commit: 2 });
    assert.deepEqual(texts(init.entries.slice(0, 3)), ['1/1/e1', '2/2/e2', '3/2/e3']);
    assert.equal(init.entries[3]?.type, 'conf-change');
    assert.deepEqual([...(init.entries[3]?.data ?? [])], [1, 2, 3]);
    assert.equal(s.lastIndex(), 4);
  });

  it('truncates a conflicting suffix when entries are overwritten', async () => {
    let s = await reopen();
    await s.save({ hardState: null, entries: [1, 2, 3, 4, 5].map((i) => ent(i, 1)), snapshot: null });
    await s.save({ hardState: { term: 3, vote: null, commit: 2 }, entries: [ent(3, 3, 'new3')], snapshot: null });
    assert.equal(s.lastIndex(), 3);
    s = await reopen();
    const init = await s.load();
    assert.deepEqual(texts(init.entries), ['1/1/e1', '2/1/e2', '3/3/new3']);
  });

  it('refuses an append that would leave a gap', async () => {
    const s = await reopen();
    await s.save({ hardState: null, entries: [ent(1, 1)], snapshot: null });
    await assert.rejects(s.save({ hardState: null, entries: [ent(3, 1)], snapshot: null }), (e) => isGalleonError(e, 'INVARIANT_VIOLATION'));
  });

  it('compaction drops covered entries and keeps the snapshot', async () => {
    let s = await reopen();
    await s.save({ hardState: { term: 1, vote: 'a', commit: 6 }, entries: [1, 2, 3, 4, 5, 6].map((i) => ent(i, 1)), snapshot: null });
    const conf = { voters: ['a', 'b', 'c'], learners: ['d'] };
    await s.compact({ index: 4, term: 1, conf }, new TextEncoder().encode('state@4'));
    s = await reopen();
    const init = await s.load();
    assert.deepEqual(init.snapshotMeta, { index: 4, term: 1, conf });
    assert.equal(init.applied, 4);
    assert.deepEqual(texts(init.entries), ['5/1/e5', '6/1/e6']);
    assert.deepEqual(await s.entries(1, 4), []);
    const snap = await s.snapshot();
    assert.equal(new TextDecoder().decode(snap?.data), 'state@4');
  });

  it('a received snapshot replaces the whole log, entries after it append', async () => {
    let s = await reopen();
    await s.save({ hardState: null, entries: [1, 2, 3].map((i) => ent(i, 1)), snapshot: null });
    const meta = { index: 10, term: 4, conf: { voters: ['a', 'b'], learners: [] } };
    await s.save({ hardState: { term: 4, vote: null, commit: 10 }, entries: [ent(11, 4)], snapshot: { meta, data: new Uint8Array([9]) } });
    s = await reopen();
    const init = await s.load();
    assert.deepEqual(init.snapshotMeta, meta);
    assert.deepEqual(texts(init.entries), ['11/4/e11']);
    assert.deepEqual(init.hardState, { term: 4, vote: null, commit: 10 });
    assert.equal(s.firstIndex(), 11);
  });

  it('keeps user values beside the log', async () => {
    let s = await reopen();
    await s.putUserValue('peers', '{"a":"x"}');
    s = await reopen();
    assert.equal(await s.getUserValue('peers'), '{"a":"x"}');
    assert.equal(await s.getUserValue('none'), undefined);
  });
});
