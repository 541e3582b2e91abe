/**
 * The namespace through a real three-member metadata cluster and MetadataClient: every answer
 * carries attributes, POSIX errors arrive with their errno, a follower serves the same tree,
 * kill -9 of the leader loses nothing acknowledged, and a deleted volume's namespace does not
 * come back with a new volume of its name.
 */
import { strict as assert } from 'node:assert';
import { MetadataClient } from '../../../metadata/service/client.js';
import { posixErrnoOf, posixErrnos } from '../../../proto/errors.js';
import type { FsCaller } from '../../../proto/metadata-types.js';
import { ProcessCluster, until } from './harness.js';

const root: FsCaller = { uid: 0, gid: 0 };
const rootIno = 1;

describe('metadata service: the file-system namespace on three real members', function () {
  this.timeout(120_000);
  const cluster = new ProcessCluster();
  let client: MetadataClient;

  before(async () => {
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3'], ['--controller-interval-ms', '200']);
    client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
    for (let k = 1; k <= 3; k++) {
      await client.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9300 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
    }
    await client.createVolume({ name: 'fsvol', size: '1G' });
  });

  after(async () => {
    client?.close();
    await cluster.destroy();
  });

  it('creates a tree through the client, with attributes in every answer and errnos on errors', async () => {
    const range = await client.fsAllocateInodes('fsvol', 100);
    const dir = await client.fsMkdir('fsvol', root, rootIno, 'docs', range.start, 0o755);
    assert.deepEqual([dir.attr.type, dir.attr.nlink, dir.parent.nlink], ['dir', 2, 3]);
    const file = await client.fsCreate('fsvol', { uid: 1000, gid: 1000 }, dir.attr.ino, 'a.txt', range.start + 1, 0o644);
    assert.equal(file.attr.uid, 1000);
    const written = await client.fsCommitWrite('fsvol', file.attr.ino, 12_345);
    assert.equal(written.size, 12_345);
    assert.deepEqual(await client.fsLookup('fsvol', dir.attr.ino, 'a.txt'), written);
    const err = await client.fsRmdir('fsvol', root, rootIno, 'docs').then(() => null, (e: unknown) => e);
    assert.equal(posixErrnoOf(err), posixErrnos.ENOTEMPTY);
    await client.fsRename('fsvol', root, dir.attr.ino, 'a.txt', rootIno, 'b.txt');
    const page = await client.fsReaddir('fsvol', rootIno, null, 100);
    assert.deepEqual(page.entries.map((e) => [e.name, e.attr.type]), [['b.txt', 'file'], ['docs', 'dir']]);
    const st = await client.fsStatfs('fsvol');
    assert.deepEqual([st.inodes, st.usedBytes], [3, 12_345]);
  });

  it('serves the same tree from a follower, and keeps every acknowledged create across kill -9 of the leader', async () => {
    const range = await client.fsAllocateInodes('fsvol', 200);
    let next = range.start;
    const dir = await client.fsMkdir('fsvol', root, rootIno, 'many', next++, 0o755);
    const created = await Promise.all(Array.from({ length: 50 }, (_, i) => client.fsCreate('fsvol', root, dir.attr.ino, `f${String(i).padStart(2, '0')}`, next + i, 0o644)));
    next += 50;
    const st = await client.clusterStatus();
    const follower = [...cluster.procs.values()].find((p) => p.id !== st.leaderId)!;
    const local = new MetadataClient({ addresses: [follower.address] });
    try {
      await until(async () => (await local.clusterStatus({ stale: true })).appliedIndex >= st.commitIndex, 'the follower to apply');
      const page = await local.fsReaddir('fsvol', dir.attr.ino, null, 100, { stale: true });
      assert.deepEqual(page.entries.map((e) => e.attr.ino), created.map((c) => c.attr.ino));
    } finally {
      local.close();
    }
    await cluster.kill9(st.leaderId!);
    const more = await client.fsCreate('fsvol', root, dir.attr.ino, 'after-failover', next, 0o644);
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await client.fsReaddir('fsvol', dir.attr.ino, cursor, 16);
      all.push(...page.entries.map((e) => e.name));
      cursor = page.cursor;
    } while (cursor !== null);
    assert.equal(all.length, 51);
    assert.ok(all.includes('after-failover'));
    assert.equal((await client.fsGetattr('fsvol', more.attr.ino)).ino, more.attr.ino);
  });

  it('starts a new volume of a deleted volume\'s name with an empty root (the controller purges the old one)', async () => {
    await client.createVolume({ name: 'gone', size: '1M' });
    const range = await client.fsAllocateInodes('gone', 10);
    await client.fsCreate('gone', root, rootIno, 'x', range.start, 0o644);
    await client.deleteVolume('gone');
    await client.createVolume({ name: 'gone', size: '1M' });
    const page = await client.fsReaddir('gone', rootIno, null, 10);
    assert.deepEqual(page.entries, [], 'a new volume of the same name starts empty');
  });
});
