/**
 * A snapshot of a mounted volume holds what every node's mounts had written (issue #11; the
 * flush request of metadata/state/logic/ns-flush.ts, answered by each node's mount manager). A
 * real 3-node cluster (`galleon up`) whose daemons commit write-back only on a recall, a sync or a
 * bound (GALLEON_WRITEBACK_MS=600000): node 2 closes new files without fsync (buffered under its
 * directory delegation), node 3 holds a file open with unflushed bytes. `snapshot create` run on
 * node 1 — whose own mount holds nothing — must still see both. Before the cluster-wide flush
 * (only the mount of the node running the command was synced) the clone had neither: checked by
 * running this file on that code, and shown here by `--no-flush`, which leaves them out.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Snapshot, Volume } from '../../proto/metadata-types.js';
import { waitFor } from '../cli/helpers.js';
import { describeFuse } from '../support/fuse.js';
import { startMountedCluster, waitMounted, type MountedCluster } from './cluster-mounts.js';

interface Status { writebackFiles: number; pendingWriteBytes: number; pendingCloses: number }
interface FlushReport { asked: number; flushed: number; lapsed: string[]; unanswered: string[] }

/** A process that writes `from`'s bytes into `path` at `offset` and keeps it open, unflushed, until killed. */
async function holdOpen(path: string, from: string, offset: number): Promise<ChildProcess> {
  const code = 'import os,sys\nfd=os.open(sys.argv[1], os.O_RDWR)\nos.pwrite(fd, open(sys.argv[2],"rb").read(), int(sys.argv[3]))\nprint("ready", flush=True)\nsys.stdin.read()';
  const child = spawn('python3', ['-c', code, path, from, String(offset)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = await once(child.stdout, 'data') as [Buffer];
  assert.equal(line.toString().trim(), 'ready', 'the holder wrote');
  return child;
}

describeFuse('snapshot create flushes every node\'s mounts first (fuse)', function () {
  this.timeout(300_000);
  let c: MountedCluster;
  let holder: ChildProcess | null = null;
  const saved = process.env.GALLEON_WRITEBACK_MS;

  before(async function () {
    this.timeout(300_000);
    process.env.GALLEON_WRITEBACK_MS = '600000'; // inherited by the daemons `galleon up` starts
    try {
      c = await startMountedCluster('galleon-snapflush-');
    } finally {
      if (saved === undefined) delete process.env.GALLEON_WRITEBACK_MS;
      else process.env.GALLEON_WRITEBACK_MS = saved;
    }
  });

  after(async function () {
    this.timeout(120_000);
    if (holder?.pid !== undefined && holder.exitCode === null) process.kill(holder.pid, 'SIGKILL');
    await c?.teardown();
  });

  const json = async <T>(node: number, args: string[]): Promise<T> => {
    const r = await c.cli(node, [...args, '--json']);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  it('a clone of a snapshot taken on node 1 has node 2\'s closed-unsynced files and node 3\'s open file\'s unflushed bytes', async () => {
    // Node 3: a committed file, opened again, bytes written into it and not flushed, held open.
    const first = Buffer.from('committed head\n');
    const tail = randomBytes(300_000);
    await writeFile(c.path(3, 'demo', 'open.bin'), first);
    assert.equal((await c.cli(3, ['vfs', 'sync', 'demo'])).code, 0);
    await waitFor('node 3 settled', 10_000, async () => {
      const s = await json<Status>(3, ['vfs', 'status', 'demo']);
      return s.pendingCloses === 0 && s.pendingWriteBytes === 0 && s.writebackFiles === 0;
    });
    // Held by a process of its own: a close of any copy of the descriptor makes the kernel send FLUSH,
    // and the copies each CLI spawn of this process makes are closed at its exec (O_CLOEXEC).
    await writeFile(join(c.dir, 'tail.bin'), tail);
    holder = await holdOpen(c.path(3, 'demo', 'open.bin'), join(c.dir, 'tail.bin'), first.length);
    assert.ok((await json<Status>(3, ['vfs', 'status', 'demo'])).pendingWriteBytes >= tail.length, 'node 3 holds the bytes unflushed');
    // Node 2: new files closed without fsync, in a directory node 2 holds the delegation of.
    await mkdir(c.path(2, 'demo', 'wb'));
    const bodies = Array.from({ length: 5 }, (_, i) => randomBytes(2_000 + i * 10_000));
    for (let i = 0; i < bodies.length; i++) {
      const fh = await open(c.path(2, 'demo', 'wb', `f${i}`), 'w');
      await fh.write(bodies[i]!);
      await fh.close();
    }
    assert.equal((await json<Status>(2, ['vfs', 'status', 'demo'])).writebackFiles, bodies.length, 'closed on node 2, not committed');

    // Without the flush the cut holds only what the mounts had committed: not node 2's files.
    const unflushed = await json<Snapshot>(1, ['snapshot', 'create', 'demo', '--name', 'raw-cut', '--no-flush']);
    assert.equal(unflushed.fileTree?.inodes, 3, 'root, open.bin, wb/ — node 2\'s buffered files are not in a cut taken unflushed');
    assert.equal((await json<Status>(2, ['vfs', 'status', 'demo'])).writebackFiles, bodies.length, '--no-flush asked nobody to flush');

    const snap = await json<Snapshot & { flush: FlushReport }>(1, ['snapshot', 'create', 'demo', '--name', 'flushed']);
    assert.deepEqual([snap.flush.asked, snap.flush.flushed, snap.flush.lapsed, snap.flush.unanswered], [3, 3, [], []], 'all three read-write mounts answered');
    assert.equal(snap.fileTree?.inodes, 3 + bodies.length);
    assert.equal((await json<Status>(2, ['vfs', 'status', 'demo'])).writebackFiles, 0, 'node 2 committed its buffered files for the snapshot');

    await json<Volume>(1, ['volume', 'clone', 'flushed', '--name', 'demo-flushed']);
    await waitFor('the clone\'s tree copied', 120_000, async () => (await json<Volume>(1, ['volume', 'get', 'demo-flushed'])).treeState === undefined);
    await waitMounted(c.path(1, 'demo-flushed'));
    const got = await readFile(c.path(1, 'demo-flushed', 'open.bin'));
    assert.equal(got.length, first.length + tail.length, 'the open file\'s unflushed bytes are in the snapshot');
    assert.ok(got.equals(Buffer.concat([first, tail])));
    assert.deepEqual((await readdir(c.path(1, 'demo-flushed', 'wb'))).sort(), bodies.map((_, i) => `f${i}`));
    for (let i = 0; i < bodies.length; i++) assert.ok((await readFile(c.path(1, 'demo-flushed', 'wb', `f${i}`))).equals(bodies[i]!), `wb/f${i} whole in the clone`);
  });

  it('a mount that does not answer in time fails the snapshot (one line, no snapshot) unless --on-error continue', async () => {
    const before = (await json<Snapshot[]>(1, ['snapshot', 'list', 'demo'])).length;
    // 1 ms: no mount can answer; the request is the same as with a dead or stuck node that still holds its lease.
    const r = await c.cli(1, ['snapshot', 'create', 'demo', '--name', 'too-fast', '--flush-timeout-ms', '1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^Error: volume demo not snapshotted: \d mount session\(s\) did not answer within 1 ms — /);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal((await json<Snapshot[]>(1, ['snapshot', 'list', 'demo'])).length, before, 'no snapshot made');
    const snap = await json<Snapshot & { flush: FlushReport }>(1, ['snapshot', 'create', 'demo', '--name', 'anyway', '--flush-timeout-ms', '1', '--on-error', 'continue']);
    assert.equal(snap.flush.asked, 3);
    assert.ok(snap.flush.unanswered.length > 0, 'the silent ones are named');
    assert.equal(snap.flush.flushed + snap.flush.unanswered.length, 3);
  });
});
