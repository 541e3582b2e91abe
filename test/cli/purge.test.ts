/**
 * `galleon down --purge` removes only what `galleon up` made (the real binary on real folders;
 * no daemon runs: the folders are laid out as `up` lays them out, with nothing running).
 */
import { strict as assert } from 'node:assert';
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, runCli } from './helpers.js';

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function fakeCluster(dir: string, nodeIds: string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const nodes = nodeIds.map((id) => ({ id, pid: 0, storagePath: join(dir, id), bindAddress: '127.0.0.1:1', ipcAddress: '127.0.0.1:2', dataAddress: '127.0.0.1:3', logFile: join(dir, id, 'galleon.log') }));
  for (const n of nodes) {
    await mkdir(join(n.storagePath, 'metadata'), { recursive: true });
    await writeFile(n.logFile, 'log\n');
  }
  await writeFile(join(dir, 'cluster.json'), JSON.stringify({ dir, createdAtMs: 1, targetVoters: 3, daemonAddress: '127.0.0.1:2', nodes }));
}

describe('galleon down --purge removes only what galleon up made', function () {
  this.timeout(60_000);
  let root = '';
  beforeEach(async () => { root = await makeTempDir('galleon-purge-'); });
  afterEach(async () => { await rm(root, { recursive: true, force: true }); });

  it('issue #10 finding 2: a folder with a user\'s file and no cluster is left untouched', async () => {
    const dir = join(root, 'mine');
    await mkdir(dir);
    await writeFile(join(dir, 'thesis.txt'), 'years of work\n');
    const r = await runCli(['down', '--purge', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /Removed /);
    assert.match(r.stdout, /^No local cluster in .*mine\.\nNothing removed: .*mine holds no cluster made by `galleon up`\.$/m);
    assert.equal(await readFile(join(dir, 'thesis.txt'), 'utf8'), 'years of work\n');
    assert.deepEqual(await readdir(dir), ['thesis.txt']);
  });

  it('a folder made by today\'s up (cluster.json, no marker) loses its node folders and cluster.json, keeps the user\'s files and itself', async () => {
    const dir = join(root, 'legacy');
    await fakeCluster(dir, ['node1', 'node2']);
    await writeFile(join(dir, 'notes.md'), 'mine\n');
    await mkdir(join(dir, 'node7-backup'));
    const r = await runCli(['down', '--purge', '--dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { purged: boolean; removed: string[]; kept: string[] };
    assert.deepEqual(out, { ...out, purged: false, removed: ['cluster.json', 'node1', 'node2'], kept: ['node7-backup', 'notes.md'] });
    assert.deepEqual((await readdir(dir)).sort(), ['node7-backup', 'notes.md']);
    const human = await runCli(['down', '--purge', '--dir', dir]);
    assert.match(human.stdout, /Nothing removed/);
  });

  it('mount-point folders go only when empty: a file under mnt/ (a volume still mounted, say) is never deleted', async () => {
    const dir = join(root, 'mounts');
    await fakeCluster(dir, ['node1', 'node2']);
    await writeFile(join(dir, '.galleon-up.json'), JSON.stringify({ createdDir: true, createdAtMs: 1 }));
    await mkdir(join(dir, 'mnt', 'node1', 'demo'), { recursive: true });
    await mkdir(join(dir, 'mnt', 'node2', 'demo', 'sub'), { recursive: true });
    await writeFile(join(dir, 'mnt', 'node2', 'demo', 'sub', 'data.bin'), 'a file of the volume\n');
    const human = await runCli(['down', '--purge', '--dir', dir]);
    assert.equal(human.code, 0, human.stderr);
    // The marker is galleon's own: named apart from what galleon did not create.
    assert.match(human.stdout, /kept .*mounts, which holds files galleon did not create: mnt \(its marker \.galleon-up\.json stays, so that a later purge still knows the folder\)\.$/m);
    const r = await runCli(['down', '--purge', '--dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { purged: boolean; kept: string[] };
    assert.deepEqual([out.purged, out.kept], [false, ['.galleon-up.json', 'mnt']]);
    assert.equal(await readFile(join(dir, 'mnt', 'node2', 'demo', 'sub', 'data.bin'), 'utf8'), 'a file of the volume\n');
    assert.equal(await exists(join(dir, 'mnt', 'node1')), false, 'the empty mount point went');
    await rm(join(dir, 'mnt', 'node2', 'demo', 'sub', 'data.bin'));
    const again = await runCli(['down', '--purge', '--dir', dir, '--json']);
    assert.equal((JSON.parse(again.stdout) as { purged: boolean }).purged, true, again.stdout);
    assert.equal(await exists(dir), false);
  });

  it('a folder up created (marker) and holding only its files is removed; a cluster.json pointing outside is not followed', async () => {
    const dir = join(root, 'made');
    await fakeCluster(dir, ['node1']);
    await writeFile(join(dir, '.galleon-up.json'), JSON.stringify({ createdDir: true, createdAtMs: 1 }));
    const outside = join(root, 'node1');
    await mkdir(outside);
    const cluster = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { nodes: { storagePath: string }[] };
    cluster.nodes.push({ ...cluster.nodes[0], storagePath: outside });
    await writeFile(join(dir, 'cluster.json'), JSON.stringify(cluster));
    const r = await runCli(['down', '--purge', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Removed .*made\.$/m);
    assert.equal(await exists(dir), false);
    assert.equal(await exists(outside), true, 'a node path outside the folder is never removed');
  });

  it('a folder up created whose cluster.json is unreadable is still purged of what up made', async () => {
    const dir = join(root, 'broken');
    await fakeCluster(dir, ['node1']);
    await writeFile(join(dir, '.galleon-up.json'), JSON.stringify({ createdDir: true, createdAtMs: 1 }));
    await writeFile(join(dir, 'cluster.json'), '{ not json');
    const plain = await runCli(['down', '--dir', dir]);
    assert.equal(plain.code, 5, 'without --purge: the unreadable file is reported');
    const r = await runCli(['down', '--purge', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(dir), false);
  });

  it('a folder up did not create (marker says so) keeps itself even when empty afterwards', async () => {
    const dir = join(root, 'given');
    await fakeCluster(dir, ['node1']);
    await writeFile(join(dir, '.galleon-up.json'), JSON.stringify({ createdDir: false, createdAtMs: 1 }));
    const r = await runCli(['down', '--purge', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /kept .*given \(galleon up did not create it\)\.$/m);
    assert.deepEqual(await readdir(dir), []);
  });
});
