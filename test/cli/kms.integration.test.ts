/**
 * The external key provider end to end: a real daemon (`galleon daemon start -d --kms-address
 * --kms-key`, token from GALLEON_KMS_TOKEN) against the local implementation of Vault's transit
 * API (test/support/vault-transit.ts). An encrypted volume's data key is wrapped by the KMS,
 * blocks round-trip, `key rotate` rotates the transit key and re-wraps through `rewrap`, and a
 * daemon restarted with a wrong token reads nothing of that volume — one line naming the KMS's
 * refusal — while the KMS is never given a block.
 */
import { strict as assert } from 'node:assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Volume } from '../../proto/metadata-types.js';
import type { KeyListEntry, KeyRotateResult } from '../../cli/daemon/keys.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { osFreePort } from '../../cli/local/ports.js';
import { startVaultTransit, type VaultTransitServer } from '../support/vault-transit.js';
import { cliJson, killClusterDir, killDaemonAt, makeTempDir, runCli, waitFor } from './helpers.js';

describe('Vault transit as the key provider of a real daemon (integration)', function () {
  this.timeout(120_000);
  let root = '';
  let storage = '';
  let vault: VaultTransitServer;
  let env: Record<string, string> = {};
  let startArgs: string[] = [];
  let bindAddress = '';

  async function start(token: string): Promise<void> {
    const r = await runCli(startArgs, { GALLEON_KMS_TOKEN: token });
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the daemon serving', 30_000, async () => (await runCli(['node', 'list', '--json'], env)).code === 0);
  }

  before(async () => {
    vault = await startVaultTransit();
    const made = await fetch(`${vault.address}/v1/transit/keys/galleon`, { method: 'POST', headers: { 'x-vault-token': vault.token } });
    assert.equal(made.status, 204);
    root = await makeTempDir('galleon-kms-');
    storage = join(root, 'node');
    const [bind, ipc, data] = [await osFreePort(), await osFreePort(), await osFreePort()];
    bindAddress = `127.0.0.1:${bind}`;
    env = { GALLEON_ADDRESS: `127.0.0.1:${ipc}` };
    // TLS is not the point here (test/cli/tls.integration.test.ts): a plaintext daemon.
    startArgs = ['daemon', 'start', '-d', '--insecure-plaintext', '--storage-path', storage, '--bind-address', bindAddress, '--ipc-address', env.GALLEON_ADDRESS ?? '',
      '--data-address', `127.0.0.1:${data}`, '--target-voters', '1', '--kms-address', vault.address, '--kms-key', 'galleon'];
    await start(vault.token);
    const classFile = join(root, 'class.yaml');
    await writeFile(classFile, 'name: kms-encrypted\nencryption: true\nreplicas: 1\nwrite_concern: durable\n');
    assert.equal((await runCli(['storage-class', 'create', classFile], env)).code, 0);
  });

  after(async () => {
    await killDaemonAt(storage);
    if (root !== '') await killClusterDir(root);
    await vault.close();
  });

  it('wraps a new volume\'s data key with the transit key and round-trips blocks', async () => {
    const vol = await cliJson<Volume>(['volume', 'create', '--name', 'kv', '--size', '1M', '--block-size', '4K', '-c', 'kms-encrypted'], env);
    assert.equal(vol.encrypted, true);
    const keys = await cliJson<KeyListEntry[]>(['key', 'list'], env);
    assert.deepEqual(keys.map((k) => [k.volume, k.provider, k.keyId]), [['kv', 'vault', 'vault:galleon']]);
    assert.equal(vault.calls.encrypt, 1);
    assert.equal((await runCli(['volume', 'write-block', 'kv', '0', '--data', 'kept by the KMS'], env)).code, 0);
    const back = await runCli(['volume', 'read-block', 'kv', '0'], env);
    assert.equal(back.stdout, 'kept by the KMS');
    assert.equal(vault.calls.decrypt, 1, 'one unwrap per volume per process, not one per block');
  });

  it('key rotate rotates the transit key and re-wraps through rewrap', async () => {
    const r = await cliJson<KeyRotateResult>(['key', 'rotate'], env);
    assert.deepEqual(r.rewrapped.map((x) => x.volume), ['kv']);
    assert.deepEqual(r.failed, []);
    assert.equal(vault.calls['keys/rotate'], 1);
    assert.equal(vault.calls.rewrap, 1);
    const meta = new MetadataClient({ addresses: [bindAddress], clientId: 'kms-test' });
    try {
      const vol = await meta.getVolume('kv');
      assert.match((await meta.getVolumeKey(vol.id)).wrapped, /^vault:v2:/);
    } finally {
      meta.close();
    }
  });

  it('restarted with a wrong token, the daemon reads nothing of the volume: one line with the KMS\'s refusal', async () => {
    assert.equal((await runCli(['daemon', 'stop'], env)).code, 0);
    await waitFor('the daemon gone', 30_000, async () => (await runCli(['daemon', 'status'], env)).code !== 0);
    await start('not-the-token');
    const r = await runCli(['volume', 'read-block', 'kv', '0'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^Error: KMS refused decrypt\/galleon: permission denied — check the KMS token \(VAULT_TOKEN\) and its policy\n$/);
    assert.equal((await runCli(['daemon', 'stop'], env)).code, 0);
    await waitFor('the daemon gone', 30_000, async () => (await runCli(['daemon', 'status'], env)).code !== 0);
    await start(vault.token);
    assert.equal((await runCli(['volume', 'read-block', 'kv', '0'], env)).stdout, 'kept by the KMS', 'the rotated wrap opens after a restart');
  });
});
