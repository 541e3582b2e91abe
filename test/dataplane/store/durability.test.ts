/**
 * Crash safety of group commit and checksum verification against damage in the real files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isGalleonError } from '../../../proto/errors.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import type { BodyLayout } from '../../../dataplane/store/level-block-store.js';
import { pattern, removeDir, tempDir, waitFor } from '../helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const writer = path.join(here, '..', 'fixtures', 'durable-writer.ts');

async function flipByteAt(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = (b[0] ?? 0) ^ 0x5a;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

for (const layout of ['segments', 'inline'] as BodyLayout[]) {
  describe(`BlockStore durability (${layout})`, function () {
    this.timeout(30_000);
    let dir: string | undefined;
    let child: ChildProcess | undefined;
    let store: LevelBlockStore | undefined;

    beforeEach(async () => { dir = await tempDir(`durable-${layout}`); });
    afterEach(async () => {
      if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child = undefined;
      await store?.close();
      store = undefined;
      await removeDir(dir);
    });

    it('keeps every acknowledged durable write through a kill -9 of the writer', async () => {
      assert.ok(dir);
      const acked = new Set<number>();
      const proc = spawn(process.execPath, ['--import', 'tsx', writer, dir, layout], { stdio: ['ignore', 'pipe', 'inherit'] });
      child = proc;
      let buf = '';
      proc.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) if (l.startsWith('ACK ')) acked.add(Number(l.slice(4)));
      });
      await waitFor('500 acknowledged durable writes', () => acked.size >= 500, 20_000);
      proc.kill('SIGKILL');
      await waitFor('writer to die', () => proc.exitCode !== null || proc.signalCode !== null);
      const seen = new Set(acked); // acks printed after the kill never reached us: not promised

      store = await LevelBlockStore.open({ dir, layout, minFreeBytes: 0, inlineMaxBytes: 0 });
      for (const n of seen) {
        const b = await store.read({ volumeId: 'crash', inode: 1, blockNo: n });
        assert.deepEqual(b.data, pattern(n, 4096), `acknowledged block ${n} came back wrong`);
      }
      const st = await store.pgState('crash', 0);
      assert.ok(st.highestSeq >= Math.max(...seen) + 1);
    });

    it('detects a flipped byte in the block body on disk with CHECKSUM_MISMATCH', async () => {
      assert.ok(dir);
      const a = { volumeId: 'v', inode: 5, blockNo: 9 };
      const data = pattern(77, 8192);
      store = await LevelBlockStore.open({ dir, layout, minFreeBytes: 0, inlineMaxBytes: 0 });
      await store.write({ kind: 'put', address: a, pg: 0, seq: 1, epoch: 1, data }, { sync: true });
      const loc = await store.locate(a);
      await store.close();
      store = undefined;
      if (layout === 'segments') {
        assert.ok(loc);
        await flipByteAt(loc.file, loc.offset + 1000);
      } else {
        assert.equal(loc, null);
        // Reopening moves the WAL into a table file; find the body there by its bytes.
        await (await LevelBlockStore.open({ dir, layout, minFreeBytes: 0, inlineMaxBytes: 0 })).close();
        const indexDir = path.join(dir, 'index');
        let flipped = false;
        for (const name of await readdir(indexDir)) {
          if (!name.endsWith('.ldb') && !name.endsWith('.log')) continue;
          const at = (await readFile(path.join(indexDir, name))).indexOf(data.subarray(0, 64));
          if (at >= 0) { await flipByteAt(path.join(indexDir, name), at + 1000); flipped = true; }
        }
        assert.ok(flipped, 'found the block body in the LevelDB files');
      }
      store = await LevelBlockStore.open({ dir, layout, minFreeBytes: 0, inlineMaxBytes: 0 });
      await assert.rejects(store.read(a), (e: unknown) => isGalleonError(e, 'CHECKSUM_MISMATCH'));
    });
  });
}
