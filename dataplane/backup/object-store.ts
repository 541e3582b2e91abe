/**
 * Where backups go: a small key -> bytes interface with two implementations, a directory (local
 * disk or a network file system) and S3-compatible object storage (@aws-sdk/client-s3). The
 * engine only ever talks to this interface; one conformance suite runs against both
 * (test/dataplane/backup/object-store.test.ts, S3 against a real s3rver on an ephemeral port).
 */
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { BackupTarget } from '../../proto/metadata-types.js';
import type * as S3Sdk from '@aws-sdk/client-s3';

export interface ObjectStore {
  /** What to name in messages: `dir:/backups` or `s3://bucket/prefix`. */
  readonly where: string;
  /** Whole-object replace: a reader sees the old object or the new one, never a part. */
  put(key: string, data: Uint8Array): Promise<void>;
  /** null when there is no such object. */
  get(key: string): Promise<Buffer | null>;
  exists(key: string): Promise<boolean>;
  /** Every key under `prefix` (which ends in `/`), in any order. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  close(): void;
}

/** Keys are made by the engine (manifest.ts); anything that could leave the root is a bug. */
function checkKey(key: string): string {
  if (!/^[a-z]+(\/[0-9a-zA-Z._-]+)+$/.test(key) || key.split('/').some((p) => p === '..' || p === '.')) {
    throw new GalleonError(ErrorCode.INVARIANT_VIOLATION, `invariant violated: object key ${JSON.stringify(key)}`);
  }
  return key;
}

function unavailable(where: string, err: unknown): GalleonError {
  const msg = err instanceof Error ? err.message : String(err);
  return new GalleonError(ErrorCode.UNAVAILABLE, `backup target ${where} failed: ${msg}`, { hint: 'check the target is reachable and writable, then retry', cause: err });
}

export class DirObjectStore implements ObjectStore {
  readonly where: string;
  constructor(private readonly root: string) { this.where = `dir:${root}`; }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = join(this.root, checkKey(key));
    const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(dirname(path), { recursive: true });
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(data);
        // Synced before the rename: a manifest must never name an object a crash could lose.
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw unavailable(this.where, err);
    }
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(join(this.root, checkKey(key)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw unavailable(this.where, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(join(this.root, checkKey(key)))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw unavailable(this.where, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = join(this.root, prefix);
    try {
      const names = await readdir(base, { recursive: true, withFileTypes: true });
      return names.filter((d) => d.isFile() && !d.name.includes('.tmp-'))
        .map((d) => `${prefix}${join(d.parentPath, d.name).slice(base.length).split(sep).filter((p) => p !== '').join('/')}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw unavailable(this.where, err);
    }
  }

  async delete(key: string): Promise<void> {
    await rm(join(this.root, checkKey(key)), { force: true }).catch((err: unknown) => { throw unavailable(this.where, err); });
  }

  close(): void {}
}

/** The SDK's client, loaded on first use: every CLI command would otherwise pay its load time. */
type S3Module = typeof S3Sdk;

export class S3ObjectStore implements ObjectStore {
  readonly where: string;
  private client: InstanceType<S3Module['S3Client']> | null = null;
  private mod: S3Module | null = null;

  constructor(private readonly t: { endpoint: string; bucket: string; prefix: string; region: string; accessKeyId: string; secretAccessKey: string }) {
    this.where = `s3://${t.bucket}/${t.prefix}`;
  }

  private async s3(): Promise<{ c: InstanceType<S3Module['S3Client']>; m: S3Module }> {
    if (this.client === null || this.mod === null) {
      // The SDK warns on stderr that its releases after January 2027 need Node 22; the lock file
      // pins the one we tested on Node 20 (dataplane/backup/README.md), so the line says nothing here.
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
      this.mod = await import('@aws-sdk/client-s3');
      this.client = new this.mod.S3Client({
        endpoint: this.t.endpoint, region: this.t.region, forcePathStyle: true,
        credentials: { accessKeyId: this.t.accessKeyId, secretAccessKey: this.t.secretAccessKey },
        maxAttempts: 3,
      });
    }
    return { c: this.client, m: this.mod };
  }

  private full(key: string): string { return `${this.t.prefix}${checkKey(key)}`; }

  async put(key: string, data: Uint8Array): Promise<void> {
    const { c, m } = await this.s3();
    await c.send(new m.PutObjectCommand({ Bucket: this.t.bucket, Key: this.full(key), Body: data })).catch((err: unknown) => { throw unavailable(this.where, err); });
  }

  async get(key: string): Promise<Buffer | null> {
    const { c, m } = await this.s3();
    try {
      const r = await c.send(new m.GetObjectCommand({ Bucket: this.t.bucket, Key: this.full(key) }));
      return r.Body === undefined ? Buffer.alloc(0) : Buffer.from(await r.Body.transformToByteArray());
    } catch (err) {
      if (isMissing(err)) return null;
      throw unavailable(this.where, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    const { c, m } = await this.s3();
    try {
      await c.send(new m.HeadObjectCommand({ Bucket: this.t.bucket, Key: this.full(key) }));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw unavailable(this.where, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const { c, m } = await this.s3();
    const out: string[] = [];
    let token: string | undefined;
    // Bounded: a listing page holds at most 1,000 keys; 100,000 pages is far past any target here.
    for (let page = 0; page < 100_000; page += 1) {
      const r = await c.send(new m.ListObjectsV2Command({ Bucket: this.t.bucket, Prefix: `${this.t.prefix}${prefix}`, ...(token === undefined ? {} : { ContinuationToken: token }) }))
        .catch((err: unknown) => { throw unavailable(this.where, err); });
      for (const o of r.Contents ?? []) if (o.Key !== undefined) out.push(o.Key.slice(this.t.prefix.length));
      if (r.IsTruncated !== true || r.NextContinuationToken === undefined) break;
      token = r.NextContinuationToken;
    }
    return out;
  }

  async delete(key: string): Promise<void> {
    const { c, m } = await this.s3();
    await c.send(new m.DeleteObjectCommand({ Bucket: this.t.bucket, Key: this.full(key) })).catch((err: unknown) => { throw unavailable(this.where, err); });
  }

  close(): void {
    this.client?.destroy();
    this.client = null;
  }
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The store of a recorded target; S3 credentials from the record, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */
export function openObjectStore(t: BackupTarget, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  if (t.kind === 'dir') return new DirObjectStore(t.path);
  const accessKeyId = t.accessKeyId ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = t.secretAccessKey ?? env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `backup target ${t.name} has no S3 credentials here`,
      { hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the daemon, or add the target with --access-key/--secret-key' });
  }
  return new S3ObjectStore({ endpoint: t.endpoint, bucket: t.bucket, prefix: t.prefix, region: t.region, accessKeyId, secretAccessKey });
}
