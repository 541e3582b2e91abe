/**
 * The write-back (vfs/fs/writeback.ts) against a real metadata member and a real data node, no
 * FUSE: the paths a mount meets only when something goes wrong between its block writes and its
 * batch — a batch that landed but whose reply was lost (sent again: EEXIST), and a batch refused
 * because the session's delegation ended (its files are lost and the blocks it wrote are freed).
 */
import { strict as assert } from 'node:assert';
import { pino } from 'pino';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { StaticPlacementSource } from '../../dataplane/placement.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { GalleonError } from '../../proto/errors.js';
import type { FsAttr, FsBlocksToFree, FsCaller, Volume } from '../../proto/metadata-types.js';
import { VolumeData } from '../../vfs/data/index.js';
import { BlockReaper } from '../../vfs/fs/block-reaper.js';
import { maxWritebackBytes, WriteBack, type PendingFile, type WritebackApi } from '../../vfs/fs/writeback.js';
import { readFromNode, TestCluster } from '../dataplane/cluster.js';
import { pattern } from '../dataplane/helpers.js';
import { ProcessCluster, until } from '../metadata/service/harness.js';

const root: FsCaller = { uid: 0, gid: 0 };
const rootIno = 1;
const blockSizeBytes = 4096;

interface Harness {
  wb: WriteBack;
  adopted: FsAttr[];
  lost: PendingFile[];
  lease: string;
  dir: number;
}

describe('write-back against a real metadata member and data node: lost replies, lost delegations, reservations', function () {
  this.timeout(120_000);
  const meta = new ProcessCluster();
  const data = new TestCluster();
  const log = pino({ level: 'silent' });
  let api: MetadataClient;
  let blocks: BlockClient;
  let vol: Volume;
  let small: Volume;
  const volumes: VolumeData[] = [];
  const writebacks: WriteBack[] = [];

  before(async () => {
    await meta.init();
    await meta.bootstrap(['m1'], ['--controller-interval-ms', '200']);
    api = new MetadataClient({ addresses: meta.addresses(), callDeadlineMs: 20_000 });
    for (let k = 1; k <= 3; k++) await api.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9500 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
    vol = await api.createVolume({ name: 'wbi', size: '1G', accessMode: 'ReadWriteMany' });
    small = await api.createVolume({ name: 'wbsmall', size: '8M', accessMode: 'ReadWriteMany' });
    await data.start('n1', 'z1');
    const source = new StaticPlacementSource();
    for (const v of [vol, small]) {
      const p = data.placement(v.id, [{ replicas: ['n1'], primary: 'n1', epoch: 1 }]);
      await data.install(p);
      source.set(p);
    }
    blocks = new BlockClient({ placement: source, maxAttempts: 3, retryBaseDelayMs: 10 });
  });

  after(async () => {
    for (const w of writebacks) await w.close().catch(() => undefined);
    for (const v of volumes) v.shutdown();
    api?.close();
    await blocks?.close();
    await data.stopAll();
    await meta.destroy();
  });

  /** A write-back of a new directory under a fresh mount lease; `wrap` may put faults around the real API. */
  const start = async (dirName: string, wrap: (a: WritebackApi) => WritebackApi = (a) => a, v: Volume = vol, leaseMs = 15_000): Promise<Harness> => {
    const lease = await api.acquireLease('mount', v.id, `node-${dirName}`, leaseMs, 'rw');
    const range = await api.fsAllocateInodes(v.id, 100, lease.id);
    const dir = (await api.fsMkdir(v.id, root, rootIno, dirName, range.start, 0o755)).attr.ino;
    let next = range.start + 1;
    const vd = new VolumeData({ client: blocks, volume: { id: v.id, blockSizeBytes, writeConcern: 'durable' }, log });
    volumes.push(vd);
    const adopted: FsAttr[] = [];
    const lost: PendingFile[] = [];
    const wb = new WriteBack({
      api: wrap(api), volumeId: v.id, data: vd, session: () => lease.id, nextIno: () => Promise.resolve(next++), giveBackIno: () => undefined, log, volumeBytes: v.sizeBytes,
      hooks: {
        handlesOf: () => 0,
        adopt: (p, attr) => { adopted.push(attr); vd.discard(p.file); return Promise.resolve(); },
        lost: (p) => { lost.push(p); },
      },
      writebackMs: 600_000,
    });
    if (leaseMs === 15_000) writebacks.push(wb);
    return { wb, adopted, lost, lease: lease.id, dir };
  };

  const dirAttr = (dir: number, v: Volume = vol): Promise<FsAttr> => api.fsGetattr(v.id, dir);

  /** Buffers `n` new files of `bytes` each in the held directory; returns their contents by name. */
  const buffer = async (h: Harness, n: number, bytes: number, prefix = 'f'): Promise<Map<string, Buffer>> => {
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < n; i++) {
      const attr = await h.wb.create(h.dir, '/d', await dirAttr(h.dir), `${prefix}${i}`, { uid: 1000, gid: 1000 }, 0o644, true);
      assert.ok(attr !== null, 'the create is buffered (the directory is delegated to us)');
      const file = await h.wb.fileOf(attr.ino);
      assert.ok(file !== null);
      const body = pattern(i + 1, bytes);
      await file.write(0, body);
      bodies.set(`${prefix}${i}`, body);
    }
    assert.equal(h.wb.pendingFiles, n);
    return bodies;
  };

  it('takes a batch that landed on an earlier try (its reply lost) as committed when the next try gets EEXIST', async () => {
    let dropReplies = 1;
    const h = await start('landed', (a) => {
      // The first batch is applied by the namespace but its reply never reaches the mount.
      const wrapped = Object.create(a) as WritebackApi;
      wrapped.fsCommitBatch = async (...args) => {
        const r = await a.fsCommitBatch(...args);
        if (dropReplies-- > 0) throw new GalleonError('UNAVAILABLE', 'the reply was lost (test)');
        return r;
      };
      return wrapped;
    });
    const bodies = await buffer(h, 3, 6000);
    await assert.rejects(h.wb.flushAll(false), /the reply was lost/);
    assert.equal(h.wb.pendingFiles, 3, 'the mount does not know the batch landed: its files stay buffered');
    await h.wb.flushAll(false);
    assert.equal(h.wb.pendingFiles, 0, 'the second try found every file under its own inode');
    assert.equal(h.lost.length, 0);
    assert.deepEqual(h.adopted.map((a) => a.size).sort(), [6000, 6000, 6000]);
    const listed = await api.fsReaddir(vol.id, h.dir, null, 10, { session: h.lease });
    assert.deepEqual(listed.entries.map((e) => [e.name, e.attr.size]).sort(), [...bodies.keys()].map((n) => [n, 6000]));
    await api.releaseLease(h.lease);
  });

  it('drops the files of a batch refused because the delegation ended, and frees the blocks its flush wrote', async () => {
    const h = await start('lost');
    const bodies = await buffer(h, 2, 3 * blockSizeBytes + 100);
    const inos = h.wb.pendingFiles;
    assert.equal(inos, 2);
    // The session ends under the mount (its lease lapsed, or here: released): the delegation goes with it.
    await api.releaseLease(h.lease);
    await h.wb.flushAll(false); // writes the blocks, then the batch is refused (LEASE_NOT_FOUND)
    assert.equal(h.lost.length, 2, 'both files reported lost');
    assert.equal(h.wb.pendingFiles, 0);
    assert.equal(h.adopted.length, 0);
    await assert.rejects(api.fsLookup(vol.id, h.dir, 'f0'), (e: unknown) => e instanceof GalleonError && e.details.errno === 'ENOENT');
    // The blocks the refused flush wrote leave the data node (the mount frees what it knows it wrote).
    const address = data.node('n1').address;
    for (const p of h.lost) {
      const size = bodies.get(p.name)?.length ?? 0;
      for (let b = 0; b < Math.ceil(size / blockSizeBytes); b++) {
        await until(async () => (await readFromNode(address, vol.id, p.ino, b)).status === 404, `block ${b} of lost inode ${p.ino} freed`);
      }
    }
  });

  it('runs the flusher at a release once the buffered files\' bytes pass maxWritebackBytes (a running sum of their claims)', async () => {
    const h = await start('bound');
    const each = 4 * 1024 * 1024;
    const n = Math.floor(maxWritebackBytes / each) + 1;
    for (let i = 0; i < n; i++) {
      const attr = await h.wb.create(h.dir, '/bound', await dirAttr(h.dir), `b${i}`, { uid: 1000, gid: 1000 }, 0o644, true);
      assert.ok(attr !== null);
      const file = await h.wb.fileOf(attr.ino);
      assert.ok(file !== null);
      await h.wb.grow(attr.ino, each); // as GalleonFs.write does before a write that grows a buffered file
      await file.write(0, pattern(i, each));
    }
    assert.equal(h.wb.pendingFiles, n);
    const batches = h.wb.batches;
    h.wb.released();
    await until(() => Promise.resolve(h.wb.pendingFiles === 0), `the ${n} files (${n * each} bytes) committed by the bound, not by the 600 s timer`);
    assert.equal(h.wb.batches, batches + 1);
    await api.releaseLease(h.lease);
  });

  it('two holders buffering into an 8 MiB volume together stay within its size: reservations, ENOSPC, statfs', async () => {
    const holders = [await start('a', undefined, small), await start('b', undefined, small)];
    const chunk = 256 * 1024;
    /** Buffers 1 MiB files in `h` until ENOSPC; returns the bytes it was allowed. */
    const fill = async (h: Harness, tag: string): Promise<number> => {
      let written = 0;
      for (let i = 0; ; i++) {
        const attr = await h.wb.create(h.dir, `/${tag}`, await dirAttr(h.dir, small), `${tag}${i}`, { uid: 1000, gid: 1000 }, 0o644, true);
        assert.ok(attr !== null);
        const file = await h.wb.fileOf(attr.ino);
        assert.ok(file !== null);
        for (let at = 0; at < 1024 * 1024; at += chunk) {
          try {
            await h.wb.grow(attr.ino, at + chunk);
          } catch (err) {
            assert.equal((err as { errno?: unknown; code?: unknown }).code, 'ENOSPC', String(err));
            return written;
          }
          await file.write(at, pattern(i, chunk));
          written += chunk;
        }
      }
    };
    const [wa = 0, wb = 0] = await Promise.all(holders.map((h, k) => fill(h, k === 0 ? 'a' : 'b')));
    assert.ok(wa > 0 && wb > 0, `both buffered something (${wa}, ${wb})`);
    assert.ok(wa + wb <= small.sizeBytes, `${wa} + ${wb} buffered bytes fit in ${small.sizeBytes}`);
    const during = await api.fsStatfs(small.id);
    assert.ok(during.usedBytes <= small.sizeBytes && during.usedBytes >= wa + wb, `statfs counts the reservations (${during.usedBytes})`);
    for (const h of holders) await h.wb.flushAll(false);
    const after = await api.fsStatfs(small.id);
    assert.equal(after.usedBytes, wa + wb, 'committed sizes, reservations given back with the batch');
    for (const h of holders) await api.releaseLease(h.lease);
  });

  it('reclaims the blocks of a holder that died between its block writes and its batch, once its lease ends', async () => {
    let reached = (): void => undefined;
    const atCommit = new Promise<void>((res) => { reached = res; });
    let unblock = (_: Error): void => undefined;
    let batches = 0;
    const h = await start('dead', (a) => {
      const wrapped = Object.create(a) as WritebackApi;
      // The first batch commits; the second never reaches the namespace (the holder "dies" there).
      wrapped.fsCommitBatch = (...args) => {
        if (batches++ === 0) return a.fsCommitBatch(...args);
        reached();
        return new Promise((_res, rej) => { unblock = rej; });
      };
      return wrapped;
    }, vol, 3_000);
    const kept = await buffer(h, 1, 2 * blockSizeBytes, 'kept');
    await h.wb.flushAll(false);
    assert.equal(h.adopted.length, 1);
    const orphans = await buffer(h, 2, 3 * blockSizeBytes + 100, 'orphan');
    const inos = new Map([...orphans.keys()].map((name) => [name, h.wb.lookup(h.dir, name)?.ino ?? -1]));
    const flushing = h.wb.flushAll(false).catch(() => undefined);
    await atCommit;
    const address = data.node('n1').address;
    for (const ino of inos.values()) assert.equal((await readFromNode(address, vol.id, ino, 0)).status, 200, `orphan inode ${ino} has blocks`);
    // Never renewed: the lease lapses, the controller ends it, the namespace queues the reclaim.
    const covers = (e: FsBlocksToFree): boolean => e.inoEnd !== undefined && e.ino <= Math.min(...inos.values()) && e.inoEnd > Math.max(...inos.values());
    const entry = await until(async () => (await api.fsListBlocksToFree(vol.id, 100)).find(covers), 'a reclaim entry of the dead session range queued', 30_000);
    // Another mount's reaper frees what no inode owns, and leaves the committed file alone.
    const reaper = new BlockReaper({
      api, client: blocks, volume: { id: vol.id, sizeBytes: vol.sizeBytes, blockSizeBytes, writeConcern: 'durable' }, knownSize: () => undefined, isOpenHere: () => false, log,
    });
    try {
      reaper.kick();
      for (const [name, ino] of inos) {
        for (let b = 0; b < Math.ceil((orphans.get(name)?.length ?? 0) / blockSizeBytes); b++) {
          await until(async () => (await readFromNode(address, vol.id, ino, b)).status === 404 ? true : (reaper.kick(), false), `block ${b} of orphan ${name} freed`, 30_000);
        }
      }
      await until(async () => !(await api.fsListBlocksToFree(vol.id, 100)).some((e) => e.seq === entry.seq), 'the reclaim entry acked', 30_000);
      const keptIno = h.adopted[0]?.ino ?? -1;
      for (let b = 0; b < Math.ceil((kept.get('kept0')?.length ?? 0) / blockSizeBytes); b++) {
        assert.equal((await readFromNode(address, vol.id, keptIno, b)).status, 200, `block ${b} of the committed file kept`);
      }
    } finally {
      await reaper.stop();
      unblock(new Error('the test ends'));
      await flushing;
    }
  });
});
