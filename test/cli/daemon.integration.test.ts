/**
 * One real daemon, started by the real binary with `daemon start --detach --config FILE`:
 * the file's settings take effect with flags overriding them, bad config files fail with one
 * line and no process left behind, and volumes survive `daemon restart` and a full stop/start.
 */
import { strict as assert } from 'node:assert';
import { readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Volume } from '../../proto/metadata-types.js';
import type { DaemonConfig, DaemonStatus } from '../../cli/daemon/types.js';
import { osFreePort } from '../../cli/local/ports.js';
import { isProcessAlive } from '../../cli/daemon/pidfile.js';
import { cliJson, killDaemonAt, killClusterDir, makeTempDir, runCli } from './helpers.js';
import { nodeTlsDir } from '../../cli/lib/tls.js';
import { makeTestPki } from '../support/tls.js';

describe('galleon daemon with a config file (integration)', function () {
  this.timeout(90_000);
  let root = '';
  let storage = '';
  let configFile = '';
  let env: Record<string, string> = {};
  let startArgs: string[] = [];
  let tlsDir = '';

  before(async () => {
    root = await makeTempDir('galleon-daemon-e2e-');
    storage = join(root, 'node');
    const [bind, ipc, data] = [await osFreePort(), await osFreePort(), await osFreePort()];
    // TLS as an operator would set it up: certificates outside the storage path, named by [security] tls_dir.
    const pki = await makeTestPki(root, [{ id: 'node', storagePath: join(root, 'certs') }]);
    tlsDir = nodeTlsDir(join(root, 'certs'));
    env = { GALLEON_ADDRESS: `127.0.0.1:${ipc}`, GALLEON_TLS_DIR: pki.clientDir };
    configFile = join(root, 'daemon.toml');
    await writeFile(configFile, [
      '[daemon]', `storage_path = "${storage}"`, 'block_size = 8192', `bind_address = "127.0.0.1:${bind}"`,
      `ipc_address = "127.0.0.1:${ipc}"`, `data_address = "127.0.0.1:${data}"`, 'zone = "zone-a"',
      '', '[cluster]', 'target_voters = 1', '', '[replication]', 'strategy = "asynchronous"', '', '[persistence]', 'level = "high"', '',
      '[security]', `tls_dir = "${tlsDir}"`, '',
    ].join('\n'));
    startArgs = ['daemon', 'start', '--detach', '--config', configFile, '--persistence-level', 'maximum'];
  });

  after(async () => {
    await killDaemonAt(storage);
    if (root !== '') await killClusterDir(root);
  });

  it('bad config files fail with one line naming the problem, and start nothing', async () => {
    const yamlFile = join(root, 'bad.yaml');
    await writeFile(yamlFile, 'daemon:\n  storage_path: /tmp/x\ncluster:\n  auto_join: true\n');
    const tomlFile = join(root, 'bad.toml');
    await writeFile(tomlFile, '[daemon]\nblock_size = 3000\n');
    const cases: [string[], string][] = [
      [['daemon', 'start', '--config', yamlFile], `Error: ${yamlFile}: unknown key "cluster.auto_join" — known keys in [cluster]: peer_addresses, target_voters, heartbeat_interval_ms, lease_ttl_ms, data_node_down_after_ms`],
      [['daemon', 'start', '--config', tomlFile], 'Error: block-size: 3000 is not a power of two between 4096 and 1048576 — use e.g. 4K, 128K or 1M'],
      [['daemon', 'start', '--config', join(root, 'nope.toml')], `Error: cannot read config file ${join(root, 'nope.toml')} (ENOENT) — check the --config path`],
      [['daemon', 'start', '--replication-strategy', 'eventual'], 'Error: Expected --replication-strategy=eventual to be one of: synchronous, asynchronous — see `galleon daemon start --help`'],
    ];
    for (const [args, line] of cases) {
      const r = await runCli(args, env);
      assert.equal(r.stderr, `${line}\n`);
      assert.equal(r.code, 2);
    }
    // TLS is the default: a node without its certificate does not start (plaintext only when asked for).
    const noCert = await runCli([...startArgs, '--tls-dir', join(root, 'no-certs')], env);
    assert.equal(noCert.code, 5);
    assert.equal(noCert.stderr, `Error: TLS: cannot read ${join(root, 'no-certs', 'ca.crt')} (ENOENT) — issue this node a certificate (\`galleon cert issue --node ID --out DIR\`) and pass --tls-dir DIR, or --insecure-plaintext for development only\n`);
    await assert.rejects(access(storage), 'no storage was created');
  });

  it('starts detached with the file\'s settings, flags overriding it', async () => {
    const r = await runCli(startArgs, env);
    assert.equal(r.code, 0, r.stderr);
    // No --node-id: a new node takes the id its certificate names (makeTestPki issued it for "node").
    assert.match(r.stdout, /^Daemon node started in the background \(pid \d+\)\.$/m);
    const pid = Number((await readFile(join(storage, 'galleon.pid'), 'utf8')).trim());
    const status = await cliJson<DaemonStatus>(['daemon', 'status'], env);
    assert.equal(status.pid, pid);
    assert.equal(status.healthy, true);
    assert.equal(status.metadata?.raftRole, 'leader');
    assert.deepEqual({ mode: status.security.mode, tlsDir: status.security.tlsDir }, { mode: 'mutual-tls', tlsDir });
    const cfg = await cliJson<DaemonConfig>(['daemon', 'config'], env);
    assert.equal(cfg.blockSizeBytes, 8192);
    assert.equal(cfg.zone, 'zone-a');
    assert.equal(cfg.replicationStrategy, 'asynchronous');
    assert.equal(cfg.persistenceLevel, 'maximum', 'the flag overrides the file');
    assert.equal(cfg.targetVoters, 1);
    assert.equal(cfg.configFile, configFile);
    assert.equal(cfg.nodeId, status.nodeId);

    const second = await runCli(startArgs, env);
    assert.equal(second.code, 5);
    assert.equal(second.stderr, `Error: a daemon (pid ${pid}) already runs on ${storage} — stop it with \`galleon daemon stop\`, or use another --storage-path\n`);
  });

  it('keeps volumes and its node id across daemon restart and a stop/start', async () => {
    const vol = await cliJson<Volume>(['volume', 'create', '-n', 'persisted', '-s', '10M', '-c', 'fast-local-ssd'], env);
    assert.equal(vol.blockSizeBytes, 8192, 'a volume created without --block-size gets the daemon\'s');
    const before = await cliJson<DaemonStatus>(['daemon', 'status'], env);

    const restarted = await runCli(['daemon', 'restart'], env);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.equal(restarted.stdout.trim(), `Daemon ${before.nodeId} restarted (metadata role: running).`);
    assert.deepEqual(await cliJson<Volume>(['volume', 'get', 'persisted'], env), vol);

    const stop = await runCli(['daemon', 'stop'], env);
    assert.equal(stop.code, 0, stop.stderr);
    await assert.rejects(access(join(storage, 'galleon.pid')), 'pid file removed on a graceful stop');
    // Gone means not running: it may stay a zombie until init reaps it (pidfile.ts).
    assert.equal(isProcessAlive(before.pid), false, 'process gone');

    const again = await runCli(startArgs, env);
    assert.equal(again.code, 0, again.stderr);
    const after = await cliJson<DaemonStatus>(['daemon', 'status'], env);
    assert.equal(after.nodeId, before.nodeId);
    assert.notEqual(after.pid, before.pid);
    assert.deepEqual((await cliJson<Volume[]>(['volume', 'list'], env)).map((v) => v.id), [vol.id]);

    const stop2 = await cliJson<{ stopped: boolean }>(['daemon', 'stop'], env);
    assert.equal(stop2.stopped, true);
  });

  it('--freshness strict refuses an encrypted read no other replica can check (here: a one-replica volume), best-effort serves it; status says which', async () => {
    const strict = await runCli([...startArgs, '--freshness', 'strict'], env);
    assert.equal(strict.code, 0, strict.stderr);
    try {
      assert.equal((await cliJson<DaemonStatus>(['daemon', 'status'], env)).security.freshness, 'strict');
      assert.match((await runCli(['daemon', 'status'], env)).stdout, /Read freshness:\s+strict/);
      const classFile = join(root, 'enc-one.json');
      await writeFile(classFile, JSON.stringify({ name: 'enc-one', encryption: true, replicas: 1, writeConcern: 'durable' }));
      assert.equal((await runCli(['storage-class', 'create', classFile], env)).code, 0);
      const vol = await cliJson<Volume>(['volume', 'create', '-n', 'lonely', '-s', '1M', '-c', 'enc-one'], env);
      assert.equal(vol.encrypted, true);
      assert.equal((await runCli(['volume', 'write-block', 'lonely', '0', '--data', 'only-one-copy'], env)).code, 0);
      const refused = await runCli(['volume', 'read-block', 'lonely', '0'], env);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, new RegExp(`^Error: block 0 \\(inode 0\\) of volume ${vol.id}: no other replica of its PG is in sync, so the answer of data node \\S+ cannot be checked for a rollback; refused \\(freshness strict\\) — .*--freshness best-effort`));
      assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    } finally {
      await runCli(['daemon', 'stop'], env);
    }
    const lenient = await runCli(startArgs, env);
    assert.equal(lenient.code, 0, lenient.stderr);
    try {
      assert.equal((await cliJson<DaemonStatus>(['daemon', 'status'], env)).security.freshness, 'best-effort');
      const block = await cliJson<{ data: string }>(['volume', 'read-block', 'lonely', '0'], env);
      assert.ok(Buffer.from(block.data, 'base64').toString().startsWith('only-one-copy'), block.data);
    } finally {
      await runCli(['daemon', 'stop'], env);
    }
  });
});
