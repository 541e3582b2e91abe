/**
 * End to end: the real `galleon` binary against a real 3-node cluster started with
 * `galleon up` on OS-chosen loopback ports in a temp dir. Every command in both output modes,
 * bad inputs with their exact error line and exit code (and proof that nothing changed),
 * runtime join and leave. One cluster for the whole file: starting it is the slow part.
 */
import { strict as assert } from 'node:assert';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterStatus, DataNode, Member, StorageClass, Volume } from '../../proto/metadata-types.js';
import type { DaemonConfig, DaemonStatus } from '../../cli/daemon/types.js';
import type { UpResult, LocalNode } from '../../cli/local/cluster.js';
import { osFreePort } from '../../cli/local/ports.js';
import { isProcessAlive } from '../../cli/daemon/pidfile.js';
import { cliJson, killClusterDir, killDaemonAt, makeTempDir, runCli, waitFor } from './helpers.js';
import { Agent, request } from 'undici';
import { loadTlsDir } from '../../cli/lib/tls.js';
import { undiciConnectOptions, type TlsMaterial } from '../../proto/tls.js';
import { upClientEnv } from '../support/tls.js';

describe('galleon CLI on a real local cluster (integration)', function () {
  this.timeout(120_000);
  let root = '';
  let clusterDir = '';
  let nodes: LocalNode[] = [];
  let env: Record<string, string> = {};
  /** The operator certificate `galleon up` made: every CLI call and HTTP probe presents it. */
  let tlsEnv: Record<string, string> = {};
  let clientTls: TlsMaterial | null = null;
  const extraDaemons: string[] = [];

  const json = <T>(args: string[], e = env): Promise<T> => cliJson<T>(args, e);
  const httpsGet = async (address: string, path: string): Promise<{ status: number; text: string }> => {
    const dispatcher = new Agent({ connect: undiciConnectOptions(clientTls) ?? {} });
    try {
      const res = await request(`https://${address}${path}`, { dispatcher });
      return { status: res.statusCode, text: await res.body.text() };
    } finally {
      await dispatcher.close();
    }
  };
  const volumeList = (): Promise<Volume[]> => json<Volume[]>(['volume', 'list']);

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-cli-e2e-');
    clusterDir = join(root, 'cluster');
    const r = await runCli(['up', '--no-auth', '--no-first-volume', '--dir', clusterDir, '--nodes', '3', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    const up = JSON.parse(r.stdout) as UpResult;
    nodes = up.cluster.nodes;
    tlsEnv = upClientEnv(clusterDir);
    clientTls = await loadTlsDir(upClientEnv(clusterDir).GALLEON_TLS_DIR, 'cli');
    env = { ...tlsEnv, GALLEON_ADDRESS: up.cluster.daemonAddress };
    assert.equal(up.alreadyUp, false);
    assert.equal(up.status.members.length, 3);
  });

  after(async function () {
    this.timeout(60_000);
    for (const storage of extraDaemons) await killDaemonAt(storage);
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('up: a leader, three voters, three data nodes; running it again says so and exits 0', async () => {
    const status = await json<ClusterStatus>(['cluster', 'status']);
    assert.ok(status.leaderId !== null);
    assert.deepEqual(status.members.map((m) => m.role), ['voter', 'voter', 'voter']);
    assert.equal(status.dataNodes.filter((n) => n.state === 'up').length, 3);

    const again = await runCli(['up', '--dir', clusterDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^The 3-node cluster in .* is already up \(leader node\d\)\.$/m);
    assert.match(again.stdout, /galleon --daemon-address 127\.0\.0\.1:\d+ volume list/);
  });

  it('cluster status / peers and node list, as tables and as JSON', async () => {
    const [status, peers, nodesOut, statusJson, peersJson, nodesJson] = await Promise.all([
      runCli(['cluster', 'status'], env), runCli(['cluster', 'peers'], env), runCli(['node', 'list'], env),
      json<ClusterStatus>(['cluster', 'status']), json<Member[]>(['cluster', 'peers']), json<DataNode[]>(['node', 'list']),
    ]);
    for (const r of [status, peers, nodesOut]) assert.equal(r.code, 0, r.stderr);
    assert.match(status.stdout, /^Leader: +node\d \(127\.0\.0\.1:\d+\)$/m);
    assert.match(status.stdout, /^Members: +3 \(3 voters, 0 learners\)$/m);
    assert.match(peers.stdout, /│ ID +│ ADDRESS +│ ADMIN ADDRESS +│ ROLE +│ LEADER/);
    for (const n of nodes) assert.match(peers.stdout, new RegExp(`│ ${n.id} +│ ${n.bindAddress.replaceAll('.', '\\.')} +│ ${n.ipcAddress.replaceAll('.', '\\.')} +│ voter`));
    assert.match(nodesOut.stdout, /│ node1 +│ 127\.0\.0\.1:\d+ +│ default +│ up +│ [\d.]+ [KMGT]iB/);
    assert.deepEqual(peersJson.map((m) => m.id).sort(), ['node1', 'node2', 'node3']);
    assert.deepEqual(statusJson.members.map((m) => m.id).sort(), ['node1', 'node2', 'node3']);
    assert.deepEqual(nodesJson.map((n) => n.address).sort(), nodes.map((n) => n.dataAddress).sort());
    assert.ok(nodesJson.every((n) => n.capacityBytes > 0 && n.zone === 'default'));
  });

  it('volume create / list / get / expand / label / delete, in both output modes', async () => {
    const created = await json<Volume>(['volume', 'create', '--name', 'web-data', '--size', '1G', '--storage-class', 'fast-local-ssd', '--label', 'team=web']);
    assert.equal(created.name, 'web-data');
    assert.equal(created.sizeBytes, 1024 ** 3);
    assert.equal(created.storageClass, 'fast-local-ssd');
    assert.equal(created.type, 'persistent');
    assert.deepEqual(created.labels, { team: 'web' });
    assert.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

    const human = await runCli(['volume', 'create', '-n', 'db-data', '-s', '512M', '-c', 'encrypted-storage', '-r', '3', '-t', 'shared', '--access-mode', 'ReadWriteMany'], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^Volume db-data created\.$/m);
    assert.match(human.stdout, /^Size: +512\.00 MiB \(536870912 bytes\)$/m);
    assert.match(human.stdout, /^Replicas: +3$/m);
    assert.match(human.stdout, /^Access mode: +ReadWriteMany$/m);

    const list = await volumeList();
    assert.deepEqual(list.map((v) => v.name).sort(), ['db-data', 'web-data']);
    const table = await runCli(['volume', 'list'], env);
    assert.match(table.stdout, /│ NAME +│ ID +│ TYPE +│ SIZE +│ CLASS +│ REPLICAS +│ ACCESS +│ STATE +│/);
    assert.match(table.stdout, /│ web-data +│ [0-9a-f-]{36} +│ persistent +│ 1\.00 GiB +│ fast-local-ssd +│ 1 +│ ReadWriteOnce +│ available +│/);
    assert.match(table.stdout, /│ db-data +│ [0-9a-f-]{36} +│ shared +│ 512\.00 MiB +│ encrypted-storage +│ 3 +│ ReadWriteMany/);

    const byName = await json<Volume>(['volume', 'get', 'web-data']);
    const byId = await json<Volume>(['volume', 'get', created.id]);
    assert.deepEqual(byId, byName);
    const getHuman = await runCli(['volume', 'get', created.id], env);
    assert.match(getHuman.stdout, /^Name: +web-data$/m);
    assert.match(getHuman.stdout, /^Labels: +team=web$/m);

    const expanded = await json<Volume>(['volume', 'expand', 'web-data', '--size', '2G']);
    assert.equal(expanded.sizeBytes, 2 * 1024 ** 3);
    const expandHuman = await runCli(['volume', 'expand', 'web-data', '-s', '3G'], env);
    assert.equal(expandHuman.stdout.trim(), 'Volume web-data is now 3.00 GiB.');

    const labelled = await json<Volume>(['volume', 'label', 'web-data', 'tier=gold', 'team-']);
    assert.deepEqual(labelled.labels, { tier: 'gold' });
    const labelHuman = await runCli(['volume', 'label', 'web-data', 'team=ops'], env);
    assert.equal(labelHuman.stdout.trim(), 'Volume web-data labels: team=ops,tier=gold');

    const deleted = await json<Volume>(['volume', 'delete', 'db-data', '--yes']);
    assert.equal(deleted.name, 'db-data');
    const deleteHuman = await runCli(['volume', 'delete', created.id, '--yes'], env);
    assert.equal(deleteHuman.stdout.trim(), `Volume web-data (${created.id}) deleted.`);
    assert.deepEqual(await volumeList(), []);
  });

  it('storage-class list / get / create (JSON and YAML files) / delete', async () => {
    const builtIn = await json<StorageClass[]>(['storage-class', 'list']);
    assert.deepEqual(builtIn.map((c) => c.name).sort(), ['encrypted-storage', 'fast-local-ssd']);
    const listHuman = await runCli(['storage-class', 'list'], env);
    assert.match(listHuman.stdout, /│ encrypted-storage +│ galleonfs\.io\/distributed +│ 3 +│ yes +│/);

    const jsonFile = join(root, 'ultra-fast-ssd.json');
    await writeFile(jsonFile, JSON.stringify({
      name: 'ultra-fast-ssd', provisioner: 'galleonfs.io/nvme-ssd',
      parameters: { disk_type: 'nvme', fs_type: 'xfs', encryption: 'false', raid_level: '1' },
      reclaim_policy: 'Delete', volume_binding_mode: 'Immediate', allowed_topologies: ['zone-a', 'zone-b'], mount_options: ['noatime'],
    }));
    const yamlFile = join(root, 'secure-distributed.yaml');
    await writeFile(yamlFile, 'name: secure-distributed\nprovisioner: galleonfs.io/distributed\nparameters:\n  encryption: "true"\n  replication: "3"\nreclaim_policy: Retain\n');

    const ultra = await json<StorageClass>(['storage-class', 'create', jsonFile]);
    assert.equal(ultra.name, 'ultra-fast-ssd');
    assert.equal(ultra.reclaimPolicy, 'Delete');
    assert.deepEqual(ultra.allowedTopologies, ['zone-a', 'zone-b']);
    assert.equal(ultra.encryption, false);
    const yamlHuman = await runCli(['storage-class', 'create', yamlFile], env);
    assert.equal(yamlHuman.stdout.trim(), 'Storage class secure-distributed created.');

    const secure = await json<StorageClass>(['storage-class', 'get', 'secure-distributed']);
    assert.equal(secure.encryption, true);
    assert.equal(secure.replicas, 3);
    const getHuman = await runCli(['storage-class', 'get', 'ultra-fast-ssd'], env);
    assert.match(getHuman.stdout, /^Provisioner: +galleonfs\.io\/nvme-ssd$/m);

    const vol = await json<Volume>(['volume', 'create', '-n', 'on-ultra', '-c', 'ultra-fast-ssd', '-s', '10M']);
    assert.equal(vol.storageClass, 'ultra-fast-ssd');
    await json<Volume>(['volume', 'delete', 'on-ultra', '--yes']);

    assert.deepEqual(await json<{ deleted: string }>(['storage-class', 'delete', 'ultra-fast-ssd', '--yes']), { deleted: 'ultra-fast-ssd' });
    const delHuman = await runCli(['storage-class', 'delete', 'secure-distributed', '-y'], env);
    assert.equal(delHuman.stdout.trim(), 'Storage class secure-distributed deleted.');
    assert.deepEqual((await json<StorageClass[]>(['storage-class', 'list'])).map((c) => c.name).sort(), ['encrypted-storage', 'fast-local-ssd']);
  });

  it('bad inputs: one exact error line, a non-zero exit code, and nothing changed', async () => {
    await json<Volume>(['volume', 'create', '-n', 'demo', '-s', '1G', '-c', 'fast-local-ssd']);
    const badClassFile = join(root, 'bad-class.yaml');
    await writeFile(badClassFile, 'name: typo\nreplica: 3\n');
    const closedPort = await osFreePort();
    const volumesBefore = await volumeList();
    const classesBefore = await json<StorageClass[]>(['storage-class', 'list']);

    const cases: [string[], string, number][] = [
      [['volume', 'create', '-n', 'demo'], 'Error: volume demo already exists — choose another name, or see it with: galleon volume get demo', 5],
      [['volume', 'create', '-n', 'x', '-s', '1Q'], 'Error: invalid size "1Q" — use a number with an optional K, M, G or T suffix, e.g. 512M or 10G', 2],
      [['volume', 'create', '-n', 'x', '-s', '0'], 'Error: invalid size "0": must be a whole number of bytes above zero — use a number with an optional K, M, G or T suffix, e.g. 512M or 10G', 2],
      [['volume', 'create', '-n', 'x', '-c', 'nope'], 'Error: storage class "nope" not found — list classes with: galleon storage-class list', 4],
      [['volume', 'get', 'nope'], 'Error: volume "nope" not found — list volumes with: galleon volume list', 4],
      [['volume', 'delete', 'nope', '--yes'], 'Error: volume "nope" not found — list volumes with: galleon volume list', 4],
      [['volume', 'expand', 'demo', '-s', '512M'], 'Error: volume demo is 1.00 GiB; a volume can only grow, not to 512.00 MiB — give a size larger than 1073741824 bytes', 2],
      [['volume', 'create', '-n', 'x', '--replicas', 'abc'], 'Error: Parsing --replicas: Expected an integer but received: abc — see `galleon volume create --help`', 2],
      [['volume', 'create', '-n', 'x', '-t', 'floppy'], 'Error: Expected --volume-type=floppy to be one of: ephemeral, persistent, shared — see `galleon volume create --help`', 2],
      [['volume', 'create', '-n', 'x', '--label', 'team'], 'Error: invalid label "team" — write labels as key=value, e.g. --label team=web', 2],
      [['volume', 'create', '-n', 'x', '-r', '9'], 'Error: invalid replica count 9 — use 1 to 7, or leave it to the storage class', 2],
      [['volume', 'get'], 'Error: Missing 1 required arg: volume Volume name or UUID. — see `galleon volume get --help`', 2],
      [['volume', 'list', '--bogus'], 'Error: Nonexistent flag: --bogus — see `galleon volume list --help`', 2],
      [['volume', 'lst'], 'Error: unknown command "volume lst" — see `galleon volume --help`', 2],
      [['storage-class', 'delete', 'encrypted-storage', '--yes'], 'Error: storage class encrypted-storage is built in and cannot be deleted — create your own class instead of changing a built-in one', 5],
      [['storage-class', 'create', badClassFile], `Error: ${badClassFile}: unknown key "replica" — allowed keys: name, provisioner, parameters, reclaim_policy, volume_binding_mode, allowed_topologies, mount_options, replicas, encryption, write_concern, zone_spread`, 2],
      [['storage-class', 'create', join(root, 'missing.json')], `Error: cannot read ${join(root, 'missing.json')} (ENOENT) — give the path of a JSON or YAML storage class file`, 2],
      [['volume', 'list', '--daemon-address', 'nonsense'], 'Error: invalid daemon address "nonsense" — write it as host:port, e.g. 127.0.0.1:8090', 2],
      [['volume', 'list', '--daemon-address', `127.0.0.1:${closedPort}`], `Error: cannot reach a daemon at 127.0.0.1:${closedPort} — start one with \`galleon daemon start\` (or \`galleon up\`) or set --daemon-address`, 3],
    ];
    for (const [args, line, code] of cases) {
      const r = await runCli(args, env);
      assert.equal(r.stderr, `${line}\n`, `stderr of galleon ${args.join(' ')}`);
      assert.equal(r.code, code, `exit code of galleon ${args.join(' ')}`);
      assert.equal(r.stdout, '', `stdout of galleon ${args.join(' ')}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    // --json puts the same error on stdout as an object, with the same exit code.
    const asJson = await runCli(['volume', 'get', 'nope', '--json'], env);
    assert.equal(asJson.code, 4);
    assert.deepEqual(JSON.parse(asJson.stdout), { error: { code: 'VOLUME_NOT_FOUND', message: 'volume "nope" not found', hint: 'list volumes with: galleon volume list' } });

    assert.deepEqual(await volumeList(), volumesBefore, 'volumes unchanged');
    assert.deepEqual(await json<StorageClass[]>(['storage-class', 'list']), classesBefore, 'storage classes unchanged');
    await json<Volume>(['volume', 'delete', 'demo', '--yes']);
  });

  it('daemon status / config, /healthz and /metrics of a member', async () => {
    const n2 = nodes[1];
    assert.ok(n2 !== undefined);
    const e2 = { ...tlsEnv, GALLEON_ADDRESS: n2.ipcAddress };
    const status = await json<DaemonStatus>(['daemon', 'status'], e2);
    assert.equal(status.nodeId, 'node2');
    assert.equal(status.healthy, true);
    assert.equal(status.metadata?.state, 'running');
    assert.ok(status.metadata?.raftRole === 'voter' || status.metadata?.raftRole === 'leader');
    assert.equal(status.data?.registered, true);
    const statusHuman = await runCli(['--daemon-address', n2.ipcAddress, 'daemon', 'status'], tlsEnv);
    assert.match(statusHuman.stdout, /^Node: +node2$/m);
    assert.match(statusHuman.stdout, /^Healthy: +yes$/m);
    assert.match(statusHuman.stdout, /^Security: +mutual TLS \(CN=node2, OU=galleon-node/m);
    assert.equal(status.security.mode, 'mutual-tls');

    const cfg = await json<DaemonConfig>(['daemon', 'config'], e2);
    assert.equal(cfg.nodeId, 'node2');
    assert.equal(cfg.bindAddress, n2.bindAddress);
    assert.deepEqual(cfg.peerAddresses, [nodes[0]?.bindAddress]);
    assert.equal(cfg.blockSizeBytes, 131072);
    const cfgHuman = await runCli(['daemon', 'config'], e2);
    assert.match(cfgHuman.stdout, /^Storage path: +.*node2$/m);

    const health = await httpsGet(n2.ipcAddress, '/healthz');
    assert.equal(health.status, 200);
    const metrics = (await httpsGet(n2.ipcAddress, '/metrics')).text;
    assert.match(metrics, /^galleon_process_cpu_user_seconds_total /m);
    assert.match(metrics, /^galleon_raft_term /m);
  });

  it('daemon restart and a stop/start of a member keep volumes', async () => {
    await json<Volume>(['volume', 'create', '-n', 'keep-me', '-s', '64M', '-c', 'fast-local-ssd']);
    const n1 = nodes[0];
    const n3 = nodes[2];
    assert.ok(n1 !== undefined && n3 !== undefined);

    const restarted = await json<DaemonStatus>(['daemon', 'restart'], { ...tlsEnv, GALLEON_ADDRESS: n1.ipcAddress });
    assert.equal(restarted.metadata?.state, 'running');
    await waitFor('node1 healthy after restart', 30_000, async () => (await httpsGet(n1.ipcAddress, '/healthz')).status === 200);
    assert.equal((await json<Volume>(['volume', 'get', 'keep-me'], { ...tlsEnv, GALLEON_ADDRESS: n1.ipcAddress })).name, 'keep-me');

    const stopped = await runCli(['daemon', 'stop'], { ...tlsEnv, GALLEON_ADDRESS: n3.ipcAddress });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout.trim(), `Daemon node3 (pid ${n3.pid}) stopped.`);
    const gone = await runCli(['daemon', 'status'], { ...tlsEnv, GALLEON_ADDRESS: n3.ipcAddress });
    assert.equal(gone.code, 3);

    const started = await runCli(['daemon', 'start', '--detach', '--node-id', 'node3', '--storage-path', n3.storagePath, '--bind-address', n3.bindAddress,
      '--ipc-address', n3.ipcAddress, '--data-address', n3.dataAddress, '--peer-addresses', n1.bindAddress, '--json']);
    assert.equal(started.code, 0, started.stderr);
    const s3 = JSON.parse(started.stdout) as DaemonStatus;
    assert.equal(s3.nodeId, 'node3');
    n3.pid = s3.pid;
    const e3 = { ...tlsEnv, GALLEON_ADDRESS: n3.ipcAddress };
    await waitFor('node3 healthy again', 30_000, async () => (await httpsGet(n3.ipcAddress, '/healthz')).status === 200);
    assert.deepEqual((await json<Volume[]>(['volume', 'list'], e3)).map((v) => v.name), ['keep-me']);
    assert.equal((await json<ClusterStatus>(['cluster', 'status'], e3)).members.length, 3);
  });

  it('cluster join of a fresh daemon (stays a learner past 3 voters), then cluster leave', async () => {
    const storage = join(root, 'node4');
    extraDaemons.push(storage);
    const [bind, ipc, data] = [await osFreePort(), await osFreePort(), await osFreePort()];
    const e4 = { ...tlsEnv, GALLEON_ADDRESS: `127.0.0.1:${ipc}` };
    // A node outside `up` gets its certificate from the cluster's CA with `galleon cert issue`.
    const issued = await runCli(['cert', 'issue', '--ca-dir', join(clusterDir, 'tls', 'ca'), '--node', 'node4', '--out', join(storage, 'tls')]);
    assert.equal(issued.code, 0, issued.stderr);
    const started = await runCli(['daemon', 'start', '-d', '--node-id', 'node4', '--storage-path', storage, '--bind-address', `127.0.0.1:${bind}`,
      '--ipc-address', `127.0.0.1:${ipc}`, '--data-address', `127.0.0.1:${data}`]);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /^Daemon node4 started in the background \(pid \d+\)\.$/m);

    const joined = await runCli(['cluster', 'join', nodes[0]?.bindAddress ?? ''], e4);
    assert.equal(joined.code, 0, joined.stderr);
    assert.match(joined.stdout, new RegExp(`^Joined the cluster at ${(nodes[0]?.bindAddress ?? '').replaceAll('.', '\\.')}\\.$`, 'm'));
    const peers = await json<Member[]>(['cluster', 'peers']);
    assert.deepEqual(peers.map((m) => `${m.id}:${m.role}`).sort(), ['node1:voter', 'node2:voter', 'node3:voter', 'node4:learner']);
    await waitFor('node4 registered as a data node in the cluster it joined', 30_000, async () =>
      (await json<DataNode[]>(['node', 'list'])).some((n) => n.id === 'node4' && n.address === `127.0.0.1:${data}`));
    const again = await runCli(['cluster', 'join', nodes[0]?.bindAddress ?? ''], e4);
    assert.equal(again.code, 5);
    assert.match(again.stderr, /^Error: this node is already in the cluster of 127\.0\.0\.1:\d+ — see `galleon cluster peers`\n$/);

    const left = await json<{ nodeId: string; removed: boolean }>(['cluster', 'leave'], e4);
    assert.deepEqual(left, { nodeId: 'node4', removed: true, transferredLeadershipTo: null });
    await waitFor('node4 to stop', 30_000, async () => (await runCli(['daemon', 'status'], e4)).code === 3);
    assert.deepEqual((await json<Member[]>(['cluster', 'peers'])).map((m) => m.id).sort(), ['node1', 'node2', 'node3']);
  });

  it('cluster leave on the leader hands leadership over first, then removes it', async () => {
    const before = await json<ClusterStatus>(['cluster', 'status']);
    const leader = nodes.find((n) => n.id === before.leaderId);
    assert.ok(leader !== undefined);
    const others = nodes.filter((n) => n !== leader);
    const left = await runCli(['cluster', 'leave'], { ...tlsEnv, GALLEON_ADDRESS: leader.ipcAddress });
    assert.equal(left.code, 0, left.stderr);
    assert.match(left.stdout.trim(), new RegExp(`^Node ${leader.id} left the cluster after handing leadership to node\\d; its daemon is stopping\\.$`));
    const eOther = { ...tlsEnv, GALLEON_ADDRESS: others[0]?.ipcAddress ?? '' };
    const after = await waitFor('a two-member cluster with a new leader', 30_000, async () => {
      const s = await json<ClusterStatus>(['cluster', 'status'], eOther);
      return s.members.length === 2 && s.leaderId !== null && s.leaderId !== leader.id ? s : null;
    });
    assert.deepEqual(after.members.map((m) => m.id).sort(), others.map((n) => n.id).sort());
    await waitFor('the old leader to stop', 30_000, async () => (await runCli(['daemon', 'status'], { ...tlsEnv, GALLEON_ADDRESS: leader.ipcAddress })).code === 3);
  });

  it('down stops the running nodes by PID with SIGTERM and --purge removes the folder', async () => {
    const r = await runCli(['down', '--dir', clusterDir, '--purge', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const down = JSON.parse(r.stdout) as { stopped: { id: string; pid: number; signal: string | null }[]; purged: boolean };
    assert.equal(down.purged, true);
    assert.equal(down.stopped.length, 3);
    assert.equal(down.stopped.filter((s) => s.signal === 'SIGTERM').length, 2, `the two remaining nodes stop on SIGTERM: ${r.stdout}`);
    // Gone means not running: a stopped daemon may stay a zombie until init reaps it (pidfile.ts).
    for (const s of down.stopped) assert.equal(isProcessAlive(s.pid), false, `daemon ${s.id} is gone`);
    await assert.rejects(access(clusterDir), 'folder removed');
    const again = await runCli(['down', '--dir', clusterDir]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /^No local cluster in /);
  });
});
