/**
 * The encryption comparison of `npm run bench:dataplane` (BENCH_ENCRYPT=both): the same phases
 * on a plain and an encrypted volume of the same cluster, in one run, and the ratio. The bench's
 * cluster has no metadata service (static placements), so the keyring's metadata calls are
 * answered here: the volume record, its data key wrapped by a real cluster key file in a temp
 * dir, and a writer-id counter.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createClusterKeyFile, dataKeyContext, InternalKeyProvider, newDataKey } from '../../../dataplane/client/key-providers.js';
import { VolumeKeyring, type KeyringApi } from '../../../dataplane/client/keyring.js';
import type { Volume, VolumeKeyRecord } from '../../../proto/metadata-types.js';
import { openBlock, sealBlock, writerKey } from '../../../dataplane/client/block-cipher.js';
import { tempDir } from '../../dataplane/helpers.js';

export type EncryptMode = 'off' | 'on' | 'both';

export function encryptMode(raw: string | undefined): EncryptMode {
  if (raw === undefined || raw === '' || raw === 'off') return 'off';
  if (raw === 'on' || raw === 'both') return raw;
  throw new Error(`BENCH_ENCRYPT must be off, on or both, not ${JSON.stringify(raw)}`);
}

/** A keyring that treats `encryptedVolumes` as encrypted (one data key each) and every other volume as plain. */
export async function benchKeyring(encryptedVolumes: readonly string[]): Promise<{ keyring: VolumeKeyring; close(): Promise<void> }> {
  const dir = await tempDir('bench-keys');
  const keyFile = join(dir, 'cluster.key');
  await createClusterKeyFile(keyFile);
  const provider = new InternalKeyProvider(keyFile);
  const records = new Map<string, VolumeKeyRecord>();
  for (const id of encryptedVolumes) {
    const w = await provider.wrap(dataKeyContext, newDataKey());
    records.set(id, { volumeId: id, ...w, writers: 0, wrappedAtMs: 0 });
  }
  const api: KeyringApi = {
    getVolume: (id) => Promise.resolve({ id, name: id, encrypted: records.has(id) } as Volume),
    getVolumeKey: (id) => {
      const r = records.get(id);
      return r === undefined ? Promise.reject(new Error(`no key for ${id}`)) : Promise.resolve(r);
    },
    allocateKeyWriter: (id) => {
      const r = records.get(id);
      if (r === undefined) return Promise.reject(new Error(`no key for ${id}`));
      r.writers += 1;
      return Promise.resolve(r.writers);
    },
  };
  return { keyring: new VolumeKeyring(api, provider), close: () => rm(dir, { recursive: true, force: true }) };
}

/** CPU µs (this process, user + system) to seal and to open one block of `bytes`, over `count` blocks: the cipher alone, no I/O. */
export function sealCpuMicros(bytes: number, count: number): { seal: number; open: number } {
  const key = writerKey(newDataKey(), 'bench', 1);
  const at = { volumeId: 'bench', inode: 1, blockNo: 0 };
  const data = Buffer.alloc(bytes, 7);
  const cpu = (): number => { const u = process.cpuUsage(); return u.user + u.system; };
  const bodies: Buffer[] = [];
  const t0 = cpu();
  for (let i = 0; i < count; i++) bodies.push(sealBlock(key, { writerId: 1, counter: i }, at, data));
  const t1 = cpu();
  for (const b of bodies) openBlock(key, at, b);
  const t2 = cpu();
  return { seal: (t1 - t0) / count, open: (t2 - t1) / count };
}
