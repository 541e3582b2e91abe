/**
 * A backup policy on a real 3-node cluster runs once per due time across a kill -9 of the
 * metadata leader: the run journal on the target (`runs/<policy>/<dueMs>-<backup>.json`, written
 * only by the scheduler whose end of the run the cluster accepted) has every due time of the
 * schedule between the first and the last run exactly once — none lost, none doubled — and the
 * runs after the kill were made by another scheduler.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackupPolicy, ClusterStatus, Volume } from '../../proto/metadata-types.js';
import type { UpResult } from '../../cli/local/cluster.js';
import type { RunRecord } from '../../dataplane/backup/service.js';
import type { RetentionPlan } from '../../dataplane/backup/logic/retention.js';
import { AdminClient } from '../../cli/lib/admin-client.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';
import { pollUntil } from '../support/poll.js';
import { upClientEnv } from '../support/tls.js';

// The schedule's period is the test's wait: 3 due times after the kill, 2 before. A run ends
// 0.1–2.1 s after its due time here (2026-12-07, load ~8 on 2 cores); one that runs late pushes
// the next due time back, never drops it (followingDue), which the test checks as before.
const periodMs = 2000;

describe('galleon backup policy across a metadata leader change (integration)', function () {
  this.timeout(240_000);
  let root = '';
  let clusterDir = '';
  let up: UpResult;
  let env: Record<string, string> = {};
  const json = <T>(args: string[]): Promise<T> => cliJson<T>(args, env);

  before(async function () {
    this.timeout(240_000);
    root = await makeTempDir('galleon-backup-policy-');
    clusterDir = join(root, 'cluster');
    // The schedule across a leader change is the point; the test polls for a run in progress with
    // CLI calls, each a process, so the cluster runs without TLS and tokens (their own suites).
    const r = await runCli(['up', '--no-auth', '--insecure-plaintext', '--no-first-volume', '--dir', clusterDir, '--nodes', '3', '--base-port', '0',
      '--heartbeat-interval-ms', '200', '--lease-ttl-ms', '1000', '--data-node-down-after-ms', '1500', '--json'], {}, 180_000);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    up = JSON.parse(r.stdout) as UpResult;
    env = { GALLEON_ADDRESS: up.cluster.nodes.map((n) => n.ipcAddress).join(','), ...upClientEnv(clusterDir) };
    await waitFor('three data nodes up', 60_000, async () => (await json<ClusterStatus>(['cluster', 'status'])).dataNodes.filter((n) => n.state === 'up').length === 3);
  });

  after(async function () {
    this.timeout(90_000);
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 60_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    if (root !== '') await killClusterDir(root);
  });

  async function journal(policy: string): Promise<RunRecord[]> {
    const dir = join(root, 'target', 'runs', policy);
    const names = await readdir(dir).catch(() => [] as string[]);
    return Promise.all(names.filter((n) => n.endsWith('.json')).map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8')) as RunRecord));
  }

  it('runs every due time once, before and after kill -9 of the leader', async () => {
    // 2,048 addresses to probe: a run lasts about a second, so the kill below often falls inside one.
    const vol = await json<Volume>(['volume', 'create', '--name', 'sched', '--size', '8M', '--block-size', '4K']);
    for (const i of [0, 5, 9]) assert.equal((await runCli(['volume', 'write-block', vol.name, String(i), '--data', randomBytes(16).toString('hex')], env)).code, 0);
    await mkdir(join(root, 'target'));
    await json(['backup-target', 'add', 'target', '--dir', join(root, 'target')]);
    const dry = await json<RetentionPlan>(['backup', 'policy', 'create', '--volume', 'sched', '--target', 'target', '--schedule', '*/2 * * * * *', '--dry-run']);
    assert.deepEqual(dry, { keep: [], drop: [], volume: 'sched', target: 'target' });
    assert.deepEqual(await json<BackupPolicy[]>(['backup', 'policy', 'list']), [], '--dry-run creates nothing');
    const p = await json<BackupPolicy>(['backup', 'policy', 'create', '--volume', 'sched', '--target', 'target', '--schedule', '*/2 * * * * *', '--strategy', 'incremental', '--verify-sample', '50']);
    assert.equal(p.nextDueMs % periodMs, 0);
    await waitFor('two runs', 60_000, async () => (await journal(p.id)).length >= 2);

    const status = await json<ClusterStatus>(['cluster', 'status']);
    const leader = up.cluster.nodes.find((n) => n.id === status.leaderId);
    assert.ok(leader !== undefined, `leader ${String(status.leaderId)} is a node of the cluster`);
    // Polled in-process every 20 ms (a CLI process per poll takes about as long as a run: it missed every run on a loaded CI machine).
    const admin = new AdminClient(leader.ipcAddress);
    await pollUntil('a run under way', async () => (await admin.route<BackupPolicy[]>('backupPolicyList', {}))[0]?.lastRun?.done === false, 60_000, 20);
    const killedAtMs = Date.now();
    process.kill(Number((await readFile(join(leader.storagePath, 'galleon.pid'), 'utf8')).trim()), 'SIGKILL');
    env = { ...env, GALLEON_ADDRESS: up.cluster.nodes.filter((n) => n !== leader).map((n) => n.ipcAddress).join(',') };

    await waitFor('three runs due after the kill', 150_000, async () => (await journal(p.id)).filter((r) => r.dueMs > killedAtMs).length >= 3);
    const runs = (await journal(p.id)).sort((a, b) => a.dueMs - b.dueMs);
    const dues = runs.map((r) => r.dueMs);
    assert.equal(new Set(dues).size, dues.length, `a due time ran twice: ${dues.join(' ')}`);
    for (let i = 1; i < dues.length; i += 1) assert.equal((dues[i] ?? 0) - (dues[i - 1] ?? 0), periodMs, `a due time was lost between ${dues[i - 1]} and ${dues[i]}`);
    assert.equal(dues[0], p.nextDueMs, 'the first run is the first due time');
    const killed = `${leader.id}:`;
    const afterKill = runs.filter((r) => r.dueMs > killedAtMs);
    assert.ok(afterKill.every((r) => !r.claimedBy.startsWith(killed)), `runs after the kill are another scheduler's: ${JSON.stringify(afterKill)}`);
    // A run the killed leader had claimed and not finished is the new leader's to finish (when the kill fell inside one).
    const takenOver = runs.filter((r) => r.dueMs < killedAtMs && !r.claimedBy.startsWith(killed)).length;
    process.stdout.write(`      (${runs.length} runs, ${takenOver} taken over from the killed leader)\n`);
    assert.ok(afterKill.some((r) => r.backupId !== null && r.error === null), `a run after the kill succeeded: ${JSON.stringify(afterKill)}`);
    const listed = await json<BackupPolicy[]>(['backup', 'policy', 'list']);
    assert.equal(listed[0]?.id, p.id);
    assert.ok((listed[0]?.lastRun?.dueMs ?? 0) >= (dues.at(-1) ?? 0));
    await json(['backup', 'policy', 'delete', p.id]);
  });
});
