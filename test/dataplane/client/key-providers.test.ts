/**
 * The key providers against real files and a real HTTP server: the cluster key file (made
 * 0600, never overwritten, refused when others can read it), wrap/unwrap/rewrap/rotate of the
 * internal provider, and the Vault transit provider against test/support/vault-transit.ts.
 * Every wrong key gives KEY_UNAVAILABLE with one clear line and a hint.
 */
import { strict as assert } from 'node:assert';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isGalleonError } from '../../../proto/errors.js';
import { createClusterKeyFile, InternalKeyProvider, newDataKey, VaultTransitProvider } from '../../../dataplane/client/key-providers.js';
import { startVaultTransit, type VaultTransitServer } from '../../support/vault-transit.js';

async function keyUnavailable(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => isGalleonError(e, 'KEY_UNAVAILABLE') && pattern.test(e.message) && !e.message.includes('\n') && e.hint !== undefined);
}

describe('key providers', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'galleon-keys-')); });
  after(async () => { if (dir !== '') await rm(dir, { recursive: true, force: true }); });

  describe('internal (cluster key file)', () => {
    it('makes the file 0600 and never overwrites it', async () => {
      const f = join(dir, 'a.key');
      await createClusterKeyFile(f);
      assert.equal((await stat(f)).mode & 0o777, 0o600);
      const before = await readFile(f);
      await assert.rejects(createClusterKeyFile(f), /EEXIST/);
      assert.ok((await readFile(f)).equals(before));
    });

    it('wraps, unwraps, binds the wrap to the volume, rotates and re-wraps', async () => {
      const f = join(dir, 'b.key');
      await createClusterKeyFile(f);
      const p = new InternalKeyProvider(f);
      const dk = newDataKey();
      const w = await p.wrap('vol-1', dk);
      assert.match(w.keyId, /^internal:v1:[0-9a-f]{12}$/);
      assert.ok(!w.wrapped.includes(dk.toString('base64')));
      assert.ok((await p.unwrap('vol-1', w)).equals(dk));
      await keyUnavailable(p.unwrap('vol-2', w, 'volume v2'), /volume v2's wrapped data key does not open/);
      const id2 = await p.rotate();
      assert.match(id2, /^internal:v2:/);
      assert.equal((await stat(f)).mode & 0o777, 0o600);
      assert.ok((await p.unwrap('vol-1', w)).equals(dk), 'a key wrapped under v1 still opens after the rotation');
      const w2 = await p.rewrap('vol-1', w);
      assert.equal(w2.keyId, id2);
      assert.notEqual(w2.wrapped, w.wrapped);
      assert.ok((await p.unwrap('vol-1', w2)).equals(dk));
    });

    it('refuses a missing, world-readable, foreign or garbled key file with one clear line', async () => {
      const f = join(dir, 'c.key');
      await createClusterKeyFile(f);
      const w = await new InternalKeyProvider(f).wrap('v', newDataKey());
      await keyUnavailable(new InternalKeyProvider(join(dir, 'nope.key')).unwrap('v', w), /is missing/);
      const other = join(dir, 'd.key');
      await createClusterKeyFile(other);
      await keyUnavailable(new InternalKeyProvider(other).unwrap('v', w), /wrong cluster key file|but .* holds/);
      await chmod(other, 0o644);
      await keyUnavailable(new InternalKeyProvider(other).unwrap('v', w), /readable by others/);
      const junk = join(dir, 'e.key');
      await writeFile(junk, 'not json', { mode: 0o600 });
      await keyUnavailable(new InternalKeyProvider(junk).unwrap('v', w), /not a galleon key file/);
    });
  });

  describe('vault transit (local implementation of its HTTP API)', () => {
    let vault: VaultTransitServer;
    before(async () => {
      vault = await startVaultTransit();
      const r = await fetch(`${vault.address}/v1/transit/keys/galleon`, { method: 'POST', headers: { 'x-vault-token': vault.token } });
      assert.equal(r.status, 204);
    });
    after(async () => { await vault.close(); });

    it('wraps through encrypt, unwraps through decrypt, rewraps after a rotation', async () => {
      const p = new VaultTransitProvider({ address: vault.address, keyName: 'galleon', token: vault.token });
      const dk = newDataKey();
      const w = await p.wrap('vol', dk);
      assert.match(w.wrapped, /^vault:v1:/);
      assert.ok((await p.unwrap('vol', w)).equals(dk));
      await p.rotate();
      const w2 = await p.rewrap('vol', w);
      assert.match(w2.wrapped, /^vault:v2:/);
      assert.ok((await p.unwrap('vol', w2)).equals(dk));
      assert.equal(vault.calls.rewrap, 1);
      assert.equal(vault.calls['keys/rotate'], 1);
    });

    it('a wrong token, an unknown key or a dead KMS is KEY_UNAVAILABLE with a hint', async () => {
      const good = new VaultTransitProvider({ address: vault.address, keyName: 'galleon', token: vault.token });
      const w = await good.wrap('vol', newDataKey());
      await keyUnavailable(new VaultTransitProvider({ address: vault.address, keyName: 'galleon', token: 'wrong' }).unwrap('vol', w), /permission denied/);
      await keyUnavailable(new VaultTransitProvider({ address: vault.address, keyName: 'missing', token: vault.token }).wrap('vol', newDataKey()), /encryption key not found/);
      await keyUnavailable(new VaultTransitProvider({ address: 'http://127.0.0.1:1', keyName: 'galleon', token: vault.token, timeoutMs: 2000 }).unwrap('vol', w), /unreachable/);
      await keyUnavailable(new InternalKeyProvider(join(dir, 'x.key')).unwrap('vol', w), /not by the cluster key file/);
    });
  });
});
