/**
 * A snapshot delete's freeing of block versions survives the death of the daemon that ran it
 * (issue #11; cli/daemon/prune-runner.ts), on a real 3-node `galleon up`:
 * the delete commits (with the volume's prune request in the same command), the daemon that ran
 * it dies by kill -9 before its prune reached every node — the test hook
 * GALLEON_TEST_PRUNE_EXIT_AT makes it SIGKILL itself as its round is about to post to its own
 * data node, and the test kills it too if it still lives once the CLI answered — then it is
 * started again, and every data node's kept versions of the volume drop to exactly what the
 * remaining snapshot needs, and the pending record is cleared. Before the record existed, the
 * versions stayed on the node until some later prune of the same volume.
 *
 * The cluster runs with short failover timings (`timings`): the resume grace of a request whose
 * daemon is not running it is three data-node down-afters (prune-runner.ts), 6 s here instead of
 * the default 30 s, which the second test waits for. The first test's resume does not wait on it
 * (the restarted daemon takes what was pending at its start at once); the grace still exceeds the
 * second or so between the kill and the test's look at the pending record.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import type { ClusterStatus, Snapshot, Volume } from '../../proto/metadata-types.js';
import type { UpResult } from '../../cli/local/cluster.js';
import type { MetadataClient } from '../../metadata/service/client.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import { alive, cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';
import { upPlainCluster } from './plain-cluster.js';

const blockSize = 4096;
const blocks = 1500;
/** Failover timings of the cluster (`galleon up` flags): a 6 s resume grace (3 × down-after). */
const timings = { heartbeatIntervalMs: 200, leaseTtlMs: 1_000, dataNodeDownAfterMs: 2_000 };

describe('a snapshot delete\'s prune resumes after kill -9 of the daemon running it (integration)', function () {
  this.timeout(300_000);
  let root = '';
  let clusterDir = '';
  let up: UpResult;
  let env: Record<string, string> = {};
  let meta: MetadataClient | null = null;
  let client: BlockClient | null = null;
  const json = <T>(args: string[], e = env): Promise<T> => cliJson<T>(args, e);
  const pidOf = async (storagePath: string): Promise<number> => Number((await readFile(join(storagePath, 'galleon.pid'), 'utf8')).trim());
  /** Kept versions of the volume on one data node: [inode, block, epoch, seq]. */
  const versionsAt = async (dataAddress: string, volumeId: string): Promise<[number, number, number, number][]> => {
    const res = await request(`http://${dataAddress}/v1/volume-versions/${volumeId}`);
    if (res.statusCode !== 200) assert.fail(`GET versions of ${dataAddress}: ${res.statusCode} ${await res.body.text()}`);
    return ((await res.body.json()) as { versions: [number, number, number, number][] }).versions;
  };
  const restart = async (id: string, upEnv: Record<string, string>): Promise<void> => {
    const again = await runCli(['up', '--no-first-volume', '--dir', clusterDir, '--json'], upEnv, 120_000);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((JSON.parse(again.stdout) as UpResult).restarted, [id]);
  };

  before(async function () {
    this.timeout(240_000);
    root = await makeTempDir('galleon-prune-resume-');
    clusterDir = join(root, 'cluster');
    // The test's own clients write blocks and read the nodes' versions directly: no TLS, no tokens.
    ({ up, env, meta, blocks: client } = await upPlainCluster(clusterDir, `prune-resume-test-${process.pid}`, timings));
  });

  after(async function () {
    this.timeout(90_000);
    await client?.close();
    meta?.close();
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 60_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('kill -9 after the delete committed: the restarted daemon frees exactly what no snapshot needs, and clears the record', async function () {
    this.timeout(300_000);
    const vol = await json<Volume>(['volume', 'create', '--name', 'pr', '--size', `${Math.ceil((blocks * blockSize) / (1 << 20)) + 1}M`,
      '--block-size', '4K', '--storage-class', 'fast-local-ssd', '--replicas', '3']);
    const writeAll = async (): Promise<void> => {
      await client!.writeBlocks(vol.id, Array.from({ length: blocks }, (_, blockNo) => ({ inode: 0, blockNo, data: randomBytes(blockSize) })), 'replicated');
    };
    await writeAll();
    const s1 = await json<Snapshot>(['snapshot', 'create', 'pr', '--name', 's1']);
    await writeAll();
    const s2 = await json<Snapshot>(['snapshot', 'create', 'pr', '--name', 's2']);
    await writeAll();
    for (const n of up.cluster.nodes) assert.equal((await versionsAt(n.dataAddress, vol.id)).length, 2 * blocks, `${n.id} keeps a version per block for each snapshot`);

    // The daemon that resumes a volume's prune is its first up holder (node id order): it runs the delete and dies.
    const x = [...up.cluster.nodes].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
    // Started again with the test hook (`up` starts only the nodes that are not running).
    const first = await pidOf(x.storagePath);
    process.kill(first, 'SIGKILL');
    await waitFor(`${x.id}'s daemon gone`, 30_000, () => !alive(first));
    await restart(x.id, { GALLEON_TEST_PRUNE_EXIT_AT: x.dataAddress });
    await waitFor('three data nodes up', 60_000, async () => (await json<ClusterStatus>(['cluster', 'status'])).dataNodes.filter((n) => n.state === 'up').length === 3);
    const pid = await pidOf(x.storagePath);

    const del = await runCli(['snapshot', 'delete', 's1', '--yes', '--json'], { ...env, GALLEON_ADDRESS: x.ipcAddress });
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor('the deleting daemon gone', 30_000, () => !alive(pid));
    const afterKill = await meta!.getVolume(vol.id);
    const other = up.cluster.nodes.find((n) => n.id !== x.id)!;
    const shownPending = await runCli(['volume', 'get', 'pr'], { ...env, GALLEON_ADDRESS: other.ipcAddress });
    assert.deepEqual((await meta!.listSnapshots(vol.id)).map((s) => s.name), ['s2'], `the delete committed (CLI: ${del.code} ${del.stderr.trim()})`);

    await restart(x.id, {});
    const expected = (vs: [number, number, number, number][]): boolean =>
      vs.length === blocks && vs.every(([, , epoch]) => epoch >= s1.cut && epoch < s2.cut);
    const seen = new Map<string, number>();
    await waitFor('every node keeps only what s2 needs', 120_000, async () => {
      let ok = true;
      for (const n of up.cluster.nodes) {
        const vs = await versionsAt(n.dataAddress, vol.id).catch(() => []);
        seen.set(n.id, vs.length);
        ok &&= expected(vs);
      }
      return ok;
    }).catch((err: unknown) => { throw new Error(`${String(err)}; kept versions per node: ${JSON.stringify(Object.fromEntries(seen))}, expected ${blocks} each`); });
    // Checked after the versions, so that the code before the record fails on what matters.
    assert.deepEqual([afterKill.prune?.requested, afterKill.prune?.done], [1, 0], 'the delete left its prune pending when its daemon died');
    assert.match(shownPending.stdout, /^Version prune: +pending since .* \(request 1, done 0; /m, `${shownPending.stdout}${shownPending.stderr}`);
    const cleared = await waitFor('the pending record cleared', 60_000, async () => {
      const v = await meta!.getVolume(vol.id);
      return v.prune !== undefined && v.prune.done === v.prune.requested ? v : undefined;
    });
    assert.equal(cleared.prune?.done, 1);
    const shown = await json<Volume>(['volume', 'get', 'pr']);
    assert.deepEqual(shown.prune, cleared.prune, 'volume get --json shows the record');
    assert.match((await runCli(['volume', 'get', 'pr'], env)).stdout, /^Version prune: +done \(1 request\(s\)\)$/m);
  });

  it('a delete no daemon runs (an API client\'s) is resumed by the first up holder; a data node down keeps it pending until it is back', async function () {
    this.timeout(300_000);
    const vol = await meta!.getVolume('pr');
    const writeAll = async (): Promise<void> => {
      await client!.writeBlocks(vol.id, Array.from({ length: blocks }, (_, blockNo) => ({ inode: 0, blockNo, data: randomBytes(blockSize) })), 'replicated');
    };
    const s2 = await meta!.getSnapshot('s2');
    await writeAll();
    const s3 = await json<Snapshot>(['snapshot', 'create', 'pr', '--name', 's3']);
    await writeAll();
    const sorted = [...up.cluster.nodes].sort((a, b) => (a.id < b.id ? -1 : 1));
    const z = sorted[2]!;
    const zPid = await pidOf(z.storagePath);
    process.kill(zPid, 'SIGKILL');
    await waitFor(`${z.id}'s daemon gone`, 30_000, () => !alive(zPid));

    await meta!.deleteSnapshot('s2'); // straight to the metadata API: no daemon runs a round for it
    const onlyS3 = (vs: [number, number, number, number][]): boolean => vs.length === blocks && vs.every(([, , epoch]) => epoch >= s2.cut && epoch < s3.cut);
    await waitFor('the up holders pruned by the resumed round', 150_000, async () => {
      for (const n of sorted.slice(0, 2)) if (!onlyS3(await versionsAt(n.dataAddress, vol.id).catch(() => []))) return false;
      return true;
    });
    const pending = await meta!.getVolume(vol.id);
    assert.ok(pending.prune !== undefined && pending.prune.requested > pending.prune.done, `pending while ${z.id} is down: ${JSON.stringify(pending.prune)}`);

    await restart(z.id, {});
    await waitFor(`${z.id} pruned and the record cleared once it is back`, 150_000, async () => {
      const v = await meta!.getVolume(vol.id);
      return v.prune !== undefined && v.prune.done === v.prune.requested && onlyS3(await versionsAt(z.dataAddress, vol.id).catch(() => []));
    });
  });
});
