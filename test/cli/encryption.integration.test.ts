/**
 * Encryption at rest against a real `galleon up` cluster (three daemons, their data nodes and
 * FUSE mounts): a known pattern written through the CLI and through a mount leaves no trace in
 * any file under any data node's storage path (a plain volume's control pattern is found, so the
 * scan can fail); a body changed or moved by someone without the key (written through the data
 * plane as a compromised node could store it) fails authentication — one line from the CLI, EIO
 * through a mount; `key rotate` leaves every segment file byte-identical and the rotated wrap
 * opens in a restarted node; a wrong or missing cluster key file fails the read and the mount
 * with one clear line.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { copyFile, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterStatus, Volume } from '../../proto/metadata-types.js';
import type { LocalNode, UpResult } from '../../cli/local/cluster.js';
import type { KeyListEntry, KeyRotateResult } from '../../cli/daemon/keys.js';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../dataplane/placement.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { createClusterKeyFile, InternalKeyProvider } from '../../dataplane/client/key-providers.js';
import { fuseUnavailableReason } from '../support/fuse.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';
import { upClientEnv } from '../support/tls.js';

const blockSize = 4096;
const secretA = Buffer.alloc(blockSize, 'GALLEON-SECRET-CLI-PATTERN-A ');
const secretB = Buffer.alloc(300 * 1024, 'GALLEON-SECRET-FUSE-PATTERN-B ');
const control = Buffer.alloc(blockSize, 'GALLEON-PLAIN-CONTROL-PATTERN-C ');

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Every file under the nodes' storage paths holding `pattern` (a 32-byte piece of it is enough). */
async function filesHolding(nodes: readonly LocalNode[], pattern: Buffer): Promise<string[]> {
  const piece = pattern.subarray(0, 32);
  const hits: string[] = [];
  for (const n of nodes) {
    for (const f of await filesUnder(n.storagePath)) {
      const body = await readFile(f).catch(() => Buffer.alloc(0));
      if (body.includes(piece)) hits.push(f);
    }
  }
  return hits;
}

async function segmentDigests(nodes: readonly LocalNode[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    for (const f of (await filesUnder(n.storagePath)).filter((x) => x.endsWith('.seg')).sort()) {
      out.set(f, createHash('sha256').update(await readFile(f)).digest('hex'));
    }
  }
  return out;
}

describe('encryption at rest on a real local cluster (integration)', function () {
  this.timeout(240_000);
  let root = '';
  let clusterDir = '';
  let up: UpResult;
  let env: Record<string, string> = {};
  let sec: Volume;
  let meta: MetadataClient | null = null;
  let raw: BlockClient | null = null;
  const fuseReason = fuseUnavailableReason();
  const json = <T>(args: string[], e = env): Promise<T> => cliJson<T>(args, e);
  const mnt = (node: string, ...p: string[]): string => join(clusterDir, 'mnt', node, 'sec', ...p);
  const node = (i: number): LocalNode => up.cluster.nodes[i] as LocalNode;

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-crypt-');
    clusterDir = join(root, 'cluster');
    // Encryption is the point: the test's own in-process clients talk to the nodes directly, so the
    // cluster runs without TLS and tokens (each has its own suite).
    const r = await runCli(['up', '--no-auth', '--insecure-plaintext', '--no-first-volume', '--dir', clusterDir, '--nodes', '3', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    up = JSON.parse(r.stdout) as UpResult;
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...upClientEnv(clusterDir) };
    await waitFor('three data nodes up', 30_000, async () => (await json<ClusterStatus>(['cluster', 'status'])).dataNodes.filter((n) => n.state === 'up').length === 3);
    sec = await json<Volume>(['volume', 'create', '--name', 'sec', '--size', '1M', '--block-size', '4K', '--access-mode', 'ReadWriteMany']);
    await json<Volume>(['volume', 'create', '--name', 'plain', '--size', '1M', '--block-size', '4K', '-c', 'fast-local-ssd', '-r', '1']);
    meta = new MetadataClient({ addresses: up.cluster.nodes.map((n) => n.bindAddress), clientId: 'crypt-test' });
    // A client with no key: what a data node, or anyone on the block port, can see and store.
    raw = new BlockClient({ placement: new MetadataPlacementSource(meta) });
  });

  after(async function () {
    this.timeout(60_000);
    await raw?.close();
    meta?.close();
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('makes the cluster key file 0600 and wraps the new volume\'s data key with it', async () => {
    assert.equal((await stat(join(clusterDir, 'cluster.key'))).mode & 0o777, 0o600);
    assert.equal(sec.encrypted, true);
    const keys = await json<KeyListEntry[]>(['key', 'list']);
    assert.deepEqual(keys.map((k) => [k.volume, k.provider]), [['sec', 'internal']]);
    assert.match(keys[0]?.keyId ?? '', /^internal:v1:/);
  });

  it('leaves no trace of a pattern written through the CLI or a FUSE mount on any data node; the plain control is found', async () => {
    const inFile = join(root, 'a.bin');
    await writeFile(inFile, secretA);
    for (const b of ['1', '2', '3']) assert.equal((await runCli(['volume', 'write-block', 'sec', b, '--file', inFile], env)).code, 0);
    const back = await runCli(['volume', 'read-block', 'sec', '2'], env);
    assert.ok(Buffer.from(back.stdout, 'latin1').equals(secretA), 'reads back through the CLI');
    await writeFile(join(root, 'c.bin'), control);
    assert.equal((await runCli(['volume', 'write-block', 'plain', '1', '--file', join(root, 'c.bin')], env)).code, 0);
    if (fuseReason === undefined) {
      await waitFor('sec mounted on node1 and node2', 30_000, async () => {
        const lists = await Promise.all([0, 1].map((i) => json<{ volume: string; state: string }[]>(['vfs', 'list'], { ...env, GALLEON_ADDRESS: node(i).ipcAddress })));
        return lists.every((l) => l.some((m) => m.volume === 'sec' && m.state === 'mounted'));
      });
      await writeFile(mnt('node1', 'secret.bin'), secretB);
      assert.ok((await readFile(mnt('node2', 'secret.bin'))).equals(secretB), 'written on node 1, read through node 2');
    } else {
      process.stderr.write(`\n*** SKIPPING the FUSE half of the scan: ${fuseReason}\n`);
    }
    assert.deepEqual(await filesHolding(up.cluster.nodes, secretA), []);
    assert.deepEqual(await filesHolding(up.cluster.nodes, secretB), []);
    assert.ok((await filesHolding(up.cluster.nodes, control)).length > 0, 'the scan finds a plain volume\'s bytes');
    const stored = await raw?.readBlock(sec.id, 0, 2);
    assert.ok(stored !== undefined && stored.data.subarray(0, 2).toString() === 'GE' && !stored.data.includes(secretA.subarray(0, 32)));
  });

  it('key rotate re-wraps every data key and leaves every segment file byte-identical', async () => {
    const before = await segmentDigests(up.cluster.nodes);
    assert.ok(before.size > 0);
    const r = await json<KeyRotateResult>(['key', 'rotate']);
    assert.deepEqual(r.rewrapped.map((x) => [x.volume, x.to]), [['sec', r.keyId]]);
    assert.match(r.keyId, /^internal:v2:/);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(await segmentDigests(up.cluster.nodes), before);
    assert.match((await json<KeyListEntry[]>(['key', 'list']))[0]?.keyId ?? '', /^internal:v2:/);
    const back = await runCli(['volume', 'read-block', 'sec', '1'], env);
    assert.ok(Buffer.from(back.stdout, 'latin1').equals(secretA));
  });

  it('a body changed or moved by someone without the key fails authentication: one line from the CLI, EIO through a mount', async () => {
    const c = raw as BlockClient;
    const body = (await c.readBlock(sec.id, 0, 1)).data;
    const flipped = Buffer.from(body);
    flipped[40] = (flipped[40] ?? 0) ^ 0x20;
    await c.writeBlock(sec.id, 0, 1, flipped, 'replicated');
    const changed = await runCli(['volume', 'read-block', 'sec', '1'], env);
    assert.notEqual(changed.code, 0);
    assert.match(changed.stderr, /^Error: block 1 \(inode 0\) of volume \S+ failed authentication: the GCM tag does not match — .+\n$/);
    await c.writeBlock(sec.id, 0, 7, (await c.readBlock(sec.id, 0, 3)).data, 'replicated');
    const moved = await runCli(['volume', 'read-block', 'sec', '7'], env);
    assert.notEqual(moved.code, 0);
    assert.match(moved.stderr, /^Error: block 7 \(inode 0\) of volume \S+ failed authentication/);
    assert.equal(moved.stderr.trim().split('\n').length, 1);
    if (fuseReason !== undefined) return;
    // The file's first block replaced by its second: node 3 never read the file, so it has nothing cached.
    const attr = await (meta as MetadataClient).fsLookup(sec.id, 1, 'secret.bin');
    await c.writeBlock(sec.id, attr.ino, 0, (await c.readBlock(sec.id, attr.ino, 1)).data, 'replicated');
    await waitFor('sec mounted on node3', 30_000, async () => (await json<{ volume: string; state: string }[]>(['vfs', 'list'], { ...env, GALLEON_ADDRESS: node(2).ipcAddress }))
      .some((m) => m.volume === 'sec' && m.state === 'mounted'));
    await assert.rejects(readFile(mnt('node3', 'secret.bin')), (e: NodeJS.ErrnoException) => e.code === 'EIO');
  });

  /** Stops node 3 and has `galleon up` start it again (on the key file now in the folder). */
  async function restartNode3(): Promise<void> {
    const n = node(2);
    const stop = await runCli(['daemon', 'stop', '--daemon-address', n.ipcAddress], env);
    assert.equal(stop.code, 0, stop.stderr);
    const again = await runCli(['up', '--dir', clusterDir, '--json'], {}, 120_000);
    assert.equal(again.code, 0, again.stderr);
  }

  it('a restarted node opens the rotated wrap; with a wrong or a missing key file its reads and its mount fail with one clear line', async function () {
    this.timeout(240_000);
    const n3 = { ...env, GALLEON_ADDRESS: node(2).ipcAddress };
    const keyFile = join(clusterDir, 'cluster.key');
    await restartNode3();
    await waitFor('node 3 reads sec after its restart', 60_000, async () => {
      const r = await runCli(['volume', 'read-block', 'sec', '2'], n3);
      return r.code === 0 && Buffer.from(r.stdout, 'latin1').equals(secretA);
    });

    const good = join(root, 'good.key');
    await copyFile(keyFile, good);
    try {
      await rm(keyFile);
      // Another cluster's key file, rotated once too: same version, other key.
      await createClusterKeyFile(keyFile);
      await new InternalKeyProvider(keyFile).rotate();
      await restartNode3();
      const wrong = await waitFor('node 3 answers with the wrong key file', 60_000, async () => {
        const r = await runCli(['volume', 'read-block', 'sec', '2'], n3);
        return r.code !== 0 && /cluster key/.test(r.stderr) ? r : null;
      });
      assert.match(wrong.stderr, /^Error: volume sec's data key was wrapped by cluster key internal:v2:[0-9a-f]{12}, but .*cluster\.key holds internal:v2:[0-9a-f]{12} — this node has the wrong cluster key file.*\n$/);
      if (fuseReason === undefined) {
        const failed = await waitFor('node 3 refuses to mount sec', 60_000, async () => (await json<{ volume: string; state: string; error: string | null }[]>(['vfs', 'list'], n3))
          .find((m) => m.volume === 'sec' && m.state === 'failed'));
        assert.match(failed.error ?? '', /wrapped by cluster key internal:v2/);
      }
      assert.ok(Buffer.from((await runCli(['volume', 'read-block', 'sec', '2'], env)).stdout, 'latin1').equals(secretA), 'node 1 still reads');

      await rm(keyFile);
      await restartNode3();
      const missing = await waitFor('node 3 answers without a key file', 60_000, async () => {
        const r = await runCli(['volume', 'read-block', 'sec', '2'], n3);
        return r.code !== 0 && /is missing/.test(r.stderr) ? r : null;
      });
      assert.match(missing.stderr, /^Error: cluster key file \S+cluster\.key is missing — start the node with --key-file/);
      if (fuseReason === undefined) {
        const failed = await waitFor('node 3 refuses to mount sec without a key file', 60_000, async () => (await json<{ volume: string; state: string; error: string | null }[]>(['vfs', 'list'], n3))
          .find((m) => m.volume === 'sec' && m.state === 'failed'));
        assert.match(failed.error ?? '', /cluster key file \S+ is missing/);
      }
    } finally {
      await rename(good, keyFile);
    }
  });
});
