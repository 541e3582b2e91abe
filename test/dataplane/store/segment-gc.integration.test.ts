/**
 * Segment GC survives a kill -9 at any point: a child process writes several versions of its
 * blocks into small real segment files, runs a GC pass and is killed with SIGKILL while it is
 * stopped at a given step (after some copies landed, after the synced fence, after a delete) or
 * while it keeps writing. Reopened, every block reads back its newest acknowledged version, no
 * index entry points into a missing segment, and a new pass finishes the job.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataplaneLogger } from '../../../dataplane/log.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { Reclaimer } from '../../../dataplane/store/reclaimer.js';
import { crashBlocks, crashRounds, crashSegmentBytes, crashVersion, newestRound } from '../fixtures/gc-crash-plan.js';
import { removeDir, tempDir, waitFor } from '../helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const crasher = path.join(here, '..', 'fixtures', 'gc-crasher.ts');
const log = dataplaneLogger('gc-crash-test');

describe('segment GC crash safety (kill -9 of a real process)', function () {
  this.timeout(40_000);
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  let store: LevelBlockStore | undefined;

  afterEach(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
    await store?.close();
    store = undefined;
    await removeDir(dir);
    dir = undefined;
  });

  /** Runs the child until `ready` holds for its output lines, then kills it with SIGKILL. */
  async function runAndKill(stopAt: string, ready: (lines: string[]) => boolean): Promise<string[]> {
    assert.ok(dir);
    const lines: string[] = [];
    const proc = spawn(process.execPath, ['--import', 'tsx', crasher, dir, stopAt], { stdio: ['ignore', 'pipe', 'inherit'] });
    child = proc;
    let buf = '';
    proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      lines.push(...parts);
    });
    await waitFor(`the child to reach ${stopAt}`, () => ready(lines) || proc.exitCode !== null, 25_000);
    assert.equal(proc.exitCode, null, `child exited early: ${lines.slice(-3).join(' | ')}`);
    proc.kill('SIGKILL');
    await waitFor('the child to die', () => proc.exitCode !== null || proc.signalCode !== null);
    return [...lines];
  }

  /** Every block reads its newest version of a round in [lo, hi] (lo: acknowledged, hi: started). */
  async function checkBlocks(s: LevelBlockStore, lo: number, hi: number): Promise<void> {
    for (let b = 0; b < crashBlocks; b++) {
      const got = await s.read({ volumeId: 'gc', inode: 1, blockNo: b });
      let match = -1;
      for (let r = newestRound(b, lo); r <= hi && match < 0; r++) if (got.data.equals(crashVersion(b, r))) match = r;
      assert.ok(match >= 0, `block ${b} reads none of rounds ${lo}..${hi}`);
    }
  }

  async function reopenAndCheck(lo: number, hi: number): Promise<void> {
    assert.ok(dir);
    store = await LevelBlockStore.open({ dir, minFreeBytes: 0, inlineMaxBytes: 0, segmentMaxBytes: crashSegmentBytes });
    await checkBlocks(store, lo, hi);
    const before = store.usedBytes();
    const pass = await new Reclaimer({ store, log, gc: { maxBytesPerSecond: 1024 ** 3 } }).runOnce();
    assert.equal(pass.danglingPointers, 0, 'no index entry points into a deleted segment');
    assert.ok(pass.gc.deleted > 0, 'the pass after the crash deletes the dead segments');
    await checkBlocks(store, lo, hi);
    assert.ok(store.usedBytes() < before, `segment bytes shrink (${before} -> ${store.usedBytes()})`);
    // Nothing left for a second pass to find dangling, and the data survives another reopen.
    assert.equal((await new Reclaimer({ store, log }).runOnce()).danglingPointers, 0);
    await store.close();
    store = await LevelBlockStore.open({ dir, minFreeBytes: 0, inlineMaxBytes: 0, segmentMaxBytes: crashSegmentBytes });
    await checkBlocks(store, lo, hi);
  }

  for (const stopAt of ['relocated:3', 'synced:1', 'deleted:2']) {
    it(`loses nothing when killed at GC step ${stopAt}`, async () => {
      dir = await tempDir('gc-crash');
      const [step, n] = stopAt.split(':');
      await runAndKill(stopAt, (lines) => lines.includes(`AT ${step} ${n}`));
      await reopenAndCheck(crashRounds - 1, crashRounds - 1);
    });
  }

  it('loses nothing when killed while GC passes and writers run together', async () => {
    dir = await tempDir('gc-crash');
    const lines = await runAndKill('writing', (l) => l.filter((x) => x.startsWith('PASS ')).length >= 2 && l.some((x) => x === `ROUND ${crashRounds + 1}`));
    const completed = Math.max(...lines.filter((l) => l.startsWith('ROUND ')).map((l) => Number(l.slice(6))));
    const started = Math.max(...lines.filter((l) => l.startsWith('START ')).map((l) => Number(l.slice(6))));
    await reopenAndCheck(completed, Math.max(started, completed));
  });
});
