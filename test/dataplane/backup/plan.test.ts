/** The pure backup decisions (dataplane/backup/logic/plan.ts, manifest.ts). */
import { strict as assert } from 'node:assert';
import { blockVerdict, chooseParent, sampleKeys, trustedHashes, type PriorBackup } from '../../../dataplane/backup/logic/plan.js';
import { blockObjectKey, checkManifest, checkRestoring, checkVerifying, idOfKey, manifestKey, verifyingKey, type BlockEntry } from '../../../dataplane/backup/logic/manifest.js';

const h = (c: string): string => c.repeat(64);
const e = (c: string, bytes = 4096): BlockEntry => ({ sha256: h(c), crc32c: 1, bytes });
const prior = (id: string, strategy: PriorBackup['strategy'], at: number, blocks: Record<string, BlockEntry>): PriorBackup => ({ id, strategy, createdAtMs: at, blocks });

describe('backup plan', () => {
  const full = prior('bk-aaaaaaaa', 'full', 1, { '0/0': e('a'), '0/1': e('b') });
  const inc = prior('bk-bbbbbbbb', 'incremental', 2, { '0/0': e('a'), '0/1': e('c') });

  it('incremental compares with the newest backup, differential with the newest full, full with nothing', () => {
    assert.deepEqual(chooseParent('incremental', [full, inc]), { strategy: 'incremental', parent: inc });
    assert.deepEqual(chooseParent('differential', [inc, full]), { strategy: 'differential', parent: full });
    assert.deepEqual(chooseParent('full', [full, inc]), { strategy: 'full', parent: null });
  });

  it('falls back to full when there is nothing to compare with', () => {
    assert.deepEqual(chooseParent('incremental', []), { strategy: 'full', parent: null });
    assert.deepEqual(chooseParent('differential', [inc]), { strategy: 'full', parent: null });
  });

  it('a block is changed when its content differs from the parent, uploaded only when no complete manifest names it', () => {
    const trusted = trustedHashes([full, inc]);
    assert.deepEqual(blockVerdict('0/0', e('a'), inc, trusted, new Set()), { changed: false, upload: false });
    assert.deepEqual(blockVerdict('0/1', e('b'), inc, trusted, new Set()), { changed: true, upload: false });
    assert.deepEqual(blockVerdict('0/2', e('d'), inc, trusted, new Set()), { changed: true, upload: true });
    assert.deepEqual(blockVerdict('0/3', e('d'), inc, trusted, new Set([h('d')])), { changed: true, upload: false });
    assert.deepEqual(blockVerdict('0/0', e('a'), null, trusted, new Set()), { changed: true, upload: false });
  });

  it('samples a spread of keys, all at 100 %, at least one', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `0/${i}`);
    assert.equal(sampleKeys(keys, 100, 7).length, 200);
    const ten = sampleKeys(keys, 10, 3);
    assert.equal(ten.length, 20);
    assert.equal(new Set(ten).size, 20);
    assert.equal(sampleKeys(keys.slice(0, 3), 1, 0).length, 1);
    assert.deepEqual(sampleKeys([], 50, 0), []);
  });

  it('checks a manifest whole: an unfinished or foreign one is never complete', () => {
    const ok = { format: 'galleon-backup/1', id: 'bk-00000001', strategy: 'full', blocks: { '0/1': e('a') }, changed: [], volume: { blockSizeBytes: 4096 }, complete: true };
    assert.equal(checkManifest(ok).ok, true);
    assert.equal(checkManifest({ ...ok, complete: false }).ok, false);
    assert.equal(checkManifest({ ...ok, blocks: { '0/1': { ...e('a'), sha256: 'zz' } } }).ok, false);
    assert.equal(checkManifest({ ...ok, format: 'other' }).ok, false);
    assert.equal(checkManifest(null).ok, false);
  });

  it('an encrypted manifest names, for every block, a volume whose wrapped key it carries; a plain one names none', () => {
    const ok = { format: 'galleon-backup/1', id: 'bk-00000001', strategy: 'full', blocks: { '0/1': e('a') }, changed: [], volume: { blockSizeBytes: 4096 }, complete: true };
    const key = { provider: 'internal', keyId: 'internal:v1:x', wrapped: 'AAAA' };
    const sealed = { ...ok, blocks: { '0/1': { ...e('a'), sealedBy: 'vol-a' }, '0/2': { ...e('b'), sealedBy: 'parent' } }, encryption: { keys: { 'vol-a': key, parent: key } } };
    assert.equal(checkManifest(sealed).ok, true);
    assert.deepEqual(checkManifest({ ...sealed, encryption: { keys: { 'vol-a': key } } }), { ok: false, reason: 'block 0/2 names no data key of the backup' });
    assert.equal(checkManifest({ ...sealed, blocks: { '0/1': e('a') } }).ok, false, 'a plaintext entry in an encrypted backup');
    assert.equal(checkManifest({ ...ok, blocks: { '0/1': { ...e('a'), sealedBy: 'vol-a' } } }).ok, false, 'a sealed entry without keys');
    assert.deepEqual(checkManifest({ ...sealed, encryption: { keys: { 'vol-a': { provider: 'internal' } } } }), { ok: false, reason: 'bad encryption record' });
  });

  it('a verifying record read back is taken only whole', () => {
    const r = { id: 'bk-00000001', nodeId: 'node3', samplePercent: 10, sampleOffset: 5, startedAtMs: 1 };
    assert.deepEqual(checkVerifying(r), r);
    assert.equal(checkVerifying({ ...r, samplePercent: 0 }), null);
    assert.equal(checkVerifying({ ...r, id: '../x' }), null);
    assert.equal(checkVerifying({ ...r, nodeId: undefined }), null);
    assert.equal(verifyingKey('bk-00000001'), 'verifying/bk-00000001.json');
  });

  it('keys stay inside their folders', () => {
    assert.equal(blockObjectKey(h('f')), `blocks/ff/${h('f')}`);
    assert.throws(() => blockObjectKey('../x'), /invariant/);
    assert.throws(() => manifestKey('../../etc/passwd'), /invariant/);
    assert.equal(idOfKey('manifests', 'manifests/bk-00000001.json'), 'bk-00000001');
    assert.equal(idOfKey('manifests', 'manifests/evil.json'), null);
  });

  it('a restoring/ record may name another cluster\'s key file (a path, never key material), and nothing else in its place', () => {
    const rec = { id: 'rs-0123456789ab', backupId: 'bk-00000001', name: 'db', nodeId: 'node1', startedAtMs: 5 };
    assert.deepEqual(checkRestoring(rec), rec);
    assert.deepEqual(checkRestoring({ ...rec, sourceKeyFile: '/secure/a.key' }), { ...rec, sourceKeyFile: '/secure/a.key' });
    assert.equal(checkRestoring({ ...rec, sourceKeyFile: '' }), null);
    assert.equal(checkRestoring({ ...rec, sourceKeyFile: { keys: {} } }), null);
  });
});
