/**
 * Volumes of an encrypted class created through the metadata API itself (issue #12, gap 6): the
 * daemons wrap a data key before they create one (cli/daemon/keys.ts), but a program with a token
 * calling the gRPC API directly used to get a volume the data plane would write in clear. The
 * guard (metadata/service/auth-guard.ts `requireDataKey`) now refuses such a spec with one line and
 * a hint, and nothing is created. The controls: the same call for a class without encryption, and
 * the daemon's own path (`galleon volume create`), which wraps the key, both create the volume.
 * The same for clones of an encrypted volume's snapshot (`requireCloneKey`).
 */
import { strict as assert } from 'node:assert';
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

  it('refuses a user\'s API create of an encrypted-class volume without a wrapped key; nothing is created', async () => {
    const a = api as MetadataClient;
    for (const spec of [{ name: 'raw-api', size: '1M', storageClass: 'enc-one', replicas: 1 }, { name: 'raw-default', size: '1M', replicas: 1 }]) {
      await assert.rejects(a.createVolume(spec), (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, 'INVALID_ARGUMENT');
        assert.match(err.message, /^storage class (enc-one|encrypted-storage) encrypts, and this volume spec has no wrapped data key \(dataKey\)$/);
        assert.match(err.hint ?? '', /galleon volume create/);
        return true;
      });
    }
    assert.deepEqual((await a.listVolumes()).map((v) => v.name), [], 'nothing was created');
  });

  it('the controls: a class without encryption through the API, and the daemon\'s path (which wraps a key) for the encrypted class', async () => {
    const a = api as MetadataClient;
    const plain = await a.createVolume({ name: 'plain-api', size: '1M', storageClass: 'fast-local-ssd', replicas: 1 });
    assert.equal(plain.encrypted, undefined);
    const viaDaemon = await cliJson<Volume>(['volume', 'create', '--name', 'via-daemon', '--size', '1M', '--storage-class', 'enc-one', '--replicas', '1'], env);
    // `encrypted` is set by the state machine only with a wrapped key (metadata/state/logic/volume-keys.ts).
    assert.equal(viaDaemon.encrypted, true);
  });

  it('refuses a user\'s API clone of an encrypted volume\'s snapshot without a wrapped key; the daemon\'s clone gets its own key', async () => {
    const a = api as MetadataClient;
    const snap = await cliJson<{ name: string }>(['snapshot', 'create', 'via-daemon', '--name', 'enc-snap'], env);
    await assert.rejects(a.cloneVolume(snap.name, 'raw-clone'), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(err.message, 'snapshot enc-snap is of encrypted volume via-daemon, and this clone has no wrapped data key (dataKey)');
      assert.match(err.hint ?? '', /galleon volume clone/);
      return true;
    });
    assert.ok(!(await a.listVolumes()).some((v) => v.name === 'raw-clone'), 'nothing was created');
    const viaDaemon = await cliJson<Volume>(['volume', 'clone', 'enc-snap', '--name', 'keyed-clone'], env);
    assert.equal(viaDaemon.encrypted, true);
    // A snapshot of a plain volume clones through the API as before.
    await cliJson(['snapshot', 'create', 'plain-api', '--name', 'plain-snap'], env);
    assert.equal((await a.cloneVolume('plain-snap', 'plain-clone')).encrypted, undefined);
  });
});
