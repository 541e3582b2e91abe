/**
 * `isProcessAlive` against real processes: a running one, a zombie (killed, not yet reaped by its
 * parent: what a SIGKILLed detached daemon is until init reaps it), and one that is gone.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { isProcessAlive } from '../../cli/daemon/pidfile.js';
import { waitFor } from './helpers.js';

describe('isProcessAlive (real processes)', () => {
  let parent: ChildProcess | null = null;
  after(() => {
    if (parent?.pid !== undefined && isProcessAlive(parent.pid)) process.kill(parent.pid, 'SIGKILL');
  });

  it('a zombie is not alive; its non-reaping parent is; a reaped process is not', async function () {
    if (process.platform !== 'linux') this.skip();
    // The shell starts a short child, then becomes `sleep`, which never reaps it: a zombie for 30 s.
    parent = spawn('/bin/sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const child = await new Promise<number>((resolve) => parent?.stdout?.once('data', (d: Buffer) => { resolve(Number(d.toString().trim())); }));
    assert.ok(Number.isInteger(child) && child > 0);
    const parentPid = parent.pid ?? 0;
    assert.equal(isProcessAlive(parentPid), true);
    await waitFor('the child a zombie', 10_000, () => !isProcessAlive(child));
    process.kill(child, 0); // signal 0 still reaches it: the case the state check is for
    process.kill(parentPid, 'SIGKILL');
    await waitFor('the parent gone', 10_000, () => !isProcessAlive(parentPid));
  });
});
