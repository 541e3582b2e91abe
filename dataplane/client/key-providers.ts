/**
 * Key-encryption keys (KEKs): they wrap each volume's data key, and only the wrapped form is
 * stored (in the metadata service). Two providers:
 *
 * - `InternalKeyProvider`: a cluster key file (JSON, mode 0600, made once with
 *   `createClusterKeyFile`, never overwritten) holding numbered 256-bit KEK versions. Wrapping is
 *   AES-256-GCM with a random 96-bit nonce; wraps are rare (one per volume created or rotated),
 *   so the birthday bound (2^32 wraps per KEK version) is out of reach. The wrap is bound to a
 *   context string (associated data; `dataKeyContext` for volume keys: a key is wrapped before
 *   the state machine names its volume, so it cannot be bound to the volume id).
 * - `VaultTransitProvider`: HashiCorp Vault's transit engine over HTTP (encrypt / decrypt /
 *   rewrap / keys/:name/rotate, token in `X-Vault-Token`). The KEK never leaves Vault.
 *
 * Rotation moves the KEK to a new version and re-wraps each data key (`rewrap`): the data keys,
 * and so every block on disk, stay as they are.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, stat } from 'node:fs/promises';
import { request } from 'undici';
import { GalleonError, invariant } from '../../proto/errors.js';
import type { KeyProviderName, WrappedDataKey } from '../../proto/metadata-types.js';
import { dataKeyBytes } from './block-cipher.js';

/** The context volume data keys are wrapped under (see the header). */
export const dataKeyContext = 'galleon volume data key';

/** `context` is bound to the wrap (internal provider): unwrap needs the same one. Errors name `what`. */
export interface KeyProvider {
  readonly name: KeyProviderName;
  wrap(context: string, dataKey: Buffer): Promise<WrappedDataKey>;
  unwrap(context: string, w: WrappedDataKey, what?: string): Promise<Buffer>;
  /** Wraps again under the provider's current KEK version (the data key is unchanged). */
  rewrap(context: string, w: WrappedDataKey, what?: string): Promise<WrappedDataKey>;
  /** Starts a new KEK version; later wraps and rewraps use it. Returns its key id. */
  rotate(): Promise<string>;
}

export function newDataKey(): Buffer {
  return randomBytes(dataKeyBytes);
}

function keyError(message: string, hint: string, cause?: unknown): GalleonError {
  return new GalleonError('KEY_UNAVAILABLE', message, { hint, ...(cause === undefined ? {} : { cause }) });
}

// ---- internal: the cluster key file -------------------------------------------------------

interface KeyFile {
  format: 'galleon-cluster-key';
  current: number;
  /** version → base64 of 32 bytes */
  keys: Record<string, string>;
}

const keyFileFormat = 'galleon-cluster-key';
const wrapLabel = 'galleon data key v1';
const wrapNonceBytes = 12;
const wrapTagBytes = 16;

function fingerprint(kek: Buffer): string {
  return createHash('sha256').update(kek).digest('hex').slice(0, 12);
}

/** Makes a new cluster key file (one KEK version) at `path`, mode 0600; refuses to overwrite one. */
export async function createClusterKeyFile(path: string): Promise<void> {
  const body: KeyFile = { format: keyFileFormat, current: 1, keys: { 1: randomBytes(dataKeyBytes).toString('base64') } };
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readKeyFile(path: string): Promise<KeyFile> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw keyError(`cluster key file ${path} is missing`, 'start the node with --key-file pointing at the cluster\'s key file (galleon up makes <dir>/cluster.key)', err);
  }
  if ((st.mode & 0o077) !== 0) {
    throw keyError(`cluster key file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)})`, `chmod 600 ${path}`);
  }
  let f: KeyFile;
  try {
    f = JSON.parse(await readFile(path, 'utf8')) as KeyFile;
  } catch (err) {
    throw keyError(`cluster key file ${path} is not a galleon key file`, 'restore the cluster key file from its backup', err);
  }
  if (f.format !== keyFileFormat || !Number.isSafeInteger(f.current) || typeof f.keys !== 'object' || Buffer.from(f.keys[String(f.current)] ?? '', 'base64').length !== dataKeyBytes) {
    throw keyError(`cluster key file ${path} is not a galleon key file`, 'restore the cluster key file from its backup');
  }
  return f;
}

export class InternalKeyProvider implements KeyProvider {
  readonly name = 'internal' as const;

  constructor(readonly path: string) {}

  /** The KEK of `version`; the file is read each time (rotations on another node show up). */
  private async kek(version?: number): Promise<{ version: number; key: Buffer; keyId: string }> {
    const f = await readKeyFile(this.path);
    const v = version ?? f.current;
    const raw = f.keys[String(v)];
    if (raw === undefined) throw keyError(`cluster key file ${this.path} has no key version ${v}`, 'this node has an older copy of the cluster key file: copy the current one from the node that ran galleon key rotate');
    const key = Buffer.from(raw, 'base64');
    return { version: v, key, keyId: `internal:v${v}:${fingerprint(key)}` };
  }

  async wrap(context: string, dataKey: Buffer): Promise<WrappedDataKey> {
    invariant(dataKey.length === dataKeyBytes, 'data key length');
    const k = await this.kek();
    const nonce = randomBytes(wrapNonceBytes);
    const c = createCipheriv('aes-256-gcm', k.key, nonce);
    c.setAAD(Buffer.from(`${wrapLabel}|${k.keyId}|${context}`));
    const ct = Buffer.concat([c.update(dataKey), c.final()]);
    return { provider: 'internal', keyId: k.keyId, wrapped: Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64') };
  }

  async unwrap(context: string, w: WrappedDataKey, volumeId = 'the volume'): Promise<Buffer> {
    const m = /^internal:v(\d+):([0-9a-f]{12})$/.exec(w.keyId);
    if (w.provider !== 'internal' || m === null) throw keyError(`${volumeId}'s data key is wrapped by ${w.provider} (${w.keyId}), not by the cluster key file`, 'configure the key provider the volume was created with');
    const k = await this.kek(Number(m[1]));
    if (k.keyId !== w.keyId) {
      throw keyError(`${volumeId}'s data key was wrapped by cluster key ${w.keyId}, but ${this.path} holds ${k.keyId}`, 'this node has the wrong cluster key file: use the one of the cluster that created the volume');
    }
    const b = Buffer.from(w.wrapped, 'base64');
    const d = createDecipheriv('aes-256-gcm', k.key, b.subarray(0, wrapNonceBytes));
    d.setAAD(Buffer.from(`${wrapLabel}|${k.keyId}|${context}`));
    d.setAuthTag(b.subarray(b.length - wrapTagBytes));
    try {
      const key = Buffer.concat([d.update(b.subarray(wrapNonceBytes, b.length - wrapTagBytes)), d.final()]);
      invariant(key.length === dataKeyBytes, 'unwrapped data key length');
      return key;
    } catch (err) {
      throw keyError(`${volumeId}'s wrapped data key does not open with cluster key ${k.keyId}`, 'the wrapped key in the metadata service was changed', err);
    }
  }

  async rewrap(context: string, w: WrappedDataKey, what?: string): Promise<WrappedDataKey> {
    const key = await this.unwrap(context, w, what);
    try {
      return await this.wrap(context, key);
    } finally {
      key.fill(0);
    }
  }

  /** Adds KEK version current+1 to the file (written aside, synced, renamed over it: never half-written). */
  async rotate(): Promise<string> {
    const f = await readKeyFile(this.path);
    const next = Math.max(...Object.keys(f.keys).map(Number)) + 1;
    const body: KeyFile = { ...f, current: next, keys: { ...f.keys, [next]: randomBytes(dataKeyBytes).toString('base64') } };
    const tmp = `${this.path}.rotate-${process.pid}`;
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    return (await this.kek()).keyId;
  }
}

// ---- external: Vault's transit engine over HTTP --------------------------------------------

export interface VaultTransitOptions {
  /** http(s)://host:port of the Vault server. */
  address: string;
  keyName: string;
  token: string;
  /** Mount path of the transit engine (default "transit"). */
  mount?: string;
  timeoutMs?: number;
}

export const defaultKmsTimeoutMs = 10_000;
/** A KMS answer larger than this is refused (a wrapped key is well under 1 KiB). */
export const maxKmsResponseBytes = 64 * 1024;

export class VaultTransitProvider implements KeyProvider {
  readonly name = 'vault' as const;

  constructor(private readonly o: VaultTransitOptions) {}

  private get keyId(): string {
    return `vault:${this.o.keyName}`;
  }

  private async call(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const url = `${this.o.address.replace(/\/$/, '')}/v1/${this.o.mount ?? 'transit'}/${path}`;
    const timeoutMs = this.o.timeoutMs ?? defaultKmsTimeoutMs;
    let res;
    try {
      res = await request(url, {
        method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-vault-token': this.o.token },
        headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      });
    } catch (err) {
      throw keyError(`KMS at ${this.o.address} is unreachable (${(err as Error).message})`, 'check --kms-address and that the KMS is up', err);
    }
    const text = await res.body.text();
    if (text.length > maxKmsResponseBytes) throw keyError(`KMS at ${this.o.address} answered ${text.length} bytes for ${path}`, 'check --kms-address points at a Vault transit engine');
    let json: { data?: Record<string, unknown>; errors?: unknown[] } = {};
    try {
      json = text === '' ? {} : JSON.parse(text) as typeof json;
    } catch {
      // fall through: reported below with the status
    }
    if (res.statusCode >= 300) {
      const why = Array.isArray(json.errors) ? json.errors.map(String).join('; ') : `HTTP ${res.statusCode}`;
      throw keyError(`KMS refused ${path}: ${why}`, res.statusCode === 403 ? 'check the KMS token (VAULT_TOKEN) and its policy' : `check that transit key ${this.o.keyName} exists`);
    }
    return json.data ?? {};
  }

  private ciphertextOf(d: Record<string, unknown>, what: string): string {
    const c = d.ciphertext;
    if (typeof c !== 'string' || !c.startsWith('vault:')) throw keyError(`KMS answered ${what} without a ciphertext`, 'check --kms-address points at a Vault transit engine');
    return c;
  }

  async wrap(_context: string, dataKey: Buffer): Promise<WrappedDataKey> {
    const d = await this.call(`encrypt/${encodeURIComponent(this.o.keyName)}`, { plaintext: dataKey.toString('base64') });
    return { provider: 'vault', keyId: this.keyId, wrapped: this.ciphertextOf(d, 'encrypt') };
  }

  async unwrap(_context: string, w: WrappedDataKey, volumeId = 'the volume'): Promise<Buffer> {
    if (w.provider !== 'vault' || w.keyId !== this.keyId) {
      throw keyError(`${volumeId}'s data key is wrapped by ${w.provider} (${w.keyId}), not by ${this.keyId}`, 'configure the key provider the volume was created with');
    }
    const d = await this.call(`decrypt/${encodeURIComponent(this.o.keyName)}`, { ciphertext: w.wrapped });
    const key = Buffer.from(typeof d.plaintext === 'string' ? d.plaintext : '', 'base64');
    if (key.length !== dataKeyBytes) throw keyError(`KMS returned a ${key.length}-byte data key for ${volumeId}`, 'the wrapped key belongs to another KMS key');
    return key;
  }

  async rewrap(_context: string, w: WrappedDataKey): Promise<WrappedDataKey> {
    const d = await this.call(`rewrap/${encodeURIComponent(this.o.keyName)}`, { ciphertext: w.wrapped });
    return { provider: 'vault', keyId: this.keyId, wrapped: this.ciphertextOf(d, 'rewrap') };
  }

  async rotate(): Promise<string> {
    await this.call(`keys/${encodeURIComponent(this.o.keyName)}/rotate`, {});
    return this.keyId;
  }
}
