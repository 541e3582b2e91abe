/**
 * Helpers of the FUSE tests (`*.fuse.test.ts`): whether real mounts can run here, temp mount
 * points that are always unmounted and removed, and shell commands run asynchronously — a
 * synchronous child (execSync) would block the event loop that answers the mount's requests.
 *
 * Skipping is loud: a suite that cannot mount says why on stderr; on CI as root (`CI=true`,
 * uid 0) a missing FUSE is a failure, never a silent skip.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadFuseBinding } from '../../vfs/fuse/binding.js';
import { isFuseMounted, unmountDir } from '../../vfs/fuse/stale.js';

const execFileP = promisify(execFile);
const shellTimeoutMs = 60_000;

export function fuseUnavailableReason(): string | undefined {
  if (!existsSync('/dev/fuse')) return '/dev/fuse does not exist (no FUSE kernel module or not passed to this container)';
  if (process.getuid?.() !== 0) return 'the FUSE tests mount with allow_other and setpriv: they need root';
  try { loadFuseBinding(); } catch (err) { return (err as Error).message + ' — ' + String((err as { hint?: string }).hint ?? ''); }
  return undefined;
}

/** `describe` for suites that mount: skipped loudly when FUSE cannot run, failed on CI as root. */
export function describeFuse(title: string, body: (this: Mocha.Suite) => void): void {
  const reason = fuseUnavailableReason();
  if (reason === undefined) { describe(title, body); return; }
  if (process.env.CI === 'true' && process.getuid?.() === 0) {
    describe(title, () => { it('needs FUSE on CI', () => { throw new Error(`FUSE unavailable on CI: ${reason}`); }); });
    return;
  }
  process.stderr.write(`\n*** SKIPPING FUSE suite "${title}": ${reason}\n`);
  describe.skip(title, body);
}

/** A fresh mount-point directory; `cleanup()` unmounts whatever is still there and removes it. */
export function tempMountPoint(): { dir: string; cleanup(): Promise<void> } {
  const base = mkdtempSync(join(tmpdir(), 'galleon-vfuse-'));
  const dir = join(base, 'mnt');
  mkdirSync(dir);
  chmodSync(base, 0o755); // mkdtemp's 0700 would stop other uids before they reach the mount
  return {
    dir,
    async cleanup() {
      if (await isFuseMounted(dir)) await unmountDir(dir, true);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

export interface ShellResult { stdout: string; stderr: string; code: number }

/** Runs `script` with bash, asynchronously; never rejects on a non-zero exit (the test asserts). */
export async function sh(script: string, timeoutMs = shellTimeoutMs): Promise<ShellResult> {
  try {
    const { stdout, stderr } = await execFileP('bash', ['-c', script], { timeout: timeoutMs, encoding: 'utf8' });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 };
  }
}

/** Runs `script` as uid/gid 65534 (nobody/nogroup) with no supplementary groups. */
export function shAsNobody(script: string): Promise<ShellResult> {
  return sh(`setpriv --reuid=65534 --regid=65534 --clear-groups bash -c ${JSON.stringify(script)}`);
}
