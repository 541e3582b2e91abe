/**
 * The backup engine's own cost, without a cluster: a full backup of BENCH_BACKUP_MIB (default
 * 64) MiB in 128 KiB blocks from memory to a directory and to S3 (s3rver on loopback), an
 * incremental with nothing changed (read + hash only), a 100 % verify; each beside its reference
 * measured in the same run — the same blocks written as files with fsync (directory) or put with
 * the SDK one by one (S3), and SHA-256 of the bytes alone.
 *   npx tsx test/bench/backup.bench.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DirObjectStore, S3ObjectStore, type ObjectStore } from '../../dataplane/backup/object-store.js';
import { createBackup, verifyBackup, type JobHooks } from '../../dataplane/backup/engine.js';
import type { BackupSource, SourceBlock } from '../../dataplane/backup/source.js';
import { startS3 } from '../support/s3.js';

const blockBytes = 128 * 1024;
const mib = Number(process.env.BENCH_BACKUP_MIB ?? 64);
const count = (mib * 1024 * 1024) / blockBytes;
const data = Array.from({ length: count }, () => randomBytes(blockBytes));

const source: BackupSource = {
  volume: { id: 'bench', name: 'bench', sizeBytes: count * blockBytes, blockSizeBytes: blockBytes, storageClass: 'x', replicas: 1, accessMode: 'ReadWriteOnce', type: 'persistent' },
  blockSizeBytes: blockBytes,
  namespace: () => Promise.resolve(null),
  probeCount: () => count,
  async *blocks(_ns, onProbe): AsyncIterable<SourceBlock> {
    for (const [blockNo, bytes] of data.entries()) { onProbe(1); await Promise.resolve(); yield { inode: 0, blockNo, bytes }; }
  },
};
const hooks: JobHooks = { onProgress: () => undefined, signal: new AbortController().signal, nowMs: () => Date.now(), logger: pino({ level: 'silent' }) };
let n = 0;
const id = (): string => `bk-bench${String(n += 1).padStart(4, '0')}`;

async function timed(what: string, fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  const s = (performance.now() - t) / 1000;
  const rate = mib / s;
  console.log(`${what.padEnd(48)} ${rate.toFixed(1).padStart(7)} MiB/s  (${s.toFixed(2)} s)`);
  return rate;
}

async function suite(name: string, store: ObjectStore, reference: () => Promise<unknown>): Promise<void> {
  const ref = await timed(`${name}: reference (plain writes of the blocks)`, reference);
  const full = await timed(`${name}: full backup`, () => createBackup(store, source, { id: id(), target: name, strategy: 'full' }, hooks));
  const inc = await timed(`${name}: incremental, nothing changed`, () => createBackup(store, source, { id: id(), target: name, strategy: 'incremental' }, hooks));
  await timed(`${name}: verify 100 %`, () => verifyBackup(store, `bk-bench${String(n).padStart(4, '0')}`, 100, hooks));
  console.log(`${name}: full / reference = ${(full / ref).toFixed(2)}; incremental (hash only) / full = ${(inc / full).toFixed(1)}`);
}

const root = await mkdtemp(join(tmpdir(), 'galleon-backup-bench-'));
const s3 = await startS3(join(root, 's3'), ['bench']);
try {
  console.log(`backup engine: ${mib} MiB in ${count} blocks of 128 KiB, random bytes`);
  await timed('SHA-256 of the bytes alone', () => { for (const d of data) createHash('sha256').update(d).digest(); return Promise.resolve(); });
  await suite('dir', new DirObjectStore(join(root, 'dir')), async () => {
    await mkdir(join(root, 'ref'), { recursive: true });
    for (const [i, d] of data.entries()) {
      const fh = await open(join(root, 'ref', String(i)), 'w');
      await fh.writeFile(d);
      await fh.sync();
      await fh.close();
    }
  });
  const s3store = new S3ObjectStore({ endpoint: s3.endpoint, bucket: 'bench', prefix: 'b/', region: 'us-east-1', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
  const refStore = new S3ObjectStore({ endpoint: s3.endpoint, bucket: 'bench', prefix: 'ref/', region: 'us-east-1', accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
  await suite('s3rver', s3store, async () => { for (const [i, d] of data.entries()) await refStore.put(`blocks/r/${i}`, d); });
  s3store.close();
  refStore.close();
} finally {
  await s3.stop();
  await rm(root, { recursive: true, force: true });
}
