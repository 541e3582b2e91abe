/**
 * Write-back of new files under directory delegations (vfs/fs/writeback.ts), through real FUSE
 * mounts of a real 3-node cluster (`galleon up`, default non-strict mounts). The daemons run with
 * GALLEON_WRITEBACK_MS=600000, so a closed file is committed only by a recall, an fsync, a sync, a
 * bound or an unmount: every cross-node read below goes through the recall path. Each test fails
 * with the holder's recall handling removed (checked: the other node's access waits out its 20 s
 * recall and fails with the directory still delegated).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, statfs, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNodeTokenFileName } from '../../cli/local/cluster.js';
import { loadTlsDir } from '../../cli/lib/tls.js';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { InternalKeyProvider } from '../../dataplane/client/key-providers.js';
import { VolumeKeyring } from '../../dataplane/client/keyring.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { holdBatchEnv } from '../../vfs/fs/mount-volume.js';
import { runCli, waitFor } from '../cli/helpers.js';
import { describeFuse } from '../support/fuse.js';
import { upClientEnv } from '../support/tls.js';
import { errnoOf, startMountedCluster, waitMounted, type MountedCluster } from './cluster-mounts.js';

interface Status { namespaceWrites: number; pendingCloses: number; writebackFiles: number; writebackBytes: number; readCache: { fetches: number; misses: number } }

describeFuse('write-back with directory delegation on a 3-node cluster (fuse)', function () {
  this.timeout(240_000);
  let c: MountedCluster;
  const saved = process.env.GALLEON_WRITEBACK_MS;

  let holdDir = '';

  before(async function () {
    this.timeout(300_000);
    holdDir = await mkdtemp(join(tmpdir(), 'galleon-wb-hold-'));
    // Inherited by the daemons `galleon up` starts (the hold is off until a test makes its file).
    process.env.GALLEON_WRITEBACK_MS = '600000';
    process.env[holdBatchEnv] = holdDir;
    try {
      c = await startMountedCluster('galleon-wb-');
    } finally {
      if (saved === undefined) delete process.env.GALLEON_WRITEBACK_MS;
      else process.env.GALLEON_WRITEBACK_MS = saved;
      delete process.env[holdBatchEnv];
    }
  });

  after(async function () {
    this.timeout(120_000);
    await c?.teardown();
    if (holdDir !== '') await rm(holdDir, { recursive: true, force: true });
  });

  /** The cluster's block and metadata clients, as a mount's own talk (the node credential, mutual TLS). */
  const clients = async (): Promise<{ api: MetadataClient; blocks: BlockClient; close(): Promise<void> }> => {
    const { GALLEON_TLS_DIR: tlsDir } = upClientEnv(c.dir);
    const tls = tlsDir === '' ? null : await loadTlsDir(tlsDir, 'cli');
    const token = (await readFile(join(c.dir, defaultNodeTokenFileName), 'utf8').catch(() => '')).trim();
    const auth = { tls, ...(token === '' ? {} : { token }) };
    const api = new MetadataClient({ addresses: c.nodes.map((n) => n.bindAddress), ...auth });
    // Reads open blocks as the mounts seal them (the demo volume's class may encrypt).
    const keyring = new VolumeKeyring(api, new InternalKeyProvider(join(c.dir, 'cluster.key')));
    const blocks = new BlockClient({ placement: new MetadataPlacementSource(api), maxAttempts: 20, keyring, ...auth });
    return { api, blocks, close: async () => { await blocks.close(); api.close(); } };
  };

  const readable = (blocks: BlockClient, volumeId: string, a: { inode: number; blockNo: number }): Promise<boolean> =>
    blocks.readBlock(volumeId, a.inode, a.blockNo).then(() => true, (err: unknown) => {
      if ((err as { code?: unknown }).code === 'BLOCK_NOT_FOUND') return false;
      throw err;
    });

  /** Blocks of `volumeId` that read back (the listing also names deleted ones) and belong to no inode of the namespace. */
  const orphanBlocks = async (api: MetadataClient, blocks: BlockClient, volumeId: string): Promise<{ inode: number; blockNo: number }[]> => {
    const out: { inode: number; blockNo: number }[] = [];
    const noInode = new Map<number, boolean>();
    for (const a of await blocks.listVolumeBlocks(volumeId)) {
      if (!noInode.has(a.inode)) {
        noInode.set(a.inode, await api.fsGetattr(volumeId, a.inode).then(() => false, (err: unknown) => (err as { details?: { errno?: unknown } }).details?.errno === 'ENOENT'));
      }
      if (noInode.get(a.inode) === true && await readable(blocks, volumeId, a)) out.push(a);
    }
    return out;
  };

  const status = async (node: number): Promise<Status> => {
    const r = await c.cli(node, ['vfs', 'status', 'demo', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Status;
  };

  it('reads on node 2, right after close returns on node 1, every file node 1 buffered (the recall)', async () => {
    await mkdir(c.path(1, 'demo', 'recall'));
    const bodies = Array.from({ length: 10 }, (_, i) => randomBytes(1000 + i * 4096));
    for (let i = 0; i < bodies.length; i++) await writeFile(c.path(1, 'demo', 'recall', `f${i}`), bodies[i]!);
    const s = await status(1);
    assert.equal(s.writebackFiles, bodies.length, 'closed on node 1, not committed yet: buffered');
    assert.equal(s.writebackBytes, bodies.reduce((n, b) => n + b.length, 0));
    assert.ok((await readFile(c.path(2, 'demo', 'recall', 'f7'))).equals(bodies[7]!), 'node 2 reads the full content');
    for (let i = 0; i < bodies.length; i++) assert.ok((await readFile(c.path(2, 'demo', 'recall', `f${i}`))).equals(bodies[i]!), `f${i} on node 2`);
    assert.equal((await status(1)).writebackFiles, 0, 'the recall committed them all');
    // The holder recreates synchronously for a while after a recall; node 1 still reads its own.
    await writeFile(c.path(1, 'demo', 'recall', 'after'), 'after');
    assert.equal(await readFile(c.path(2, 'demo', 'recall', 'after'), 'utf8'), 'after');
  });

  it('a buffered create changes its directory\'s mtime and ctime for the holder at once; the batch keeps that time', async () => {
    const dir = c.path(1, 'demo', 'dirtimes');
    await mkdir(dir);
    const past = new Date('2020-01-01T00:00:00Z');
    await utimes(dir, past, past);
    await writeFile(join(dir, 'f'), 'x');
    assert.ok((await status(1)).writebackFiles >= 1, 'the file is buffered');
    const seen = await stat(dir, { bigint: true });
    assert.ok(seen.mtimeMs > BigInt(past.getTime()), `the holder sees its directory changed (mtime ${seen.mtimeMs})`);
    assert.ok(seen.ctimeNs >= seen.mtimeNs);
    const sync = await c.cli(1, ['vfs', 'sync', 'demo']);
    assert.equal(sync.code, 0, sync.stderr);
    assert.equal((await stat(dir, { bigint: true })).mtimeNs, seen.mtimeNs, 'committed with the time the holder showed');
    assert.equal((await stat(c.path(2, 'demo', 'dirtimes'), { bigint: true })).mtimeNs, seen.mtimeNs, 'and another node sees the same');
  });

  it('lists on node 2 every file closed on node 1 in a delegated directory, with its size', async () => {
    await mkdir(c.path(1, 'demo', 'listed'));
    const names = Array.from({ length: 40 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    for (const n of names) await writeFile(c.path(1, 'demo', 'listed', n), n.repeat(100));
    assert.equal((await status(1)).writebackFiles, names.length);
    assert.deepEqual((await readdir(c.path(2, 'demo', 'listed'))).sort(), names);
    for (const n of names.slice(0, 5)) assert.equal((await stat(c.path(2, 'demo', 'listed', n))).size, 300, n);
    // The holder's own listing and stats see its buffered files at once, with their sizes.
    await writeFile(c.path(1, 'demo', 'listed', 'late'), 'x'.repeat(5000));
    assert.equal((await stat(c.path(1, 'demo', 'listed', 'late'))).size, 5000);
  });

  it('spends about one Raft command per batch for 100 new files, not two per file', async () => {
    await mkdir(c.path(1, 'demo', 'count'));
    await writeFile(c.path(1, 'demo', 'count', 'warm'), 'x'); // the delegation, the listing and an inode range
    const sync = await c.cli(1, ['vfs', 'sync', 'demo']);
    assert.equal(sync.code, 0, sync.stderr);
    const settled = (): Promise<Status> => waitFor('every close sent', 10_000, async () => {
      const s = await status(1);
      return s.pendingCloses === 0 ? s : null;
    });
    const before = (await settled()).namespaceWrites;
    for (let i = 0; i < 100; i++) await writeFile(c.path(1, 'demo', 'count', `c${i}`), randomBytes(4096));
    assert.equal((await status(1)).writebackFiles, 100);
    assert.equal((await c.cli(1, ['vfs', 'sync', 'demo'])).code, 0);
    const after = await settled();
    const spent = after.namespaceWrites - before;
    assert.equal(after.writebackFiles, 0);
    // One fsCommitBatch, one reservation of space (fsReserve), at most one inode range and one re-delegation after the sync.
    assert.ok(spent <= 4, `${spent} namespace writes for 100 files`);
    assert.equal((await readdir(c.path(3, 'demo', 'count'))).length, 101);
  });

  it('reads no block to create, write 4 KiB and close files of the encrypted volume; sparse and truncated-up new files read back right on node 2', async () => {
    // Every block read of an encrypted volume also asks the other replicas for their heads (the
    // rollback check): a read of a block the file cannot hold yet would cost that per small file.
    const dir = c.path(1, 'demo', 'noreads');
    await mkdir(dir);
    await writeFile(join(dir, 'warm'), 'x'); // the delegation, its listing and an inode range
    const fetched: string[] = [];
    let last = (await status(1)).readCache;
    /** The block reads and cache lookups of node 1's mount since the last step. */
    const step = async (what: string): Promise<void> => {
      const now = (await status(1)).readCache;
      if (now.fetches !== last.fetches || now.misses !== last.misses) fetched.push(`${what}: ${now.fetches - last.fetches} fetches, ${now.misses - last.misses} misses`);
      last = now;
    };
    const bodies = Array.from({ length: 50 }, () => randomBytes(4096));
    for (let i = 0; i < bodies.length; i++) await writeFile(join(dir, `s${i}`), bodies[i]!);
    await step('50 files of 4 KiB');
    // A hole before the data, and bytes in a later block (the volume's blocks are 128 KiB).
    const sparse = Buffer.alloc(1024 * 1024 + 4196);
    sparse.set(bodies[0]!, 1024 * 1024 + 100);
    sparse.write('tail', 200 * 1024);
    const fs = await open(join(dir, 'sparse'), 'w');
    await fs.write(bodies[0]!, 0, 4096, 1024 * 1024 + 100);
    await fs.write(Buffer.from('tail'), 0, 4, 200 * 1024);
    await fs.close();
    await step('a sparse new file');
    // Grown by a truncate first (it commits the buffered file), then written inside the growth.
    const grown = Buffer.alloc(300 * 1024);
    grown.set(bodies[1]!, 250 * 1024);
    const fg = await open(join(dir, 'grown'), 'w');
    await fg.truncate(300 * 1024);
    await fg.write(bodies[1]!, 0, 4096, 250 * 1024);
    await fg.close();
    await step('a new file truncated up, then written');
    assert.equal((await c.cli(1, ['vfs', 'sync', 'demo'])).code, 0);
    await step('vfs sync');
    assert.deepEqual(fetched, [], 'block reads (each with its replica heads) or cache lookups for new files');
    for (let i = 0; i < bodies.length; i += 7) assert.ok((await readFile(c.path(2, 'demo', 'noreads', `s${i}`))).equals(bodies[i]!), `s${i} on node 2`);
    assert.ok((await readFile(c.path(2, 'demo', 'noreads', 'sparse'))).equals(sparse), 'the sparse file on node 2: zeros in its holes');
    assert.ok((await readFile(c.path(2, 'demo', 'noreads', 'grown'))).equals(grown), 'the grown file on node 2: zeros up to its size');
  });

  it('two nodes buffering into one 8 MiB volume together stay within its size, and df stays true', async () => {
    const size = 8 * 1024 * 1024;
    assert.equal((await c.cli(1, ['volume', 'create', '--name', 'wbq', '--size', '8M', '--access-mode', 'ReadWriteMany'])).code, 0);
    for (const n of [1, 2, 3]) await waitMounted(c.path(n, 'wbq'));
    await waitFor('wbq served on nodes 1 and 2', 60_000, async () => (await readdir(c.path(1, 'wbq')).catch(() => null)) !== null && (await readdir(c.path(2, 'wbq')).catch(() => null)) !== null);
    await mkdir(c.path(1, 'wbq', 'one'));
    await mkdir(c.path(2, 'wbq', 'two'));
    /** 1 MiB files closed (buffered: each node holds its directory) until ENOSPC; returns how many were whole. */
    const fill = async (node: number, dir: string): Promise<number> => {
      for (let i = 0; i < 16; i++) {
        const errno = await errnoOf(writeFile(c.path(node, 'wbq', dir, `f${i}`), randomBytes(1024 * 1024)));
        if (errno === 'ENOSPC') return i;
        assert.equal(errno, 'no error', `node ${node} ${dir}/f${i}`);
      }
      return 16;
    };
    const [one, two] = await Promise.all([fill(1, 'one'), fill(2, 'two')]);
    // Which node gets how much depends on who reserves first (4 MiB at a time); together they fill it, never more.
    assert.ok(one + two >= 4, `the nodes wrote ${one} and ${two} whole files`);
    for (const n of [1, 2]) assert.equal((await c.cli(n, ['vfs', 'sync', 'wbq'])).code, 0);
    let sum = 0;
    for (const dir of ['one', 'two']) for (const name of await readdir(c.path(3, 'wbq', dir))) sum += (await stat(c.path(3, 'wbq', dir, name))).size;
    assert.ok(sum <= size, `node 3 sees ${sum} bytes of files in an ${size}-byte volume`);
    assert.ok(sum >= (one + two) * 1024 * 1024);
    const s = await statfs(c.path(3, 'wbq'));
    assert.equal(s.blocks * s.bsize, size);
    const used = (s.blocks - s.bfree) * s.bsize;
    assert.ok(used <= size && used >= sum, `df used ${used} for ${sum} bytes of files`);
  });

  it('keeps every fsynced file of a holder killed with -9, and leaves no half-created entry', async () => {
    const node = c.nodes[2];
    if (node === undefined) throw new Error('no node 3');
    await mkdir(c.path(3, 'demo', 'crash'));
    const synced = new Map<string, Buffer>();
    const closed = new Map<string, Buffer>();
    for (let i = 0; i < 6; i++) {
      const body = randomBytes(10_000 + i);
      const fh = await open(c.path(3, 'demo', 'crash', `s${i}`), 'w');
      await fh.write(body);
      await fh.sync();
      await fh.close();
      synced.set(`s${i}`, body);
    }
    for (let i = 0; i < 6; i++) {
      const body = randomBytes(20_000 + i);
      await writeFile(c.path(3, 'demo', 'crash', `c${i}`), body);
      closed.set(`c${i}`, body);
    }
    assert.ok((await status(3)).writebackFiles >= 1, 'closed files buffered on node 3 at the kill');
    // Node 3's flusher stops between its block writes and its batch (the test-only switch); it dies there.
    const cl = await clients();
    const vol = await cl.api.getVolume('demo');
    await writeFile(join(holdDir, node.id), '');
    const held = await open(c.path(3, 'demo', 'crash', 'held'), 'w');
    await held.write(randomBytes(50_000));
    const syncing = held.sync().catch(() => undefined); // never answered: the holder dies holding its batch
    await waitFor('node 3 holding its batch after the block writes', 30_000, async () => (await stat(join(holdDir, `${node.id}.reached`)).catch(() => null)) !== null);
    const orphans = await orphanBlocks(cl.api, cl.blocks, vol.id);
    assert.ok(new Set(orphans.map((a) => a.inode)).size >= 2, `the held batch's files have blocks and no inode (${orphans.length} blocks)`);
    const pid = Number((await readFile(`${node.storagePath}/galleon.pid`, 'utf8')).trim());
    process.kill(pid, 'SIGKILL');
    await waitFor('node 3 gone', 10_000, () => { try { process.kill(pid, 0); return false; } catch { return true; } });
    // Node 2's listing recalls; the dead holder never answers, its lease lapses (15 s) and the
    // delegation with it; then the listing shows what was committed.
    const names = (await readdir(c.path(2, 'demo', 'crash'))).sort();
    for (const [name, body] of synced) assert.ok((await readFile(c.path(2, 'demo', 'crash', name))).equals(body), `fsynced ${name} kept`);
    for (const name of names) {
      const want = synced.get(name) ?? closed.get(name);
      assert.ok(want !== undefined, `unexpected entry ${name}`);
      assert.ok((await readFile(c.path(2, 'demo', 'crash', name))).equals(want), `${name}: whole or absent, never half-created`);
    }
    const lost = [...closed.keys()].filter((n) => !names.includes(n));
    assert.ok(lost.length >= 1, 'closed but unsynced files went with the holder (as a local disk after a crash)');
    // Its lease ended holding the delegation: the mounts of nodes 1 and 2 reclaim the blocks of its lost batch.
    try {
      await waitFor('the dead holder\'s orphan blocks freed on the data nodes', 90_000, async () => {
        for (const a of orphans) if (await readable(cl.blocks, vol.id, a)) return false;
        return true;
      });
    } finally {
      await syncing;
      await held.close().catch(() => undefined);
      await unlink(join(holdDir, node.id)).catch(() => undefined);
      await cl.close();
    }
  });

  it('a daemon started with GALLEON_WRITEBACK=0 creates synchronously (the switch the bench uses)', async () => {
    const node = c.nodes[2];
    if (node === undefined) throw new Error('no node 3');
    const started = await runCli(['daemon', 'start', '-d', '--node-id', node.id, '--storage-path', node.storagePath, '--bind-address', node.bindAddress,
      '--ipc-address', node.ipcAddress, '--data-address', node.dataAddress, '--target-voters', '3', '--mount-point', node.mountPoint,
      '--auth', '--node-token-file', `${c.dir}/node-token`, '--daemon-address', node.ipcAddress], { ...upClientEnv(c.dir), GALLEON_WRITEBACK: '0', GALLEON_WRITEBACK_MS: '600000' });
    assert.equal(started.code, 0, started.stderr);
    await waitMounted(c.path(3, 'demo'));
    await waitFor('node 3 serves demo', 60_000, async () => { try { await readdir(c.path(3, 'demo')); return true; } catch { return false; } });
    await mkdir(c.path(3, 'demo', 'sync-only'));
    for (let i = 0; i < 5; i++) await writeFile(c.path(3, 'demo', 'sync-only', `f${i}`), `body ${i}`);
    assert.equal((await status(3)).writebackFiles, 0, 'nothing buffered');
    assert.equal(await readFile(c.path(1, 'demo', 'sync-only', 'f4'), 'utf8'), 'body 4');
  });

  it('galleon down commits what the mounts buffered before it stops the nodes; up again reads it all', async function () {
    this.timeout(360_000);
    await mkdir(c.path(1, 'demo', 'down'));
    const bodies = Array.from({ length: 8 }, (_, i) => randomBytes(3000 + i));
    for (let i = 0; i < bodies.length; i++) await writeFile(c.path(1, 'demo', 'down', `d${i}`), bodies[i]!);
    assert.equal((await status(1)).writebackFiles, bodies.length, 'buffered at the down');
    const down = await runCli(['down', '--dir', c.dir], {}, 120_000);
    assert.equal(down.code, 0, down.stderr);
    const up = await runCli(['up', '--dir', c.dir, '--base-port', '0'], {}, 240_000);
    assert.equal(up.code, 0, up.stderr);
    await waitMounted(c.path(2, 'demo'));
    const read = (i: number): Promise<Buffer | null> => readFile(c.path(2, 'demo', 'down', `d${i}`)).catch(() => null);
    await waitFor('node 2 serves demo again', 60_000, async () => (await readdir(c.path(2, 'demo')).catch(() => null)) !== null);
    for (let i = 0; i < bodies.length; i++) assert.ok((await read(i))?.equals(bodies[i]!) === true, `d${i} kept through down/up`);
  });
});
