/**
 * Backups across daemon deaths on a real 3-node `galleon up` (issue #11, gaps of the closing note):
 * - `backup restore` interrupted by kill -9 of its daemon is run again when that daemon starts:
 *   the new volume carries `galleon.io/restoring` from its creation until the restore is done (a
 *   half-restored volume is never presented as complete), and the result is byte-identical;
 * - a `backup-bk-…` snapshot left by a run that will never delete it (a daemon killed between
 *   taking it and recording the run) is deleted when a daemon starts; other snapshots stay, and
 *   users may not take such names.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterStatus, Snapshot, Volume } from '../../proto/metadata-types.js';
import type { UpResult } from '../../cli/local/cluster.js';
import { isGalleonError } from '../../proto/errors.js';
import type { MetadataClient } from '../../metadata/service/client.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import type { BackupResult } from '../../dataplane/backup/engine.js';
import type { JobView } from '../../dataplane/backup/service.js';
import { restoringLabel } from '../../dataplane/backup/logic/manifest.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';
import { upPlainCluster } from './plain-cluster.js';

const blockSize = 4096;

describe('galleon backup restore resumes after kill -9; backup snapshots left behind are cleaned at start (integration)', function () {
  this.timeout(180_000);
  let root = '';
  let clusterDir = '';
  let up: UpResult;
  let env: Record<string, string> = {};
  let meta: MetadataClient | null = null;
  let blocks: BlockClient | null = null;
  const json = <T>(args: string[], e = env): Promise<T> => cliJson<T>(args, e);
  const nodeAt = (i: number): UpResult['cluster']['nodes'][number] => {
    const n = up.cluster.nodes[i];
    assert.ok(n !== undefined);
    return n;
  };
  /** kill -9 of a node's daemon, then `galleon up` starts it again (with `upEnv`); waits for three data nodes up. */
  const killAndRestart = async (i: number, upEnv: Record<string, string> = {}): Promise<void> => {
    const node = nodeAt(i);
    process.kill(Number((await readFile(join(node.storagePath, 'galleon.pid'), 'utf8')).trim()), 'SIGKILL');
    const again = await runCli(['up', '--no-first-volume', '--dir', clusterDir, '--json'], upEnv, 120_000);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((JSON.parse(again.stdout) as UpResult).restarted, [node.id]);
    await waitFor('three data nodes up again', 60_000, async () => (await json<ClusterStatus>(['cluster', 'status'])).dataNodes.filter((n) => n.state === 'up').length === 3);
  };

  before(async function () {
    this.timeout(240_000);
    root = await makeTempDir('galleon-backup-resume-');
    clusterDir = join(root, 'cluster');
    // The test's own clients write and read blocks directly: no TLS, no tokens (each has its own suite).
    ({ up, env, meta, blocks } = await upPlainCluster(clusterDir, `backup-resume-test-${process.pid}`));
    await mkdir(join(root, 'target-dir'));
    await json(['backup-target', 'add', 'local', '--dir', join(root, 'target-dir')]);
  });

  after(async function () {
    this.timeout(90_000);
    await blocks?.close();
    meta?.close();
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 60_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    if (root !== '') await killClusterDir(root);
  });

  const readOrNull = async (volumeId: string, blockNo: number): Promise<Buffer | null> => {
    try {
      return (await blocks!.readBlock(volumeId, 0, blockNo)).data;
    } catch (err) {
      if (isGalleonError(err, 'BLOCK_NOT_FOUND')) return null;
      throw err;
    }
  };

  it('kill -9 mid-restore: the half-restored volume is marked, the restart restores it again, byte-identical', async function () {
    this.timeout(480_000);
    const count = 5000;
    const src = await json<Volume>(['volume', 'create', '--name', 'src', '--size', `${Math.ceil((count * blockSize) / (1 << 20)) + 1}M`, '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
    const want = Array.from({ length: count }, () => randomBytes(blockSize));
    await blocks!.writeBlocks(src.id, want.map((data, blockNo) => ({ inode: 0, blockNo, data })), 'replicated');
    const b = await json<BackupResult>(['backup', 'create', 'src', '--target', 'local', '--strategy', 'full']);
    assert.equal(b.blocks, count);

    // The restore runs on node3; it is killed once blocks are being written into the new volume.
    const env3 = { ...env, GALLEON_ADDRESS: nodeAt(2).ipcAddress };
    const job = await json<JobView>(['backup', 'restore', b.id, '--name', 'src-back', '--detach'], env3);
    assert.equal(job.kind, 'restore');
    const partial = await waitFor('the restore writing blocks', 120_000, async () => {
      const v = await meta!.getVolume('src-back').catch(() => null);
      return v !== null && (await readOrNull(v.id, 0)) !== null ? v : undefined;
    });
    assert.ok(partial.labels[restoringLabel]?.startsWith('rs-'), 'marked from its creation');
    const records = await readdir(join(root, 'target-dir', 'restoring'));
    assert.equal(records.length, 1, 'the restore keeps its record on the target while it runs');
    await killAndRestart(2);
    // Whatever moment this lands in (the old partial volume, or the new one being written), it is marked.
    const now = await meta!.getVolume('src-back').catch(() => null);
    if (now !== null && now.id === partial.id) assert.equal(now.labels[restoringLabel], partial.labels[restoringLabel]);

    const done = await waitFor('the restore run again and finished', 240_000, async () => {
      const v = await meta!.getVolume('src-back').catch(() => null);
      return v !== null && v.labels[restoringLabel] === undefined ? v : undefined;
    });
    assert.notEqual(done.id, partial.id, 'the partly written volume was replaced');
    await assert.rejects(meta!.getVolume(partial.id), 'the partly written volume is deleted');
    assert.deepEqual(await readdir(join(root, 'target-dir', 'restoring')), [], 'no record left');
    const got = await blocks!.readBlocks(done.id, want.map((_, blockNo) => ({ inode: 0, blockNo })));
    for (let i = 0; i < count; i += 1) assert.ok(got[i]?.data.equals(want[i]!), `block ${i}`);
  });

  it('deletes at start a backup-bk-… snapshot no run will use; keeps the others; refuses such names from users', async function () {
    this.timeout(300_000);
    const vol = await json<Volume>(['volume', 'create', '--name', 'orph', '--size', '64K', '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
    await blocks!.writeBlocks(vol.id, [{ inode: 0, blockNo: 1, data: randomBytes(blockSize) }], 'replicated');
    // What a daemon killed between taking a backup's snapshot and recording the run leaves behind.
    const orphan = await meta!.createSnapshot(vol.id, 'backup-bk-00000000deadbeef');
    const kept = await json<Snapshot>(['snapshot', 'create', 'orph', '--name', 'orph-user']);
    const refused = await runCli(['snapshot', 'create', 'orph', '--name', 'backup-bk-00000000cafebabe'], env);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^Error: snapshot name backup-bk-00000000cafebabe is reserved for the snapshots backup runs take — choose another --name/);
    assert.equal(refused.stderr.trim().split('\n').length, 1);
    assert.deepEqual((await json<Snapshot[]>(['snapshot', 'list', 'orph'])).map((s) => s.name).sort(), ['backup-bk-00000000deadbeef', 'orph-user'], 'nothing cleans it while no daemon starts');

    await killAndRestart(1, { GALLEON_BACKUP_ORPHAN_GRACE_MS: '0' });
    await waitFor('the left-behind snapshot deleted at start', 120_000, async () => !(await json<Snapshot[]>(['snapshot', 'list', 'orph'])).some((s) => s.id === orphan.id));
    assert.deepEqual((await json<Snapshot[]>(['snapshot', 'list', 'orph'])).map((s) => s.id), [kept.id], 'a user\'s snapshot stays');
  });
});
