/**
 * The last-resort handler in a real child process: an uncaught exception or an unhandled
 * rejection is logged at error level, counted, and the process lives on; an INVARIANT_VIOLATION
 * runs the fatal cleanup and exits 70 (cli/daemon/README.md, "Last resort").
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('./fixtures/guarded-process.ts', import.meta.url));
const childTimeoutMs = 30_000;

function runGuarded(mode: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); reject(new Error(`guarded ${mode} did not exit`)); }, childTimeoutMs);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

describe('hardening: the last-resort handler (integration)', function () {
  this.timeout(60_000);

  for (const [mode, kind] of [['throw', 'exception'], ['reject', 'rejection']] as const) {
    it(`an uncaught ${kind} is logged, counted and survived`, async () => {
      const r = await runGuarded(mode);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`galleon_uncaught_errors_total\\{kind="${kind}"\\} 1`));
      assert.match(r.stdout, /still alive/);
      assert.match(r.stderr, /"level":50.*the process keeps running/);
    });
  }

  it('an INVARIANT_VIOLATION still stops the process loudly (exit 70, cleanup ran)', async () => {
    const r = await runGuarded('invariant');
    assert.equal(r.code, 70);
    assert.match(r.stdout, /onFatal ran/);
    assert.doesNotMatch(r.stdout, /still alive/);
    assert.match(r.stderr, /"level":60.*invariant violated: stopping/);
  });
});
