/**
 * End to end through the real binary on `galleon up` (three daemons): snapshot create / list /
 * get / delete (--dry-run, refusal while cloned), volume clone and volume restore, reads at a
 * snapshot with `read-block --snapshot`, pre/post hooks with onError fail|continue, and the
 * one-line errors of bad input (nothing changed); the progress of the freeing after a snapshot
 * delete and a restore (`--wait --json` figures, `operation get` / `volume get` moving to done).
 */
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterStatus, Snapshot, Volume } from '../../proto/metadata-types.js';
import type { UpResult } from '../../cli/local/cluster.js';
import type { OperationView } from '../../cli/daemon/operations.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';
import { upClientEnv } from '../support/tls.js';

describe('galleon snapshot / volume clone / volume restore on a real local cluster (integration)', function () {
  this.timeout(180_000);
  let root = '';
  let clusterDir = '';
  let env: Record<string, string> = {};
  let nodeAddresses: string[] = [];
  const json = <T>(args: string[]): Promise<T> => cliJson<T>(args, env);
  const read = async (args: string[]): Promise<string> => {
    const r = await runCli(['volume', 'read-block', ...args], env);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.replace(/\0+$/, '');
  };
  const write = async (vol: string, block: string, data: string): Promise<void> => {
    const r = await runCli(['volume', 'write-block', vol, block, '--data', data], env);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-cli-snap-');
    clusterDir = join(root, 'cluster');
    const r = await runCli(['up', '--no-first-volume', '--dir', clusterDir, '--nodes', '3', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    const up = JSON.parse(r.stdout) as UpResult;
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...upClientEnv(clusterDir) };
    nodeAddresses = up.cluster.nodes.map((n) => n.ipcAddress);
    await waitFor('three data nodes up', 30_000, async () => {
      const s = await json<ClusterStatus>(['cluster', 'status']);
      return s.dataNodes.filter((n) => n.state === 'up').length === 3;
    });
    // Every node of `galleon up` mounts every volume (ReadOnlyMany: read-only); a restore is refused
    // while any of them does, so the test unmounts `db` everywhere before its restore.
    await json<Volume>(['volume', 'create', '--name', 'db', '--size', '1M', '--block-size', '4K', '--access-mode', 'ReadOnlyMany']);
  });

  after(async function () {
    this.timeout(60_000);
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('snapshots, reads at a snapshot, clones, refuses and dry-runs deletes, restores in place', async () => {
    await write('db', '1', 'one-v1');
    await write('db', '2', 'two-v1');
    const s1 = await json<Snapshot>(['snapshot', 'create', 'db', '--name', 's1']);
    assert.equal(s1.volumeName, 'db');
    await write('db', '1', 'one-v2');
    await write('db', '3', 'three-v2');

    assert.equal(await read(['db', '1']), 'one-v2');
    assert.equal(await read(['db', '1', '--snapshot', 's1']), 'one-v1');
    assert.equal(await read(['db', '3', '--snapshot', 's1']), '', 'block 3 did not exist at s1');
    const listed = await json<Snapshot[]>(['snapshot', 'list', 'db']);
    assert.deepEqual(listed.map((s) => s.name), ['s1']);

    const clone = await json<Volume>(['volume', 'clone', 's1', '--name', 'db-test']);
    assert.equal(await read(['db-test', '1']), 'one-v1');
    await write('db-test', '2', 'two-clone');
    assert.equal(await read(['db-test', '2']), 'two-clone');
    assert.equal(await read(['db', '2']), 'two-v1', 'a clone writes only its own blocks');
    assert.deepEqual((await json<Snapshot>(['snapshot', 'get', 's1'])).clones, ['db-test']);

    const refused = await runCli(['snapshot', 'delete', 's1', '--yes'], env);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /^Error: snapshot s1 has 1 clone\(s\) reading through it: db-test — delete those clones first/);
    assert.equal(refused.stderr.trim().split('\n').length, 1);

    // Restore: refused for a snapshot of another volume; then db reads as s1 again.
    const s2 = await json<Snapshot>(['snapshot', 'create', 'db-test', '--name', 's2']);
    const wrong = await runCli(['volume', 'restore', 'db', '--snapshot', s2.name, '--yes'], env);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /^Error: snapshot s2 is of volume db-test, not db/);
    const mounted = await runCli(['volume', 'restore', 'db', '--snapshot', 's1', '--yes'], env);
    assert.equal(mounted.code, 5, mounted.stderr);
    assert.match(mounted.stderr, /^Error: volume db is mounted by node1 \(read-only\), node2 \(read-only\), node3 \(read-only\) — unmount it on each of them first/);
    assert.equal(await read(['db', '1']), 'one-v2', 'nothing restored while mounted');
    for (const address of nodeAddresses) await json(['volume', 'unmount', 'db', '--daemon-address', address]);
    const restored = await json<Volume>(['volume', 'restore', 'db', '--snapshot', 's1', '--yes']);
    assert.equal(restored.restores?.length, 1);
    assert.equal(await read(['db', '1']), 'one-v1');
    assert.equal(await read(['db', '3']), '', 'written after s1: gone after the restore');
    await write('db', '3', 'three-v3');
    assert.equal(await read(['db', '3']), 'three-v3', 'writes after a restore are seen');

    // Delete: dry run first (changes nothing), then for real once the clone is gone.
    const dry = await json<{ dryRun: boolean; bytesToFree: number }>(['snapshot', 'delete', 's2', '--dry-run']);
    assert.equal(dry.dryRun, true);
    assert.equal((await json<Snapshot[]>(['snapshot', 'list'])).length, 2);
    await json(['snapshot', 'delete', 's2', '--yes', '--wait']);
    const gone = await runCli(['volume', 'delete', 'db-test', '--yes'], env);
    assert.equal(gone.code, 0, gone.stderr);
    const done = await json<{ freed: { versions: number } | null }>(['snapshot', 'delete', 's1', '--yes', '--wait']);
    assert.ok(done.freed !== null);
    assert.deepEqual(await json<Snapshot[]>(['snapshot', 'list']), []);
    assert.equal(await read(['db', '1']), 'one-v1', 'a restored volume keeps its data after the snapshot goes');
    void clone;
  });

  it('runs hooks around the snapshot; a failing pre hook fails it unless --on-error continue', async () => {
    const marker = join(root, 'hooks.log');
    const ok = await json<Snapshot & { hooks: { ok: boolean }[] }>(['snapshot', 'create', 'db', '--name', 'h1',
      '--hook-pre', `echo pre $GALLEON_VOLUME >> ${marker}`, '--hook-post', `echo post >> ${marker}`]);
    assert.deepEqual(ok.hooks.map((h) => h.ok), [true, true]);
    assert.equal(await readFile(marker, 'utf8'), 'pre db\npost\n');
    const failed = await runCli(['snapshot', 'create', 'db', '--name', 'h2', '--hook-pre', 'echo frozen-fs-busy >&2; exit 3'], env);
    assert.equal(failed.code, 5, failed.stderr);
    assert.match(failed.stderr, /^Error: pre-snapshot hook failed \(exit 3\): frozen-fs-busy — /);
    assert.deepEqual((await json<Snapshot[]>(['snapshot', 'list', 'db'])).map((s) => s.name), ['h1'], 'nothing created');
    const slow = await runCli(['snapshot', 'create', 'db', '--name', 'h3', '--hook-pre', 'sleep 5', '--hook-timeout-ms', '200', '--on-error', 'continue', '--json'], env);
    assert.equal(slow.code, 0, slow.stderr);
    assert.equal((JSON.parse(slow.stdout) as { hooks: { ok: boolean }[] }).hooks[0]?.ok, false);
  });

  it('refuses to restore a volume mounted read-write, naming the node (one line, nothing changed)', async () => {
    await json<Volume>(['volume', 'create', '--name', 'rwo', '--size', '64K', '--block-size', '4K']);
    await write('rwo', '0', 'before');
    await json<Snapshot>(['snapshot', 'create', 'rwo', '--name', 'rwo-s']);
    await write('rwo', '0', 'after');
    // The cluster's mount managers mount the new volume (read-write on one node: a mount lease).
    await waitFor('rwo mounted', 60_000, async () => (await readFile('/proc/mounts', 'utf8')).includes(`${join(clusterDir, 'mnt')}`) &&
      (await readFile('/proc/mounts', 'utf8')).split('\n').some((l) => l.includes(join(clusterDir, 'mnt')) && l.includes('/rwo ')));
    const refused = await runCli(['volume', 'restore', 'rwo', '--snapshot', 'rwo-s', '--yes'], env);
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /^Error: volume rwo is mounted by (node\d \(read-(write|only)\)(, )?)*node\d \(read-write\)/);
    assert.equal(refused.stderr.trim().split('\n').length, 1);
    assert.equal(await read(['rwo', '0']), 'after', 'nothing restored');
  });

  it('bad input: one line, non-zero exit, nothing created', async () => {
    const cases: [string[], number, RegExp][] = [
      [['snapshot', 'create', 'nope'], 4, /^Error: volume "nope" not found/],
      [['snapshot', 'create', 'db', '--name', 'Bad_Name'], 2, /^Error: invalid snapshot name "Bad_Name"/],
      [['snapshot', 'get', 'nope'], 4, /^Error: snapshot "nope" not found — list snapshots with: galleon snapshot list/],
      [['volume', 'clone', 'nope', '--name', 'x'], 4, /^Error: snapshot "nope" not found/],
      [['volume', 'restore', 'db', '--snapshot', 'nope', '--yes'], 4, /^Error: snapshot "nope" not found/],
      [['snapshot', 'create', 'db', '--on-error', 'maybe'], 2, /on-error/],
    ];
    for (const [args, code, line] of cases) {
      const r = await runCli(args, env);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, line, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
    }
    const dup = await runCli(['snapshot', 'create', 'db', '--name', 'h1'], env);
    assert.equal(dup.code, 5, dup.stderr);
    assert.match(dup.stderr, /^Error: snapshot h1 already exists/);
    const withSnaps = await runCli(['volume', 'delete', 'db', '--yes'], env);
    assert.equal(withSnaps.code, 5, withSnaps.stderr);
    assert.match(withSnaps.stderr, /^Error: volume db has 2 snapshot\(s\): h1, h3 — delete them first/);
    assert.equal(await read(['db', '1']), 'one-v1', 'the volume is still there');
  });

  it('reports the freeing after a snapshot delete and a restore: --wait --json figures add up, operation get moves to done', async () => {
    interface Deleted { dryRun: boolean; versionsToFree: number; bytesToFree: number; freed: { versions: number; bytes: number } | null; operation: OperationView | null }
    await json<Volume>(['volume', 'create', '--name', 'prog', '--size', '64K', '--block-size', '4K', '--access-mode', 'ReadOnlyMany']);
    for (let b = 0; b < 4; b++) await write('prog', String(b), `v1-${b}`);
    await json<Snapshot>(['snapshot', 'create', 'prog', '--name', 'p1']);
    for (let b = 0; b < 4; b++) await write('prog', String(b), `v2-${b}`);
    await json<Snapshot>(['snapshot', 'create', 'prog', '--name', 'p2']);
    for (let b = 0; b < 4; b++) await write('prog', String(b), `v3-${b}`);

    // --wait --json: the result carries the figures; done == total == what the dry run said.
    const dry1 = await json<Deleted>(['snapshot', 'delete', 'p1', '--dry-run']);
    assert.ok(dry1.versionsToFree >= 4, `p1 alone keeps the v1 versions of 4 blocks: ${dry1.versionsToFree}`);
    const waited = await runCli(['snapshot', 'delete', 'p1', '--yes', '--wait', '--json'], env);
    assert.equal(waited.code, 0, waited.stderr);
    const r1 = JSON.parse(waited.stdout) as Deleted;
    const op1 = r1.operation;
    assert.ok(op1 !== null);
    assert.equal(op1.kind, 'snapshot-delete');
    assert.equal(op1.unit, 'versions');
    assert.equal(op1.state, 'done');
    assert.equal(op1.progress.phase, 'done');
    assert.equal(op1.progress.blocksTotal, dry1.versionsToFree, 'total = what the dry run said would be freed');
    assert.equal(op1.progress.blocksDone, op1.progress.blocksTotal, 'done == total at the end');
    assert.equal(op1.progress.bytesDone, dry1.bytesToFree);
    assert.deepEqual(r1.freed, { versions: dry1.versionsToFree, bytes: dry1.bytesToFree });
    const lines = waited.stderr.trim().split('\n').filter((l) => l.startsWith('{"progress"')).map((l) => JSON.parse(l) as { progress: { job: string; blocksDone: number; blocksTotal: number; bytesPerSec: number } });
    const last = lines.at(-1)?.progress;
    assert.equal(last?.job, op1.id, 'progress lines on stderr name the operation');
    assert.equal(last.blocksDone, dry1.versionsToFree);
    assert.equal(last.blocksTotal, dry1.versionsToFree);

    // Without --wait: answers at once with the operation, which `operation get` shows moving to done.
    const dry2 = await json<Deleted>(['snapshot', 'delete', 'p2', '--dry-run']);
    assert.ok(dry2.versionsToFree >= 4, `p2 alone keeps the v2 versions once p1 is gone: ${dry2.versionsToFree}`);
    const r2 = await json<Deleted>(['snapshot', 'delete', 'p2', '--yes']);
    assert.equal(r2.freed, null, 'not waited for');
    const id2 = r2.operation?.id ?? assert.fail('no operation in the answer');
    assert.equal(r2.operation?.progress.blocksTotal, dry2.versionsToFree);
    const end2 = await waitFor('the delete\'s freeing done', 60_000, async () => {
      const op = await json<OperationView>(['operation', 'get', id2]);
      return op.state === 'done' ? op : null;
    });
    assert.equal(end2.progress.blocksDone, dry2.versionsToFree);
    assert.equal(end2.progress.blocksTotal, dry2.versionsToFree);
    const human = await runCli(['operation', 'get', id2], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`State: +done[\\s\\S]*Progress: +done ${dry2.versionsToFree}/${dry2.versionsToFree} `));
    const unknown = await runCli(['operation', 'get', 'op-nope'], env);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /^Error: operation op-nope not found on this daemon — /);
    assert.equal(unknown.stderr.trim().split('\n').length, 1);

    // A restore: its freeing (blocks of files made since; none on a raw volume) is shown by volume get.
    await json<Snapshot>(['snapshot', 'create', 'prog', '--name', 'p3']);
    for (const address of nodeAddresses) await json(['volume', 'unmount', 'prog', '--daemon-address', address]);
    const restored = await json<Volume & { operation?: OperationView }>(['volume', 'restore', 'prog', '--snapshot', 'p3', '--yes']);
    const id3 = restored.operation?.id ?? assert.fail('no operation in the restore\'s answer');
    assert.equal(restored.operation?.kind, 'volume-restore');
    const end3 = await waitFor('the restore\'s freeing done', 60_000, async () => {
      const v = await json<Volume & { operation?: OperationView }>(['volume', 'get', 'prog']);
      return v.operation?.state === 'done' ? v.operation : null;
    });
    assert.equal(end3.id, id3);
    assert.equal(end3.progress.blocksDone, end3.progress.blocksTotal);
    const waited3 = await json<Volume & { operation?: OperationView; freed?: { blocks: number } }>(['volume', 'restore', 'prog', '--snapshot', 'p3', '--yes', '--wait']);
    assert.equal(waited3.operation?.state, 'done');
    assert.equal(waited3.operation.progress.blocksDone, waited3.freed?.blocks);
    assert.equal(waited3.operation.progress.blocksTotal, waited3.freed?.blocks);
    assert.equal(await read(['prog', '0']), 'v3-0', 'p3 was taken after the v3 writes');
    await json(['snapshot', 'delete', 'p3', '--yes', '--wait']);
  });
});
