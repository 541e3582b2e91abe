/**
 * The daemon's keys: which provider wraps new volumes' data keys (the cluster key file, or a
 * Vault transit engine when `--kms-address` is given), the keyring its block clients seal with,
 * and `galleon key rotate` / `key list`.
 *
 * The cluster key file is made (mode 0600) only when this node starts a new cluster on an
 * empty storage path: a node that joins, or restarts, never makes one, so a lost or wrong file
 * shows up as KEY_UNAVAILABLE naming the key it needs instead of a fresh key that opens nothing.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';
import type { MetadataApi, VolumeKeyRecord, VolumeSpec, WrappedDataKey } from '../../proto/metadata-types.js';
import { createClusterKeyFile, dataKeyContext, InternalKeyProvider, newDataKey, VaultTransitProvider, type KeyProvider } from '../../dataplane/client/key-providers.js';
import { VolumeKeyring, type KeyringApi } from '../../dataplane/client/keyring.js';
import type { DaemonConfig } from './types.js';

export const clusterKeyFileName = 'cluster.key';
/** Under the storage path: the key file this node was last started with (a restart without --key-file uses it again). */
export const keyFilePointerName = 'key-file.path';

/**
 * The key file to use: --key-file (remembered under the storage path, as the node id is), else
 * the one remembered from an earlier start, else `<storage>/cluster.key`.
 */
async function rememberedKeyFile(cfg: DaemonConfig): Promise<string> {
  const pointer = join(cfg.storagePath, keyFilePointerName);
  if (cfg.keyFile !== null) {
    const abs = resolve(cfg.keyFile);
    if ((await readFile(pointer, 'utf8').catch(() => '')).trim() !== abs) await writeFile(pointer, `${abs}\n`);
    return abs;
  }
  const remembered = (await readFile(pointer, 'utf8').catch(() => '')).trim();
  return remembered !== '' ? remembered : join(cfg.storagePath, clusterKeyFileName);
}
/** Volumes re-wrapped at once by `key rotate` (each is one KMS call and one Raft write). */
export const rotateConcurrency = 8;

export interface KeyRotateResult {
  provider: string;
  keyId: string;
  rewrapped: { volume: string; volumeId: string; from: string; to: string }[];
  failed: { volume: string; volumeId: string; error: string }[];
}

export interface KeyListEntry {
  volume: string;
  volumeId: string;
  provider: string;
  keyId: string;
  writers: number;
  wrappedAtMs: number;
}

function keyError(message: string, hint: string): GalleonError {
  return new GalleonError(ErrorCode.KEY_UNAVAILABLE, message, { hint });
}

/**
 * Wraps with one provider (the configured one) and unwraps with whichever the record names, so
 * a cluster can move from the key file to a KMS: `key rotate` re-wraps every key under the
 * current provider.
 */
export class ProviderSet implements KeyProvider {
  readonly name: KeyProvider['name'];

  constructor(private readonly current: KeyProvider, private readonly all: readonly KeyProvider[]) {
    this.name = current.name;
  }

  private of(w: WrappedDataKey): KeyProvider {
    const p = this.all.find((x) => x.name === w.provider);
    if (p === undefined) throw keyError(`data key wrapped by ${w.provider} (${w.keyId}), which this node is not configured for`, w.provider === 'vault' ? 'start the daemon with --kms-address and --kms-key' : 'start the daemon with --key-file');
    return p;
  }

  wrap(context: string, dataKey: Buffer): Promise<WrappedDataKey> { return this.current.wrap(context, dataKey); }
  unwrap(context: string, w: WrappedDataKey, what?: string): Promise<Buffer> { return this.of(w).unwrap(context, w, what); }
  rotate(): Promise<string> { return this.current.rotate(); }

  async rewrap(context: string, w: WrappedDataKey, what?: string): Promise<WrappedDataKey> {
    if (w.provider === this.current.name) return this.current.rewrap(context, w, what);
    const key = await this.of(w).unwrap(context, w, what);
    try {
      return await this.current.wrap(context, key);
    } finally {
      key.fill(0);
    }
  }
}

export class DaemonKeys {
  private constructor(readonly provider: ProviderSet, readonly keyFile: string, private readonly log: Logger) {}

  /** `newCluster`: this node starts a new cluster on an empty storage path (it may make the key file). */
  static async open(cfg: DaemonConfig, newCluster: boolean, log: Logger): Promise<DaemonKeys> {
    const keyFile = await rememberedKeyFile(cfg);
    if (newCluster && !existsSync(keyFile)) {
      await createClusterKeyFile(keyFile);
      log.info({ keyFile }, 'made the cluster key file (mode 0600): copy it to every node that should read encrypted volumes, and keep a backup');
    }
    const internal = new InternalKeyProvider(keyFile);
    let current: KeyProvider = internal;
    if (cfg.kms !== null) {
      const token = process.env.GALLEON_KMS_TOKEN ?? process.env.VAULT_TOKEN ?? '';
      if (token === '') throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `--kms-address ${cfg.kms.address} needs a token`, { hint: 'export GALLEON_KMS_TOKEN (or VAULT_TOKEN) before starting the daemon' });
      current = new VaultTransitProvider({ address: cfg.kms.address, keyName: cfg.kms.keyName, token });
    }
    return new DaemonKeys(new ProviderSet(current, current === internal ? [internal] : [current, internal]), keyFile, log);
  }

  keyring(api: KeyringApi): VolumeKeyring {
    return new VolumeKeyring(api, this.provider);
  }

  /** A fresh data key wrapped by the current provider (the metadata member's own wrapping, metadata/service/volume-key-gate.ts). */
  async wrapNewKey(): Promise<WrappedDataKey> {
    const key = newDataKey();
    try {
      return await this.provider.wrap(dataKeyContext, key);
    } finally {
      key.fill(0);
    }
  }

  /** The spec with a freshly wrapped data key when its class encrypts (the class default is resolved here too). */
  async withDataKey(api: MetadataApi, spec: VolumeSpec, defaultClass: string): Promise<VolumeSpec> {
    const sc = await api.getStorageClass(spec.storageClass ?? defaultClass);
    if (!sc.encryption) return spec;
    const key = newDataKey();
    try {
      return { ...spec, storageClass: sc.name, dataKey: await this.provider.wrap(dataKeyContext, key) };
    } finally {
      key.fill(0);
    }
  }

  async list(api: MetadataApi): Promise<KeyListEntry[]> {
    const out: KeyListEntry[] = [];
    for (const v of (await api.listVolumes()).filter((x) => x.encrypted === true)) {
      const r = await api.getVolumeKey(v.id);
      out.push({ volume: v.name, volumeId: v.id, provider: r.provider, keyId: r.keyId, writers: r.writers, wrappedAtMs: r.wrappedAtMs });
    }
    return out;
  }

  /** A new KEK version, then every encrypted volume's data key re-wrapped under it (blocks untouched). */
  async rotate(api: MetadataApi): Promise<KeyRotateResult> {
    const keyId = await this.provider.rotate();
    const volumes = (await api.listVolumes()).filter((x) => x.encrypted === true);
    const result: KeyRotateResult = { provider: this.provider.name, keyId, rewrapped: [], failed: [] };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < volumes.length) {
        const v = volumes[next++];
        if (v === undefined) return;
        try {
          const rec: VolumeKeyRecord = await api.getVolumeKey(v.id);
          const w = await this.provider.rewrap(dataKeyContext, rec, `volume ${v.name}`);
          await api.rewrapVolumeKey(v.id, rec.wrapped, w);
          result.rewrapped.push({ volume: v.name, volumeId: v.id, from: rec.keyId, to: w.keyId });
        } catch (err) {
          // Deleted meanwhile: its key is gone with it, nothing left to re-wrap.
          if (!isGalleonError(err, ErrorCode.VOLUME_NOT_FOUND)) result.failed.push({ volume: v.name, volumeId: v.id, error: (err as Error).message });
        }
      }
    };
    await Promise.all(Array.from({ length: rotateConcurrency }, worker));
    result.rewrapped.sort((a, b) => a.volume.localeCompare(b.volume));
    result.failed.sort((a, b) => a.volume.localeCompare(b.volume));
    this.log.info({ keyId, rewrapped: result.rewrapped.length, failed: result.failed.length }, 'key rotate: data keys re-wrapped');
    return result;
  }
}
