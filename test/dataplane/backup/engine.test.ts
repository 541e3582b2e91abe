/**
 * The backup engine over a real directory store, with an in-memory BackupSource (the interface a
 * snapshot source will implement too): a run stopped half-way leaves no manifest and nothing a
 * later run trusts; content-addressing uploads a repeated block once; delete frees exactly the
 * objects no remaining backup names. The cluster-level proofs are in test/cli/backup.integration.test.ts.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DirObjectStore } from '../../../dataplane/backup/object-store.js';
import { createBackup, deleteBackup, verifyBackup, type JobHooks } from '../../../dataplane/backup/engine.js';
import { readCatalog } from '../../../dataplane/backup/catalog.js';
import type { BackupSource, SourceBlock } from '../../../dataplane/backup/source.js';
import type { NamespaceDump } from '../../../dataplane/backup/logic/manifest.js';

class MemorySource implements BackupSource {
  readonly volume = { id: 'vol-1', name: 'v', sizeBytes: 64 * 16, blockSizeBytes: 16, storageClass: 'x', replicas: 1, accessMode: 'ReadWriteOnce', type: 'persistent' };
  readonly blockSizeBytes = 16;
  readonly blocks0 = new Map<number, Buffer>();
  /** Aborts the run after this many blocks (a crash stand-in); -1 never. */
  failAfter = -1;
  namespace(): Promise<NamespaceDump | null> { return Promise.resolve(null); }
  probeCount(): number { return 64; }
  async *blocks(_ns: NamespaceDump | null, onProbe: (n: number) => void): AsyncIterable<SourceBlock> {
    let n = 0;
    for (const [blockNo, bytes] of [...this.blocks0].sort((a, b) => a[0] - b[0])) {
      if (n === this.failAfter) throw new Error('crashed');
      n += 1;
      onProbe(1);
      await Promise.resolve();
      yield { inode: 0, blockNo, bytes };
    }
  }
}

const hooks = (): JobHooks => ({ onProgress: () => undefined, signal: new AbortController().signal, nowMs: () => Date.now(), logger: pino({ level: 'silent' }) });
let seq = 0;
const nextId = (): string => `bk-test${String(seq += 1).padStart(4, '0')}`;

describe('backup engine (directory store, in-memory source)', () => {
  let dir = '';
  let store: DirObjectStore;
  let src: MemorySource;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'galleon-engine-'));
    store = new DirObjectStore(dir);
    src = new MemorySource();
    for (let i = 0; i < 10; i += 1) src.blocks0.set(i * 3, Buffer.alloc(16, i + 1));
  });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('a run that stops half-way leaves no manifest; the next run trusts none of its objects', async () => {
    src.failAfter = 6;
    const crashed = nextId();
    await assert.rejects(createBackup(store, src, { id: crashed, target: 't', strategy: 'full' }, hooks()), /crashed/);
    const cat = await readCatalog(store);
    assert.deepEqual(cat.complete, []);
    assert.deepEqual(cat.incomplete.map((r) => r.id), [crashed]);
    assert.equal((await readdir(join(dir, 'blocks'), { recursive: true })).filter((n) => n.length > 3).length, 6);
    src.failAfter = -1;
    const r = await createBackup(store, src, { id: nextId(), target: 't', strategy: 'incremental' }, hooks());
    assert.equal(r.strategy, 'full');
    assert.equal(r.uploadedBlocks, 10, 'the 6 objects of the stopped run are uploaded again');
  });

  it('uploads a repeated block once, an unchanged one never; incremental carries exactly the changed keys', async () => {
    src.blocks0.set(40, Buffer.alloc(16, 1)); // same bytes as block 0
    const full = await createBackup(store, src, { id: nextId(), target: 't', strategy: 'full' }, hooks());
    assert.deepEqual([full.blocks, full.changedBlocks, full.uploadedBlocks], [11, 11, 10]);
    src.blocks0.set(3, Buffer.alloc(16, 99));
    src.blocks0.set(63, Buffer.alloc(16, 2)); // new key, known content
    const inc = await createBackup(store, src, { id: nextId(), target: 't', strategy: 'incremental' }, hooks());
    assert.deepEqual([inc.blocks, inc.changedBlocks, inc.uploadedBlocks, inc.parent], [12, 2, 1, full.id]);
    assert.equal((await verifyBackup(store, inc.id, 100, hooks())).ok, true);
  });

  it('an encrypted source: each entry names its sealer, the manifest carries the wrapped keys, the run records its snapshot', async () => {
    const wrapped = { provider: 'internal', keyId: 'internal:v1:k', wrapped: 'c2VhbGVk' };
    const sealed: BackupSource = {
      volume: src.volume, blockSizeBytes: 16, namespace: () => Promise.resolve(null), probeCount: () => Promise.resolve(2),
      async *blocks(_ns, onProbe): AsyncIterable<SourceBlock> {
        onProbe(2);
        await Promise.resolve();
        yield { inode: 0, blockNo: 0, bytes: Buffer.alloc(16, 1), sealedBy: 'vol-1' };
        yield { inode: 0, blockNo: 1, bytes: Buffer.alloc(16, 2), sealedBy: 'parent-vol' };
      },
      encryption: () => Promise.resolve({ keys: { 'vol-1': wrapped, 'parent-vol': wrapped } }),
    };
    const snapshot = { id: 'snap-1', name: 'backup-x', cut: 7, created: true };
    const r = await createBackup(store, sealed, { id: nextId(), target: 't', strategy: 'full', snapshot }, hooks());
    const m = (await readCatalog(store)).complete.find((x) => x.id === r.id);
    assert.deepEqual(m?.snapshot, snapshot);
    assert.deepEqual(Object.values(m?.blocks ?? {}).map((e) => e.sealedBy), ['vol-1', 'parent-vol']);
    assert.deepEqual(m?.encryption?.keys, { 'vol-1': wrapped, 'parent-vol': wrapped });
    assert.equal((await verifyBackup(store, r.id, 100, hooks())).ok, true, 'verify needs no key: the checksums are of what is stored');
  });

  it('delete frees exactly the objects no remaining backup names', async () => {
    const a = await createBackup(store, src, { id: nextId(), target: 't', strategy: 'full' }, hooks());
    src.blocks0.set(0, Buffer.alloc(16, 77));
    const b = await createBackup(store, src, { id: nextId(), target: 't', strategy: 'incremental' }, hooks());
    assert.equal((await deleteBackup(store, a.id, Date.now())).deletedObjects, 1, 'only the old block 0 was a\'s alone');
    assert.equal((await verifyBackup(store, b.id, 100, hooks())).ok, true);
    assert.equal((await deleteBackup(store, b.id, Date.now())).deletedObjects, 10);
    await assert.rejects(deleteBackup(store, b.id, Date.now()), /not found/);
  });
});
