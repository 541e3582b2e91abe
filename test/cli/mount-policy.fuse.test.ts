/**
 * Auto-mounts (`--mount-point`, here the mount root of `galleon up`) honour volume access policies
 * (issue #12, gap 5; vfs/manager/plan.ts): a node's auto-mounts act as user <node id> with role
 * operator. Against a real daemon and real FUSE mounts: a volume without a policy stays mounted
 * read-write (the control); a policy giving role:operator `ro` remounts it read-only (a write in
 * the mount fails with EROFS); a policy that lists only someone else unmounts it and `vfs list`
 * shows it refused with the reason; a policy naming the node's own user brings it back read-write.
 */
import { strict as assert } from 'node:assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UpResult } from '../../cli/local/cluster.js';
import type { MountInfo } from '../../proto/vfs-types.js';
import { upClientEnv } from '../support/tls.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';

const mountWaitMs = 60_000;

describe('auto-mounts and volume access policies (fuse)', function () {
  this.timeout(240_000);
  let root = '';
  let dir = '';
  let up: UpResult;
  let env: Record<string, string> = {};

  const mounts = (): Promise<MountInfo[]> => cliJson<MountInfo[]>(['vfs', 'list'], env);
  const waitState = (volume: string, want: (m: MountInfo) => boolean, what: string): Promise<MountInfo> => waitFor(what, mountWaitMs, async () => (await mounts()).find((m) => m.volume === volume && want(m)) ?? null);

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-mount-policy-');
    dir = join(root, 'cluster');
    const r = await runCli(['up', '--no-first-volume', '--dir', dir, '--nodes', '1', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    up = JSON.parse(r.stdout) as UpResult;
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...upClientEnv(dir) };
    for (const name of ['open', 'guarded']) {
      const c = await runCli(['volume', 'create', '--name', name, '--size', '16M', '--storage-class', 'fast-local-ssd', '--replicas', '1'], env);
      assert.equal(c.code, 0, c.stderr);
    }
    await waitState('guarded', (m) => m.state === 'mounted' && m.mode === 'rw', 'guarded auto-mounted read-write');
  });

  after(async function () {
    this.timeout(60_000);
    if (dir !== '') {
      await runCli(['down', '--dir', dir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(dir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('a policy giving the mount role read-only remounts the volume read-only; a write in it fails', async () => {
    const p = await runCli(['volume', 'policy', 'guarded', '--allow', 'role:operator=ro'], env);
    assert.equal(p.code, 0, p.stderr);
    const m = await waitState('guarded', (x) => x.state === 'mounted' && x.mode === 'ro', 'guarded remounted read-only');
    await assert.rejects(writeFile(join(m.mountPoint, 'f'), 'x'), (err: NodeJS.ErrnoException) => err.code === 'EROFS');
    const open = (await mounts()).find((x) => x.volume === 'open');
    assert.deepEqual([open?.state, open?.mode], ['mounted', 'rw'], 'the control: a volume without a policy stays read-write');
    await writeFile(join(open?.mountPoint ?? '', 'f'), 'x');
  });

  it('a policy that gives the node\'s mounts no access unmounts it, and vfs list says why; naming the node brings it back', async () => {
    const p = await runCli(['volume', 'policy', 'guarded', '--allow', 'user:alice=rw'], env);
    assert.equal(p.code, 0, p.stderr);
    const refused = await waitState('guarded', (x) => x.state === 'refused', 'guarded refused by its policy');
    assert.match(refused.error ?? '', /access policy of volume guarded gives this node's mounts \(user node1, role operator\) no access/);
    const human = await runCli(['vfs', 'list'], env);
    assert.match(human.stdout, /guarded/);
    const back = await runCli(['volume', 'policy', 'guarded', '--allow', 'user:alice=rw', '--allow', 'user:node1=rw'], env);
    assert.equal(back.code, 0, back.stderr);
    await waitState('guarded', (x) => x.state === 'mounted' && x.mode === 'rw', 'guarded mounted again read-write');
  });
});
