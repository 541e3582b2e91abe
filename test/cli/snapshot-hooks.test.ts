/**
 * `runHook` (cli/daemon/snapshot-ops.ts), the pre/post snapshot hooks, against real shells: a hook
 * past its deadline ends at the deadline with everything it started, even when the shell has
 * children that hold its output (`sleep 30; …`); before, only the shell was killed and the hook
 * took as long as its children did. A hook that finishes keeps its exit code and output.
 */
import { strict as assert } from 'node:assert';
import { runHook } from '../../cli/daemon/snapshot-ops.js';
import { waitFor } from './helpers.js';
import { groupAlive } from '../support/poll.js';

/** Far below the 30 s the hook's child sleeps: the deadline, not the child, ended it. */
const endedByDeadlineMs = 10_000;

describe('snapshot hooks: runHook (real shells)', function () {
  this.timeout(40_000);

  it('kills a hook past its deadline with its children: it ends at the deadline, not when they would', async () => {
    const t0 = Date.now();
    const r = await runHook('echo $$; sleep 30; echo never', 300, {});
    const tookMs = Date.now() - t0;
    assert.ok(tookMs < endedByDeadlineMs, `ended after ${tookMs} ms`);
    assert.equal(r.ok, false);
    assert.equal(r.exitCode, null);
    const [pid, ...rest] = r.output.split('\n');
    assert.match(rest.join('\n'), /\(killed after 300 ms\)$/);
    assert.doesNotMatch(r.output, /never/);
    const pgid = Number(pid);
    assert.ok(Number.isInteger(pgid) && pgid > 1, r.output);
    // SIGKILLed children are reaped by init shortly after: nothing of the hook's group may live on.
    await waitFor(`the hook's process group ${pgid} gone`, 5_000, () => !groupAlive(pgid));
  });

  it('a hook that finishes in time keeps its exit code and output', async () => {
    assert.deepEqual(await runHook('echo pre $GALLEON_VOLUME', 5_000, { GALLEON_VOLUME: 'db' }), { command: 'echo pre $GALLEON_VOLUME', ok: true, exitCode: 0, output: 'pre db' });
    const failed = await runHook('echo frozen-fs-busy >&2; exit 3', 5_000, {});
    assert.deepEqual([failed.ok, failed.exitCode, failed.output], [false, 3, 'frozen-fs-busy']);
  });
});
