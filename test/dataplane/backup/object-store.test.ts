/**
 * One conformance suite for both backup object stores: a directory, and S3 through
 * @aws-sdk/client-s3 against a real S3-compatible server (s3rver) on an ephemeral port in a temp dir.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirObjectStore, S3ObjectStore, type ObjectStore } from '../../../dataplane/backup/object-store.js';
import { startS3, type LocalS3 } from '../../support/s3.js';

function conformance(name: string, open: () => Promise<ObjectStore>): void {
  describe(`${name} object store`, () => {
    let s: ObjectStore;
    beforeEach(async () => { s = await open(); });
    afterEach(() => { s.close(); });

    it('put, get, exists, list, delete', async () => {
      assert.equal(await s.get('blocks/aa/x1'), null);
      assert.equal(await s.exists('blocks/aa/x1'), false);
      await s.put('blocks/aa/x1', Buffer.from('one'));
      await s.put('blocks/ab/x2', Buffer.alloc(70_000, 7));
      await s.put('manifests/m.json', Buffer.from('{}'));
      assert.equal((await s.get('blocks/aa/x1'))?.toString(), 'one');
      assert.equal((await s.get('blocks/ab/x2'))?.length, 70_000);
      assert.equal(await s.exists('blocks/aa/x1'), true);
      assert.deepEqual((await s.list('blocks/')).sort(), ['blocks/aa/x1', 'blocks/ab/x2']);
      assert.deepEqual(await s.list('running/'), []);
      await s.put('blocks/aa/x1', Buffer.from('replaced'));
      assert.equal((await s.get('blocks/aa/x1'))?.toString(), 'replaced');
      await s.delete('blocks/aa/x1');
      await s.delete('blocks/aa/never');
      assert.equal(await s.exists('blocks/aa/x1'), false);
      assert.deepEqual(await s.list('blocks/'), ['blocks/ab/x2']);
    });

    it('refuses keys that could leave the root', async () => {
      await assert.rejects(s.put('../escape', Buffer.from('x')), /invariant/);
      await assert.rejects(s.get('blocks/../../x'), /invariant/);
    });
  });
}

describe('backup object stores (conformance)', function () {
  this.timeout(30_000);
  let dir = '';
  let s3: LocalS3 | null = null;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'galleon-objstore-'));
    s3 = await startS3(join(dir, 's3'), ['conf-bucket']);
  });
  after(async () => {
    await s3?.stop();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  conformance('directory', () => { n += 1; return Promise.resolve(new DirObjectStore(join(dir, `d${n}`))); });
  conformance('S3 (s3rver)', () => {
    n += 1;
    const l = s3;
    assert.ok(l !== null);
    return Promise.resolve(new S3ObjectStore({ endpoint: l.endpoint, bucket: 'conf-bucket', prefix: `p${n}/`, region: 'us-east-1', accessKeyId: l.accessKeyId, secretAccessKey: l.secretAccessKey }));
  });
});
