/**
 * Backups end to end on a real 3-node cluster (`galleon up`), through the real `galleon`
 * binary, to a directory and to S3 (a real s3rver on an ephemeral port): full, incremental and
 * differential backups upload exactly the changed blocks; a restore is byte-identical block for
 * block; one flipped byte of a stored object makes `verify` fail naming the block (and restore
 * refuse it); kill -9 of the daemon running a backup leaves nothing listed complete, the restarted
 * daemon resumes it, and the next backup succeeds; cancel. Blocks are written and read with the data plane's own client, from this process.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterStatus, Volume } from '../../proto/metadata-types.js';
import type { UpResult } from '../../cli/local/cluster.js';
import { isGalleonError } from '../../proto/errors.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import type { BackupResult } from '../../dataplane/backup/engine.js';
import type { BackupSummary, JobView } from '../../dataplane/backup/service.js';
import type { RestoreResult } from '../../dataplane/backup/restore.js';
import type { VerifyRecord } from '../../dataplane/backup/catalog.js';
import { startS3, type LocalS3 } from '../support/s3.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';
import { upClientEnv } from '../support/tls.js';
import { AdminClient } from '../../cli/lib/admin-client.js';

const blockSize = 4096;

describe('galleon backup on a real local cluster, to a directory and to S3 (integration)', function () {
  this.timeout(180_000);
  let root = '';
  let clusterDir = '';
  let up: UpResult;
  let env: Record<string, string> = {};
  let s3: LocalS3 | null = null;
  let meta: MetadataClient | null = null;
  let blocks: BlockClient | null = null;
  // Polls in-process: a CLI process per poll costs ~0.4 s of CPU, taken from the daemons doing the work polled for.
  let admin: AdminClient | null = null;
  const adminClient = (): AdminClient => {
    assert.ok(admin !== null);
    return admin;
  };
  const backupOf = async (id: string): Promise<BackupSummary | undefined> => (await adminClient().route<BackupSummary[]>('backupList', {})).find((x) => x.id === id);
  const json = <T>(args: string[], e = env): Promise<T> => cliJson<T>(args, e);

  before(async function () {
    this.timeout(240_000);
    root = await makeTempDir('galleon-backup-');
    clusterDir = join(root, 'cluster');
    s3 = await startS3(join(root, 's3'), ['galleon-bk']);
    // Backups are the point: the test's own in-process clients talk to the nodes directly, so the
    // cluster runs without TLS and tokens (each has its own suite).
    const r = await runCli(['up', '--no-auth', '--insecure-plaintext', '--no-first-volume', '--dir', clusterDir, '--nodes', '3', '--base-port', '0', '--json'], {}, 180_000);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    up = JSON.parse(r.stdout) as UpResult;
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...upClientEnv(clusterDir), AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
    await waitFor('three data nodes up', 60_000, async () => (await json<ClusterStatus>(['cluster', 'status'])).dataNodes.filter((n) => n.state === 'up').length === 3);
    meta = new MetadataClient({ addresses: up.cluster.nodes.map((n) => n.bindAddress), clientId: `backup-test-${process.pid}` });
    blocks = new BlockClient({ placement: new MetadataPlacementSource(meta), coalesceWrites: false, maxAttempts: 20, retryBaseDelayMs: 50 });
    admin = new AdminClient(up.cluster.daemonAddress);
    await mkdir(join(root, 'target-dir'));
    await json(['backup-target', 'add', 'local', '--dir', join(root, 'target-dir')]);
    await json(['backup-target', 'add', 'objects', '--s3', s3.endpoint, '--bucket', 'galleon-bk', '--prefix', 'prod/', '--access-key', s3.accessKeyId, '--secret-key', s3.secretAccessKey]);
  });

  after(async function () {
    this.timeout(90_000);
    await blocks?.close();
    meta?.close();
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 60_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    await s3?.stop();
    if (root !== '') await killClusterDir(root);
  });

  // The volumes are of a class without encryption: this test's own block client writes their
  // blocks directly, with no key (encrypted backups and restores go through mounts: test/vfs/backup.fuse.test.ts).
  async function writeRandom(vol: Volume, nos: number[], batch = false): Promise<void> {
    const b = blocks;
    assert.ok(b !== null);
    await b.writeBlocks(vol.id, nos.map((blockNo) => ({ inode: 0, blockNo, data: randomBytes(blockSize) })), 'replicated', { batch });
  }

  async function readAll(vol: Volume): Promise<(Buffer | null)[]> {
    const b = blocks;
    assert.ok(b !== null);
    const n = vol.sizeBytes / vol.blockSizeBytes;
    return Promise.all(Array.from({ length: n }, async (_, i) => {
      try {
        return (await b.readBlock(vol.id, 0, i)).data;
      } catch (err) {
        if (isGalleonError(err, 'BLOCK_NOT_FOUND')) return null;
        throw err;
      }
    }));
  }

  function assertSameBlocks(a: (Buffer | null)[], b: (Buffer | null)[]): void {
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i += 1) {
      const x = a[i] ?? null;
      const y = b[i] ?? null;
      assert.equal(x === null, y === null, `block ${i}: written on one side only`);
      if (x !== null && y !== null) assert.ok(x.equals(y), `block ${i} differs`);
    }
  }

  for (const target of ['local', 'objects'] as const) {
    describe(`target ${target}`, () => {
      let vol: Volume;
      let full: BackupResult;
      let inc: BackupResult;

      before(async () => {
        vol = await json<Volume>(['volume', 'create', '--name', `raw-${target}`, '--size', '1M', '--block-size', '4K', '--access-mode', 'ReadWriteOnce', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
        await writeRandom(vol, Array.from({ length: 40 }, (_, i) => i * 6));
      });

      it('a full backup uploads every written block; after changing N blocks an incremental uploads exactly N', async () => {
        full = await json<BackupResult>(['backup', 'create', vol.name, '--target', target, '--strategy', 'full']);
        assert.equal(full.strategy, 'full');
        assert.equal(full.blocks, 40);
        assert.equal(full.uploadedBlocks, 40);
        const changed = [0, 6, 60, 61, 250];
        await writeRandom(vol, changed); // 3 rewrites of written blocks, 2 new ones
        inc = await json<BackupResult>(['backup', 'create', vol.name, '--target', target, '--strategy', 'incremental']);
        assert.equal(inc.strategy, 'incremental');
        assert.equal(inc.parent, full.id);
        assert.equal(inc.blocks, 42);
        assert.equal(inc.changedBlocks, changed.length);
        assert.equal(inc.uploadedBlocks, changed.length);
        const same = await json<BackupResult>(['backup', 'create', vol.name, '--target', target]);
        assert.equal(same.changedBlocks, 0);
        assert.equal(same.uploadedBlocks, 0);
        await writeRandom(vol, [12, 13, 14]);
        const diff = await json<BackupResult>(['backup', 'create', vol.name, '--target', target, '--strategy', 'differential']);
        assert.equal(diff.parent, full.id);
        assert.equal(diff.changedBlocks, changed.length + 3);
        assert.equal(diff.uploadedBlocks, 3);
        const listed = await json<BackupSummary[]>(['backup', 'list', '--volume', vol.name]);
        assert.deepEqual(listed.map((b) => [b.id, b.state, b.strategy]), [[full.id, 'complete', 'full'], [inc.id, 'complete', 'incremental'], [same.id, 'complete', 'incremental'], [diff.id, 'complete', 'differential']]);
      });

      it('a restore is byte-identical to the volume at the backup, every block checked', async () => {
        const before = await readAll(vol);
        const r = await json<RestoreResult>(['backup', 'restore', (await json<BackupSummary[]>(['backup', 'list', '--volume', vol.name])).at(-1)?.id ?? '', '--name', `back-${target}`]);
        assert.equal(r.volume.sizeBytes, vol.sizeBytes);
        assert.equal(r.volume.blockSizeBytes, vol.blockSizeBytes);
        assertSameBlocks(await readAll(r.volume), before);
        // An older backup restores the older content: the incremental had not seen blocks 12-14.
        const older = await json<RestoreResult>(['backup', 'restore', inc.id, '--name', `old-${target}`]);
        const got = await readAll(older.volume);
        assert.ok((got[12] ?? null) !== null && !(got[12] as Buffer).equals(before[12] as Buffer), 'block 12 is the older content');
        assert.equal(got[13] ?? null, null);
      });

      it('verify passes, then names the block whose stored object lost a byte; restore refuses it', async () => {
        const ok = await json<VerifyRecord>(['backup', 'verify', inc.id]);
        assert.equal(ok.ok, true);
        assert.equal(ok.checkedBlocks, 42);
        const m = JSON.parse((await readStored(target, `manifests/${inc.id}.json`)).toString()) as { blocks: Record<string, { sha256: string }> };
        const victimKey = '0/60';
        const hash = m.blocks[victimKey]?.sha256 ?? '';
        const path = storedPath(target, `blocks/${hash.slice(0, 2)}/${hash}`);
        const bytes = await readFile(path);
        bytes[100] = (bytes[100] ?? 0) ^ 0xff;
        await writeFile(path, bytes);
        const bad = await runCli(['backup', 'verify', inc.id], env);
        assert.equal(bad.code, 1, bad.stderr);
        assert.match(bad.stderr, new RegExp(`^Error: backup ${inc.id} failed verification: 1 of 42 blocks bad: 0/60 \\(corrupt\\) — `));
        assert.equal(bad.stderr.trim().split('\n').length, 1);
        const sample = await runCli(['backup', 'verify', inc.id, '--sample', '150'], env);
        assert.equal(sample.code, 2);
        const refused = await runCli(['backup', 'restore', inc.id, '--name', `bad-${target}`], env);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /block 0\/60 does not match its manifest/);
        // The later differential shares that object: it fails too, naming the same block.
        const diffId = (await json<BackupSummary[]>(['backup', 'list', '--volume', vol.name])).at(-1)?.id ?? '';
        assert.match((await runCli(['backup', 'verify', diffId], env)).stderr, /0\/60 \(corrupt\)/);
      });
    });
  }

  function storedPath(target: 'local' | 'objects', key: string): string {
    return target === 'local' ? join(root, 'target-dir', key) : join(root, 's3', 'galleon-bk', `prod/${key}._S3rver_object`);
  }

  async function readStored(target: 'local' | 'objects', key: string): Promise<Buffer> {
    return readFile(storedPath(target, key));
  }

  it('bad input is one line with a hint and changes nothing', async () => {
    const cases: [string[], RegExp, number][] = [
      [['backup-target', 'add', 'x'], /^Error: a backup target needs --dir PATH or --s3 URL — /, 2],
      [['backup-target', 'add', 'rel', '--dir', 'relative/path'], /is not an absolute path — /, 2],
      [['backup-target', 'add', 'local', '--dir', '/tmp/x'], /^Error: backup target local already exists — /, 5],
      [['backup-target', 'add', 'gone', '--dir', '/nonexistent/galleon-backups'], /^Error: --dir \/nonexistent\/galleon-backups is not a directory on this node — create it first/, 5],
      [['backup-target', 'add', 'nobucket', '--s3', 'http://127.0.0.1:1', '--bucket', 'bbb', '--access-key', 'a', '--secret-key', 'b'], /^Error: backup target s3:\/\/bbb\/ failed: .* — check the target is reachable/, 3],
      [['backup-target', 'add', 's', '--s3', 'ftp://x', '--bucket', 'bb1'], /is not an http\(s\):\/\/host\[:port\] URL/, 2],
      [['backup', 'create', 'no-such-volume', '--target', 'local'], /^Error: volume .*not found/i, 4],
      [['backup', 'create', 'plain', '--target', 'nowhere'], /^Error: backup target "nowhere" not found — /, 4],
      [['backup', 'get', 'bk-doesnotexist1'], /^Error: backup bk-doesnotexist1 not found — /, 4],
      [['backup', 'get', '../etc'], /is not a backup id — /, 2],
      [['backup', 'policy', 'create', '--volume', 'plain', '--target', 'local', '--schedule', '99 * * * *'], /is not a cron expression/, 2],
      [['backup', 'create', 'plain', '--target', 'local', '--snapshot', 'no-such-snap'], /^Error: snapshot "no-such-snap" not found — /, 4],
      [['backup', 'create', 'plain', '--target', 'local', '--snapshot', 'other-snap'], /^Error: snapshot other-snap is of volume other, not plain — /, 2],
    ];
    await json<Volume>(['volume', 'create', '--name', 'plain', '--size', '64K', '--block-size', '4K']);
    await json<Volume>(['volume', 'create', '--name', 'other', '--size', '64K', '--block-size', '4K']);
    await json(['snapshot', 'create', 'other', '--name', 'other-snap']);
    const targetsBefore = await json<unknown[]>(['backup-target', 'list']);
    for (const [args, re, code] of cases) {
      const r = await runCli(args, env);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, args.join(' '));
    }
    assert.deepEqual(await json<unknown[]>(['backup-target', 'list']), targetsBefore);
    assert.deepEqual(await json<unknown[]>(['backup', 'policy', 'list']), []);
    assert.deepEqual(await json<BackupSummary[]>(['backup', 'list', '--volume', 'plain']), [], 'no backup started');
  });

  it('lists targets without secrets', async () => {
    const ts = await json<Record<string, unknown>[]>(['backup-target', 'list']);
    const o = ts.find((t) => t.name === 'objects');
    assert.equal(o?.credentials, 'recorded');
    assert.equal(o?.secretAccessKey, undefined);
    assert.ok(!JSON.stringify(ts).includes('S3RVER"') || o?.accessKeyId === 'S3RVER');
  });

  /** A volume with `count` written blocks (4 KiB, random): enough reading and uploading that a backup of it lasts seconds. */
  async function filledVolume(name: string, count: number): Promise<Volume> {
    const vol = await json<Volume>(['volume', 'create', '--name', name, '--size', `${Math.ceil((count * blockSize) / (1 << 20)) + 1}M`, '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
    await writeRandom(vol, Array.from({ length: count }, (_, i) => i), true);
    return vol;
  }

  describe('reads at a snapshot', () => {
    it('a sparse 2 GiB volume costs its written blocks, not its size', async () => {
      const vol = await json<Volume>(['volume', 'create', '--name', 'sparse-2g', '--size', '2G', '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
      await writeRandom(vol, [0, 100_000, 400_000]);
      const t0 = Date.now();
      const r = await json<BackupResult>(['backup', 'create', vol.name, '--target', 'local', '--strategy', 'full']);
      const ms = Date.now() - t0;
      assert.deepEqual([r.blocks, r.uploadedBlocks], [3, 3]);
      process.stdout.write(`      (full backup of a sparse 2 GiB volume, 524,288 addresses, 3 written: ${ms} ms through the CLI)\n`);
      assert.deepEqual(await json<unknown[]>(['snapshot', 'list', vol.name]), [], 'the snapshot the backup took is deleted');
    });

    it('is a consistent cut: every write acknowledged before it is in it, none that started after it, none mixed', async () => {
      const b = blocks;
      assert.ok(b !== null);
      const vol = await json<Volume>(['volume', 'create', '--name', 'cut', '--size', '16M', '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
      // Filler to read between the hot blocks, so a backup lasts long enough for the writer to lap them.
      await writeRandom(vol, Array.from({ length: 3000 }, (_, i) => i), true);
      const hot = Array.from({ length: 15 }, (_, i) => i * 200 + 7);
      const stamp = (seq: number): Buffer => { const x = Buffer.alloc(blockSize, 0x2e); x.writeUInt32BE(seq, 0); return x; };
      let seq = 0;
      const write = async (): Promise<number> => {
        const mine = ++seq;
        await b.writeBlock(vol.id, 0, hot[mine % hot.length] ?? 0, stamp(mine), 'replicated');
        return mine;
      };
      for (let i = 0; i < hot.length; i += 1) await write();
      let stop = false;
      let acked = seq;
      const writer = (async () => { while (!stop) acked = await write(); })();
      await waitFor('the writer lapping the hot blocks', 30_000, () => Promise.resolve(acked > 3 * hot.length));
      const ackedBeforeStart = acked;
      let r: BackupResult;
      // The newest write started when the backup had ended: any later one started after it.
      let startedByEnd: number;
      try {
        r = await json<BackupResult>(['backup', 'create', vol.name, '--target', 'local', '--strategy', 'full']);
        startedByEnd = seq;
      } finally {
        stop = true;
        await writer;
      }
      const m = JSON.parse((await readStored('local', `manifests/${r.id}.json`)).toString()) as { blocks: Record<string, { sha256: string }>; snapshot?: { created: boolean } };
      assert.equal(m.snapshot?.created, true);
      const seen = await Promise.all(hot.map(async (h) => {
        const hash = m.blocks[`0/${h}`]?.sha256 ?? '';
        return (await readStored('local', `blocks/${hash.slice(0, 2)}/${hash}`)).readUInt32BE(0);
      }));
      const cut = Math.max(...seen);
      assert.ok(cut >= ackedBeforeStart, `write ${ackedBeforeStart} was acknowledged before the backup started; the backup holds up to ${cut}`);
      assert.ok(cut <= startedByEnd, `write ${cut} started after the backup ended, and is in it`);
      assert.ok(seq - ackedBeforeStart > hot.length, `the writer lapped the hot blocks during the backup (${seq - ackedBeforeStart} writes)`);
      // A cut: each hot block holds the last write to it at or below the newest write the backup saw.
      const expected = hot.map((_, i) => { let k = cut; while (k % hot.length !== i) k -= 1; return k; });
      assert.deepEqual(seen, expected);
      process.stdout.write(`      (consistent cut at write ${cut}: ${cut - ackedBeforeStart} writes after the request; ${seq - cut} writes during and after the backup left out)\n`);
    });
  });

  describe('an encrypted volume', () => {
    const pattern = Buffer.alloc(blockSize, 'GALLEON-BACKUP-SECRET-PATTERN ');
    const piece = pattern.subarray(0, 32);
    let sec: Volume;
    const ids: Record<string, string> = {};

    async function filesUnder(dir: string): Promise<string[]> {
      const out: string[] = [];
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) out.push(...await filesUnder(p));
        else if (e.isFile()) out.push(p);
      }
      return out;
    }
    const holding = async (dir: string): Promise<string[]> => {
      const hits: string[] = [];
      for (const f of await filesUnder(dir)) if ((await readFile(f)).includes(piece)) hits.push(f);
      return hits;
    };
    const readBlockCli = async (volume: string, n: number): Promise<Buffer> => {
      const r = await runCli(['volume', 'read-block', volume, String(n)], env);
      assert.equal(r.code, 0, r.stderr);
      return Buffer.from(r.stdout, 'latin1');
    };

    before(async () => {
      sec = await json<Volume>(['volume', 'create', '--name', 'sec', '--size', '1M', '--block-size', '4K']);
      assert.equal(sec.encrypted, true, 'the default class encrypts');
      const file = join(root, 'pattern.bin');
      await writeFile(file, pattern);
      for (const n of ['1', '2', '3']) assert.equal((await runCli(['volume', 'write-block', 'sec', n, '--file', file], env)).code, 0);
      // The control: the same pattern in a plain volume, backed up to both targets, is found there (the scan can fail).
      const ctl = await json<Volume>(['volume', 'create', '--name', 'sec-control', '--size', '64K', '--block-size', '4K', '--storage-class', 'fast-local-ssd']);
      assert.equal((await runCli(['volume', 'write-block', ctl.name, '1', '--file', file], env)).code, 0);
    });

    for (const target of ['local', 'objects'] as const) {
      it(`${target}: the backup holds ciphertext only; the restore is byte-identical and sealed with the new volume's key`, async () => {
        const where = target === 'local' ? join(root, 'target-dir') : join(root, 's3', 'galleon-bk');
        const ctl = await json<BackupResult>(['backup', 'create', 'sec-control', '--target', target, '--strategy', 'full']);
        assert.equal(ctl.blocks, 1);
        assert.ok((await holding(where)).length > 0, 'the scan finds a plain volume\'s block');
        await json(['backup', 'delete', ctl.id, '--yes']);
        assert.deepEqual(await holding(where), [], 'deleting the control backup took its object');
        const r = await json<BackupResult>(['backup', 'create', 'sec', '--target', target, '--strategy', 'full']);
        ids[target] = r.id;
        assert.deepEqual([r.blocks, r.uploadedBlocks], [3, 3]);
        assert.deepEqual(await holding(where), [], 'no stored object or record holds the pattern');
        const m = JSON.parse((await readStored(target, `manifests/${r.id}.json`)).toString()) as { blocks: Record<string, { sealedBy?: string }>; encryption?: { keys: Record<string, { wrapped: string }> } };
        assert.deepEqual(Object.keys(m.encryption?.keys ?? {}), [sec.id]);
        assert.deepEqual(Object.values(m.blocks).map((e) => e.sealedBy), [sec.id, sec.id, sec.id]);
        const restored = await json<RestoreResult>(['backup', 'restore', r.id, '--name', `sec-back-${target}`]);
        assert.equal(restored.volume.encrypted, true);
        for (const n of [1, 2, 3]) assert.ok((await readBlockCli(restored.volume.name, n)).equals(pattern), `block ${n}`);
        // As the data nodes hold it: sealed (this test's client has no key), not the source's body.
        const stored = await blocks?.readBlock(restored.volume.id, 0, 2);
        const source = await blocks?.readBlock(sec.id, 0, 2);
        assert.ok(stored !== undefined && source !== undefined && stored.data.subarray(0, 2).toString() === 'GE' && !stored.data.includes(piece) && !stored.data.equals(source.data));
      });
    }

    it('a flipped byte in a stored ciphertext object fails verify and restore, naming the block', async () => {
      const id = ids.local ?? '';
      const m = JSON.parse((await readStored('local', `manifests/${id}.json`)).toString()) as { blocks: Record<string, { sha256: string }> };
      const hash = m.blocks['0/2']?.sha256 ?? '';
      const path = storedPath('local', `blocks/${hash.slice(0, 2)}/${hash}`);
      const good = await readFile(path);
      const bad = Buffer.from(good);
      bad[60] = (bad[60] ?? 0) ^ 0x01;
      await writeFile(path, bad);
      try {
        const v = await runCli(['backup', 'verify', id], env);
        assert.equal(v.code, 1, v.stderr);
        assert.match(v.stderr, /1 of 3 blocks bad: 0\/2 \(corrupt\)/);
        const refused = await runCli(['backup', 'restore', id, '--name', 'sec-bad'], env);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /block 0\/2 does not match its manifest/);
      } finally {
        await writeFile(path, good);
      }
    });

    it('restores after the source volume (and its data key in the cluster) is deleted', async () => {
      await json(['volume', 'delete', 'sec', '--yes']);
      assert.equal((await runCli(['volume', 'get', 'sec'], env)).code, 4);
      const restored = await json<RestoreResult>(['backup', 'restore', ids.objects ?? '', '--name', 'sec-after-delete']);
      for (const n of [1, 2, 3]) assert.ok((await readBlockCli(restored.volume.name, n)).equals(pattern), `block ${n}`);
    });
  });

  describe('crash and cancel', () => {
    it('kill -9 of the daemon running a backup leaves no backup listed complete; its restart resumes it; the next one succeeds', async function () {
      // Fill, back up, kill, restart, resume, then an incremental, a verify and a restore of every block.
      this.timeout(420_000);
      const node2 = up.cluster.nodes[1];
      assert.ok(node2 !== undefined);
      const count = 5000;
      const big = await filledVolume('big', count);
      const env2 = { ...env, GALLEON_ADDRESS: node2.ipcAddress };
      const job = await json<JobView>(['backup', 'create', 'big', '--target', 'local', '--strategy', 'full', '--detach'], env2);
      // Wait until it is under way (its progress on the target), then kill its daemon.
      await waitFor('backup running with progress', 60_000, async () => {
        const b = await backupOf(job.backupId);
        return b !== undefined && b.state !== 'complete' && (b.progress?.blocksDone ?? 0) > 0;
      });
      const pid = Number((await readFile(join(node2.storagePath, 'galleon.pid'), 'utf8')).trim());
      process.kill(pid, 'SIGKILL');
      const after = (await json<BackupSummary[]>(['backup', 'list', '--volume', 'big'])).find((x) => x.id === job.backupId);
      assert.equal(after?.state, 'incomplete', 'the kill came before the run completed: raise count if this fails');
      const get = await runCli(['backup', 'get', job.backupId], env);
      assert.equal(get.code, 4);
      assert.match(get.stderr, /did not complete/);
      assert.equal((await readdir(join(root, 'target-dir', 'manifests')).catch(() => [] as string[])).includes(`${job.backupId}.json`), false);
      // The killed daemon comes back (galleon up restarts nodes that are down) and resumes its run
      // under the same id, at the same snapshot: objects it had stored are read back and kept only if they hash right.
      const killedAt = Date.now();
      const again = await runCli(['up', '--no-first-volume', '--dir', clusterDir, '--json'], {}, 120_000);
      assert.equal(again.code, 0, again.stderr);
      // A killed daemon not yet reaped is a zombie: up must see it as down and start it again.
      assert.deepEqual((JSON.parse(again.stdout) as UpResult).restarted, ['node2']);
      await waitFor('three data nodes up again', 60_000, async () => (await adminClient().route<ClusterStatus>('clusterStatus', {})).dataNodes.filter((n) => n.state === 'up').length === 3);
      await waitFor('the interrupted backup resumed and complete', 150_000, async () => (await backupOf(job.backupId))?.state === 'complete');
      const resumed = await json<BackupSummary>(['backup', 'get', job.backupId]);
      assert.equal(resumed.blocks, count);
      assert.equal(resumed.strategy, 'full');
      process.stdout.write(`      (resumed full backup of ${count} written blocks: complete ${(resumed.completedAtMs ?? 0) - killedAt} ms after the kill, restart included)\n`);
      // The snapshot the run took is deleted once the resumed run is done.
      assert.deepEqual(await json<unknown[]>(['snapshot', 'list', 'big']), []);
      // The next run succeeds, compared with the resumed one.
      const next = await json<BackupResult>(['backup', 'create', 'big', '--target', 'local', '--strategy', 'incremental']);
      assert.deepEqual([next.strategy, next.parent, next.blocks, next.changedBlocks, next.uploadedBlocks], ['incremental', job.backupId, count, 0, 0]);
      assert.equal((await json<VerifyRecord>(['backup', 'verify', job.backupId])).ok, true);
      const restored = await json<RestoreResult>(['backup', 'restore', job.backupId, '--name', 'big-back']);
      const b = blocks;
      assert.ok(b !== null);
      const addrs = Array.from({ length: count }, (_, i) => ({ inode: 0, blockNo: i }));
      const [want, got] = [await b.readBlocks(big.id, addrs), await b.readBlocks(restored.volume.id, addrs)];
      for (let i = 0; i < count; i += 1) assert.ok(want[i]?.data.equals(got[i]?.data ?? Buffer.alloc(0)), `block ${i}`);
      const del = await json<{ deletedObjects: number }>(['backup', 'delete', next.id, '--yes']);
      assert.equal(del.deletedObjects, 0, 'the resumed backup names every object');
    });

    it('a verification its daemon died in runs again when that daemon restarts', async function () {
      this.timeout(300_000);
      const node3 = up.cluster.nodes[2];
      assert.ok(node3 !== undefined);
      const vol = await json<Volume>(['volume', 'create', '--name', 'vfy', '--size', '64K', '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
      await writeRandom(vol, [1, 2, 3]);
      const b = await json<BackupResult>(['backup', 'create', 'vfy', '--target', 'local', '--strategy', 'full']);
      const verified = join(root, 'target-dir', 'verified', `${b.id}.json`);
      await assert.rejects(readFile(verified), 'not verified yet');
      // A verification of 3 blocks ends before any kill could land: what a daemon killed in the middle
      // of one leaves on the target (its record, no outcome) is written here instead, naming node3.
      await mkdir(join(root, 'target-dir', 'verifying'), { recursive: true });
      const rec = join(root, 'target-dir', 'verifying', `${b.id}.json`);
      await writeFile(rec, JSON.stringify({ id: b.id, nodeId: 'node3', samplePercent: 100, sampleOffset: 0, startedAtMs: Date.now() }));
      process.kill(Number((await readFile(join(node3.storagePath, 'galleon.pid'), 'utf8')).trim()), 'SIGKILL');
      const again = await runCli(['up', '--no-first-volume', '--dir', clusterDir, '--json'], {}, 120_000);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual((JSON.parse(again.stdout) as UpResult).restarted, ['node3']);
      await waitFor('the verification run again and recorded', 120_000, async () => (await readFile(verified).catch(() => null)) !== null && (await readFile(rec).catch(() => null)) === null);
      const v = JSON.parse(await readFile(verified, 'utf8')) as VerifyRecord;
      assert.deepEqual([v.ok, v.checkedBlocks, v.samplePercent], [true, 3, 100]);
      // An ordinary verification leaves no record behind.
      assert.equal((await json<VerifyRecord>(['backup', 'verify', b.id])).ok, true);
      assert.deepEqual(await readdir(join(root, 'target-dir', 'verifying')), []);
    });

    it('backup cancel stops a running backup; it is never listed complete; its snapshot is deleted', async () => {
      await filledVolume('big-cancel', 6000);
      const job = await json<JobView>(['backup', 'create', 'big-cancel', '--target', 'local', '--strategy', 'full', '--detach']);
      await waitFor('backup under way', 60_000, async () => ((await backupOf(job.backupId))?.progress?.blocksDone ?? 0) > 0);
      const c = await json<JobView>(['backup', 'cancel', job.backupId]);
      assert.equal(c.id, job.id);
      await waitFor('cancelled', 30_000, async () => (await backupOf(job.backupId))?.state === 'cancelled');
      assert.equal((await runCli(['backup', 'get', job.backupId], env)).code, 4);
      const again = await runCli(['backup', 'cancel', job.id], env);
      assert.equal(again.code, 5, again.stderr);
      assert.match(again.stderr, /already cancelled/);
      await waitFor('the cancelled run\'s snapshot deleted', 30_000, async () => (await adminClient().route<unknown[]>('volumeSnapshots', { ref: 'big-cancel' })).length === 0);
    });
  });
});
