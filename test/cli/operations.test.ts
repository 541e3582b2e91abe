/**
 * The daemon's record of background freeing (cli/daemon/operations.ts): figures that only grow,
 * a total that is never below what was done at the end, a bounded log that never drops a running
 * operation, and one clear error for an unknown id. Pure: the clock is passed in.
 */
import { strict as assert } from 'node:assert';
import { maxOperationsKept, OperationLog } from '../../cli/daemon/operations.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

describe('OperationLog (cli/daemon/operations.ts)', () => {
  let clock = 1_000;
  const now = (): number => clock;

  it('adds each step to done and bytes; finish marks done and keeps a known total', () => {
    const log = new OperationLog(now);
    const op = log.start('snapshot-delete', 's1', 'vol-1', 'versions', 12);
    op.phase('freeing');
    clock += 500;
    op.add(4, 4096);
    op.add(8, 8192);
    op.finish({ versions: 12, bytes: 12288 });
    const v = log.get(op.view.id);
    assert.deepEqual(v.progress, { phase: 'done', blocksDone: 12, blocksTotal: 12, bytesDone: 12288, startedAtMs: 1_000, updatedAtMs: 1_500 });
    assert.equal(v.state, 'done');
    assert.deepEqual(v.result, { versions: 12, bytes: 12288 });
  });

  it('a total not known beforehand (a restore) becomes what was done', () => {
    const log = new OperationLog(now);
    const op = log.start('volume-restore', 'db', 'vol-2', 'blocks', 0);
    op.add(7, 0);
    op.finish({ blocks: 7 });
    assert.equal(op.view.progress.blocksTotal, 7);
    assert.equal(log.latestFor('vol-2')?.id, op.view.id);
    assert.equal(log.latestFor('vol-other'), null);
  });

  it('a failure keeps the error code, message and hint', () => {
    const op = new OperationLog(now).start('snapshot-delete', 's2', 'vol-3', 'versions', 3);
    op.fail(new GalleonError(ErrorCode.TIMEOUT, 'prune timed out', { hint: 'the next delete frees them' }));
    assert.equal(op.view.state, 'failed');
    assert.deepEqual(op.view.error, { code: 'TIMEOUT', message: 'prune timed out', hint: 'the next delete frees them' });
  });

  it('progress never goes down (an invariant, not a user error)', () => {
    const op = new OperationLog(now).start('snapshot-delete', 's3', 'vol-4', 'versions', 3);
    assert.throws(() => op.add(-1, 0), (e: unknown) => e instanceof GalleonError && e.code === ErrorCode.INVARIANT_VIOLATION);
  });

  it('keeps at most maxOperationsKept, dropping the oldest finished, never a running one', () => {
    const log = new OperationLog(now);
    const running = log.start('volume-restore', 'keep', 'vol-k', 'blocks', 0);
    const first = log.start('snapshot-delete', 'old', 'vol-o', 'versions', 0);
    first.finish(null);
    for (let i = 0; i < maxOperationsKept + 5; i++) log.start('snapshot-delete', `s${i}`, 'vol-x', 'versions', 0).finish(null);
    assert.equal(log.get(running.view.id).state, 'running');
    assert.throws(() => log.get(first.view.id), (e: unknown) => e instanceof GalleonError && e.code === ErrorCode.OPERATION_NOT_FOUND && /not found on this daemon/.test(e.message));
  });
});
