/**
 * Volumes of an encrypted class created through the metadata API itself (issue #12): the daemons
 * wrap a data key before they create one (cli/daemon/keys.ts), but a program calling the gRPC API
 * directly — with a user's token or the node credential — used to get a volume the data plane
 * would write in clear. The leader's member now wraps a key itself with the cluster's key provider
 * (metadata/service/volume-key-gate.ts), for creates and clones alike; a member without a provider
 * refuses (test/metadata/service/member.test.ts). The controls: a class without encryption takes no
 * key, the daemon's own path keeps wrapping its own, and a member-keyed volume reads back through
 * the daemon (same provider).
 */
import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UpResult } from '../../cli/local/cluster.js';
import { loadTlsDir } from '../../cli/lib/tls.js';
import { MetadataClient } from '../../metadata/service/client.js';
import type { Volume } from '../../proto/metadata-types.js';
import { upClientEnv } from '../support/tls.js';
import { cliJson, killClusterDir, makeTempDir, runCli } from './helpers.js';

describe('encrypted classes through the metadata API (integration)', function () {
  this.timeout(180_000);
  let root = '';
  let dir = '';
  let up: UpResult;
  let env: Record<string, string> = {};
  let api: MetadataClient | null = null;

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-api-enc-');
    dir = join(root, 'cluster');
    const r = await runCli(['up', '--no-first-volume', '--dir', dir, '--nodes', '1', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    up = JSON.parse(r.stdout) as UpResult;
    const client = upClientEnv(dir);
    assert.ok(client.GALLEON_TOKEN !== undefined, 'galleon up wrote an admin token');
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...client, GALLEON_TOKEN: client.GALLEON_TOKEN };
    const node = up.cluster.nodes[0];
    assert.ok(node !== undefined);
    api = new MetadataClient({ addresses: [node.bindAddress], tls: await loadTlsDir(client.GALLEON_TLS_DIR, 'cli'), token: client.GALLEON_TOKEN, callDeadlineMs: 10_000 });
    // One node: an encrypted class that fits it.
    await api.createStorageClass({ name: 'enc-one', encryption: true, replicas: 1, writeConcern: 'durable' });
  });

  after(async function () {
    this.timeout(60_000);
    api?.close();
    if (dir !== '') {
      await runCli(['down', '--dir', dir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(dir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('a user\'s API create of an encrypted-class volume without a wrapped key gets one from the member; its blocks are sealed and read back', async () => {
    const a = api as MetadataClient;
    const v = await a.createVolume({ name: 'raw-api', size: '1M', storageClass: 'enc-one', replicas: 1 });
    // `encrypted` is set by the state machine only with a wrapped key (metadata/state/logic/volume-keys.ts).
    assert.equal(v.encrypted, true);
    const w = await runCli(['volume', 'write-block', 'raw-api', '0', '--data', 'sealed-by-member-key'], env);
    assert.equal(w.code, 0, w.stderr);
    const r = await runCli(['volume', 'read-block', 'raw-api', '0'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sealed-by-member-key/);
  });

  it('the node credential\'s API create and clone get a key too; the daemon\'s path (which wraps its own) and a class without encryption as before', async () => {
    const nodeApi = new MetadataClient({ addresses: [up.cluster.nodes[0]?.bindAddress ?? ''], tls: await loadTlsDir(upClientEnv(dir).GALLEON_TLS_DIR, 'cli'), token: (await readFile(join(dir, 'node-token'), 'utf8')).trim(), callDeadlineMs: 10_000 });
    try {
      assert.equal((await nodeApi.createVolume({ name: 'node-api', size: '1M', storageClass: 'enc-one', replicas: 1 })).encrypted, true);
      const a = api as MetadataClient;
      const plain = await a.createVolume({ name: 'plain-api', size: '1M', storageClass: 'fast-local-ssd', replicas: 1 });
      assert.equal(plain.encrypted, undefined);
      const viaDaemon = await cliJson<Volume>(['volume', 'create', '--name', 'via-daemon', '--size', '1M', '--storage-class', 'enc-one', '--replicas', '1'], env);
      assert.equal(viaDaemon.encrypted, true);
      const snap = await cliJson<{ name: string }>(['snapshot', 'create', 'via-daemon', '--name', 'enc-snap'], env);
      assert.equal((await nodeApi.cloneVolume(snap.name, 'node-clone')).encrypted, true);
    } finally {
      nodeApi.close();
    }
  });

  it('a user\'s API clone of an encrypted volume\'s snapshot without a wrapped key gets its own key; the daemon\'s clone too', async () => {
    const a = api as MetadataClient;
    const raw = await a.cloneVolume('enc-snap', 'raw-clone');
    assert.equal(raw.encrypted, true);
    const viaDaemon = await cliJson<Volume>(['volume', 'clone', 'enc-snap', '--name', 'keyed-clone'], env);
    assert.equal(viaDaemon.encrypted, true);
    const keys = await cliJson<{ volume: string }[]>(['key', 'list'], env);
    for (const name of ['raw-api', 'node-api', 'via-daemon', 'node-clone', 'raw-clone', 'keyed-clone']) assert.ok(keys.some((k) => k.volume === name), `${name} has a wrapped data key`);
    // A snapshot of a plain volume clones through the API as before.
    await cliJson(['snapshot', 'create', 'plain-api', '--name', 'plain-snap'], env);
    assert.equal((await a.cloneVolume('plain-snap', 'plain-clone')).encrypted, undefined);
  });
});
