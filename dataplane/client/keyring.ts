/**
 * Which volumes a BlockClient seals, and with what: the keyring asks the metadata service once
 * per volume whether it is encrypted (`Volume.encrypted`, fixed for the volume's life), fetches
 * its wrapped data key, has the key provider unwrap it, and keeps the data key in memory only.
 *
 * A writer id is taken from the metadata service (one Raft write) the first time this client
 * seals a block of the volume, and a new one whenever its counter runs out; reads derive the
 * subkey of whatever writer id a body names (a bounded cache of subkeys).
 */
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import type { MetadataApi } from '../../proto/metadata-types.js';
import { NonceSequence, openBlock, sealBlock, writerKey, generationOf } from './block-cipher.js';
import type { BlockAddr } from './block-cipher.js';
import { dataKeyContext, type KeyProvider } from './key-providers.js';

export type KeyringApi = Pick<MetadataApi, 'getVolume' | 'getVolumeKey' | 'allocateKeyWriter'>;

/** Subkeys of writers a volume's reads met, kept per volume (HKDF costs ~10 µs; a map hit ~0). */
export const maxCachedSubkeys = 1024;
/** Volumes whose keys one client keeps in memory at once. */
export const maxCachedVolumes = 4096;

export interface BlockSealer {
  seal(a: BlockAddr, plaintext: Uint8Array): Promise<Buffer>;
  open(a: BlockAddr, body: Uint8Array): Promise<Buffer>;
}

/** Seals and opens the blocks of one encrypted volume. */
export class VolumeCipher implements BlockSealer {
  private writer: { seq: NonceSequence; key: Buffer } | null = null;
  private allocating: Promise<void> | null = null;
  private readonly subkeys = new Map<number, Buffer>();

  constructor(readonly volumeId: string, private readonly dataKey: Buffer, private readonly allocate: () => Promise<number>) {}

  private async newWriter(): Promise<void> {
    const id = await this.allocate();
    this.writer = { seq: new NonceSequence(id), key: writerKey(this.dataKey, this.volumeId, id) };
  }

  async seal(a: BlockAddr, plaintext: Uint8Array): Promise<Buffer> {
    for (;;) {
      const w = this.writer;
      const counter = w?.seq.take() ?? null;
      if (w !== null && counter !== null) return sealBlock(w.key, { writerId: w.seq.writerId, counter }, a, plaintext);
      // First seal, or this writer id is used up: one allocation, however many seals wait on it.
      this.allocating ??= this.newWriter().finally(() => { this.allocating = null; });
      await this.allocating;
    }
  }

  /**
   * Opens a body read at `a` (INTEGRITY_ERROR when it does not authenticate there), on this
   * thread: WebCrypto's thread-pool form cost the calling thread more CPU than OpenSSL's whole
   * decryption here (README "Which thread").
   */
  open(a: BlockAddr, body: Uint8Array): Promise<Buffer> {
    // A refusal rejects the promise (a throw in the executor), as callers chaining it expect.
    return new Promise((resolve) => resolve(this.openNow(a, body)));
  }

  private openNow(a: BlockAddr, body: Uint8Array): Buffer {
    const g = generationOf(a, body);
    let k = this.subkeys.get(g.writerId);
    if (k === undefined) {
      k = writerKey(this.dataKey, this.volumeId, g.writerId);
      if (this.subkeys.size >= maxCachedSubkeys) this.subkeys.clear();
      this.subkeys.set(g.writerId, k);
    }
    return openBlock(k, a, body);
  }
}

export class VolumeKeyring {
  private readonly volumes = new Map<string, Promise<VolumeCipher | null>>();

  /** `provider` null: this node has no key provider, so encrypted volumes fail with KEY_UNAVAILABLE. */
  constructor(private readonly api: KeyringApi, private readonly provider: KeyProvider | null) {}

  /** The cipher of an encrypted volume, null for a plain one. */
  cipherFor(volumeId: string): Promise<VolumeCipher | null> {
    const hit = this.volumes.get(volumeId);
    if (hit !== undefined) return hit;
    if (this.volumes.size >= maxCachedVolumes) this.clear();
    const p = this.load(volumeId);
    this.volumes.set(volumeId, p);
    // A failure is not remembered: the key file may be fixed, the KMS may come back.
    p.catch(() => { if (this.volumes.get(volumeId) === p) this.volumes.delete(volumeId); });
    return p;
  }

  private async load(volumeId: string): Promise<VolumeCipher | null> {
    const vol = await this.api.getVolume(volumeId);
    if (vol.encrypted !== true) return null;
    if (this.provider === null) {
      throw new GalleonError('KEY_UNAVAILABLE', `volume ${vol.name} is encrypted, but this node has no key provider`, {
        hint: 'start the daemon with --key-file (the cluster key file) or --kms-address and --kms-key',
      });
    }
    const rec = await this.api.getVolumeKey(vol.id);
    const dataKey = await this.provider.unwrap(dataKeyContext, rec, `volume ${vol.name}`);
    return new VolumeCipher(vol.id, dataKey, () => this.api.allocateKeyWriter(vol.id));
  }

  /**
   * Drops what is known of a volume (after VOLUME_NOT_FOUND: it was deleted). Not wiped here:
   * a seal in flight may still hold the cipher; the garbage collector takes the key with it.
   */
  forget(volumeId: string): void {
    this.volumes.delete(volumeId);
  }

  clear(): void {
    for (const id of [...this.volumes.keys()]) this.forget(id);
  }
}

/** True for errors after which a volume's cached key must not be used again. */
export function dropsKey(err: unknown): boolean {
  return isGalleonError(err, 'VOLUME_NOT_FOUND');
}
