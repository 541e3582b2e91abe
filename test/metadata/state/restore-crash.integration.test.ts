import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStateMachine } from '../../../metadata/state/index.js';
import { decodeSnapshot, encodeSnapshot } from '../../../metadata/state/snapshot-codec.js';
import { Feeder, addNodes, openTemp, removeDir, tempDir } from './helpers.js';

const childScript = fileURLToPath(new URL('./restore-child.ts', import.meta.url));
/** Big enough that writing the restore batch takes a while, so kills land before, during and after it. */
const extraEntries = 8_000;
const extraValueBytes = 1024;

describe('metadata/state restore survives kill -9 (integration)', function () {
  this.timeout(60_000);
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of dirs) await removeDir(d);
  });

  it('leaves either the old state or the new one, never a mix', async () => {
    // The new state: a real one, padded with many large entries.
    const source = await openTemp();
    dirs.push(source.dir);
    const f = new Feeder(source.sm);
    await addNodes(f, 3);
    await f.ok('createVolume', { name: 'new-state' });
    const real = await source.sm.snapshot();
    await source.sm.close();
    const decoded = decodeSnapshot(real.data);
    const pad = Buffer.from(JSON.stringify('x'.repeat(extraValueBytes)));
    for (let i = 0; i < extraEntries; i += 1) decoded.entries.push({ key: Buffer.from(`rp/pad-${String(i).padStart(6, '0')}`), value: pad });
    decoded.entries.sort((a, b) => Buffer.compare(a.key, b.key));
    const next = encodeSnapshot(real.index, decoded.entries);
    const work = await tempDir();
    dirs.push(work);
    const snapFile = join(work, 'snapshot.bin');
    await writeFile(snapFile, next);

    const outcomes: string[] = [];
    // The first run is not killed: it measures how long a restore takes, so the kills that follow
    // land at fractions of it (before, during and around the batch write), whatever the machine's speed.
    let restoreMs = 0;
    for (const fraction of [-1, 0.3, 0.6, 0.85]) {
      const killAfterMs = fraction < 0 ? -1 : Math.round(restoreMs * fraction);
      const target = await openTemp();
      dirs.push(target.dir);
      const g = new Feeder(target.sm, 'old');
      await g.ok('createStorageClass', { name: 'old-state', replicas: 1 });
      const old = await target.sm.snapshot();
      await target.sm.close();

      const child = spawn(process.execPath, ['--import', 'tsx', childScript, target.dir, snapFile, String(real.index)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      let startedAt = 0;
      let restoredAt = 0;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          if (text.includes('restoring')) {
            startedAt = performance.now();
            resolve();
          }
          if (text.includes('restored')) restoredAt = performance.now();
        });
        child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
      });
      if (killAfterMs >= 0) {
        if (killAfterMs > 0) await new Promise((resolve) => setTimeout(resolve, killAfterMs));
        child.kill('SIGKILL');
      }
      await exited;
      if (killAfterMs < 0) restoreMs = restoredAt - startedAt;

      const reopened = await openStateMachine(target.dir);
      const now = await reopened.snapshot();
      await reopened.close();
      const isOld = Buffer.from(now.data).equals(Buffer.from(old.data));
      const isNew = Buffer.from(now.data).equals(next);
      assert.ok(isOld || isNew, `after a kill ${killAfterMs} ms into restore the state is a mix (index ${now.index})`);
      outcomes.push(`${killAfterMs < 0 ? 'unkilled' : `${killAfterMs}ms`}=${isNew ? 'new' : 'old'}`);
      if (killAfterMs < 0) assert.ok(isNew, 'a restore that was not killed must finish');
    }
    if (process.env.GALLEON_TEST_VERBOSE === '1') console.log(`restore of ${extraEntries} entries took ${Math.round(restoreMs)} ms; outcomes:`, outcomes.join(' '));
  });
});
