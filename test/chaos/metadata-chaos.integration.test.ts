/**
 * Runs the metadata chaos script as CI does: a real three-member quorum, SIGKILLs for 60 s,
 * then no acknowledged write lost and a linearizable history. A second, short run injects a
 * lost write and must be caught, so the first one's "yes" means something.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const summaryPattern = /^kills: (\d+), operations: (\d+), acknowledged writes: (\d+), lost: (\d+), linearizable: (yes|no|unknown)$/m;

interface RunResult {
  code: number | null;
  output: string;
}

let running: ChildProcess | null = null;

/** Runs the script in its own process group so a timeout can take its members down with it. */
function runChaos(args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/metadata-chaos.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, GALLEON_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    running = child;
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      killGroup(child, 'SIGTERM');
      setTimeout(() => killGroup(child, 'SIGKILL'), 5_000).unref();
      reject(new Error(`chaos run did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      running = null;
      resolve({ code, output });
    });
    child.once('error', reject);
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

function summaryOf(output: string): { kills: number; operations: number; acknowledged: number; lost: number; linearizable: string } {
  const m = summaryPattern.exec(output);
  assert.ok(m !== null, `no summary line in the output:\n${output}`);
  return { kills: Number(m[1]), operations: Number(m[2]), acknowledged: Number(m[3]), lost: Number(m[4]), linearizable: m[5]! };
}

describe('metadata chaos run (3 members, SIGKILL, linearizability check)', function () {
  this.timeout(180_000);

  afterEach(() => {
    if (running !== null) killGroup(running, 'SIGKILL');
  });

  it('loses no acknowledged write and stays linearizable through 60 s of kill -9', async () => {
    const { code, output } = await runChaos(['--seconds', '60'], 150_000);
    const s = summaryOf(output);
    assert.equal(s.lost, 0, output);
    assert.equal(s.linearizable, 'yes', output);
    assert.equal(code, 0, output);
    assert.ok(s.kills >= 5, `only ${s.kills} kills:\n${output}`);
    assert.ok(/kills of the leader: [1-9]/.test(output), `the leader was never killed:\n${output}`);
    assert.ok(s.operations >= 1_000 && s.acknowledged >= 300, `too little load to mean anything:\n${output}`);
  });

  it('catches an acknowledged write that never reached the cluster', async () => {
    const { code, output } = await runChaos(['--seconds', '3', '--kill-interval-ms', '600000', '--inject-lost-write'], 60_000);
    const s = summaryOf(output);
    assert.equal(s.lost, 1, output);
    assert.equal(s.linearizable, 'no', output);
    assert.match(output, /key label:chaos-k0: not linearizable/);
    assert.equal(code, 1, output);
  });
});
