/**
 * Failover timings through the real binary: a bad combination is refused by `daemon start` and
 * `up` with one line, exit 2 and nothing created; `galleon up` with short timings starts daemons
 * (`daemon start` with the flags) that show them in `daemon config`, and the metadata role marks
 * a killed data node down after --data-node-down-after-ms (not the 10 s default).
 */
import { strict as assert } from 'node:assert';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DaemonConfig } from '../../cli/daemon/types.js';
import type { LocalCluster } from '../../cli/local/cluster.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { TestCluster } from '../dataplane/cluster.js';
import { cliJson, killDaemonAt, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';

const downAfterMs = 1500;

describe('galleon failover timings (integration)', function () {
  this.timeout(60_000);
  let root = '';
  let storage = '';
  let api: MetadataClient | null = null;
  const dataNodes = new TestCluster();

  before(async () => {
    root = await makeTempDir('galleon-timings-');
    storage = join(root, 'node');
  });
  after(async () => {
    await dataNodes.stopAll();
    api?.close();
    await killDaemonAt(storage);
    await killClusterDir(join(root, 'cluster'));
    await killClusterDir(root);
  });

  it('refuses a down-after that does not exceed lease ttl + margin: one line, exit 2, nothing created', async () => {
    const line = 'Error: data-node-down-after-ms: 4400 ms must exceed the lease ttl 4000 ms plus its 400 ms safety margin (4400 ms), or two primaries could acknowledge writes — raise --data-node-down-after-ms above 4400, or lower --lease-ttl-ms\n';
    const start = await runCli(['daemon', 'start', '--storage-path', storage, '--lease-ttl-ms', '4000', '--data-node-down-after-ms', '4400']);
    assert.equal(start.stderr, line);
    assert.equal(start.code, 2);
    await assert.rejects(access(storage), 'no storage was created');

    const upDir = join(root, 'up');
    const up = await runCli(['up', '--no-auth', '--dir', upDir, '--nodes', '1', '--base-port', '0', '--data-node-down-after-ms', '4400']);
    assert.equal(up.stderr, line);
    assert.equal(up.code, 2);
    await assert.rejects(access(upDir), 'galleon up created nothing');
  });

  it('galleon up passes the timings to its daemons: daemon config shows them, a silent data node is down after down-after', async () => {
    const dir = join(root, 'cluster');
    // TLS is not the point: a plaintext cluster, so the standalone data node and the client below need no certificates.
    const up = await runCli(['up', '--no-auth', '--insecure-plaintext', '--dir', dir, '--nodes', '1', '--base-port', '0', '--heartbeat-interval-ms', '200', '--lease-ttl-ms', '1000', '--data-node-down-after-ms', String(downAfterMs)]);
    assert.equal(up.code, 0, up.stderr);
    const cluster = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as LocalCluster;
    assert.deepEqual(cluster.timings, { heartbeatIntervalMs: 200, leaseTtlMs: 1000, dataNodeDownAfterMs: downAfterMs }, 'kept for a restart after `galleon down`');
    const env = { GALLEON_ADDRESS: cluster.daemonAddress };
    const cfg = await cliJson<DaemonConfig>(['daemon', 'config'], env);
    assert.deepEqual([cfg.heartbeatIntervalMs, cfg.leaseTtlMs, cfg.dataNodeDownAfterMs], [200, 1000, downAfterMs]);
    // An explicit --insecure-plaintext cluster says so: in its config and in daemon status.
    assert.equal(cfg.tls, false);
    assert.equal(cluster.tls, false);
    const status = await runCli(['daemon', 'status'], env);
    assert.match(status.stdout, /^Security: +PLAINTEXT \(--insecure-plaintext/m);
    const bind = cluster.nodes[0]?.bindAddress ?? '';

    // A standalone data node registered with the daemon's metadata role, then killed.
    await dataNodes.start('extra', 'zone-a', undefined, ['--metadata', bind, '--heartbeat-ms', '200', '--lease-ttl-ms', '1000', '--scrub-rate', '0']);
    const client = new MetadataClient({ addresses: [bind] });
    api = client;
    const extra = async (): Promise<string | undefined> => (await client.listDataNodes()).find((n) => n.id === 'extra')?.state;
    await waitFor('the extra data node up', 30_000, async () => await extra() === 'up');
    await dataNodes.kill('extra');
    const killedAt = Date.now();
    await waitFor('the extra data node marked down', 9_000, async () => await extra() === 'down');
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < 6_000, `marked down after ${tookMs} ms: the 10 s default was used instead of ${downAfterMs} ms`);
    process.stdout.write(`      data node marked down ${tookMs} ms after its kill (down after ${downAfterMs} ms)\n`);
    assert.equal((await runCli(['down', '--dir', dir])).code, 0);
  });
});
