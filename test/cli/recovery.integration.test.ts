/**
 * Issue #10 findings 2, 7, 8, 9 through the real binary against a real 3-node cluster (short
 * failover timings): whole-block sizes, zeros for unwritten blocks, a too-large block file refused
 * before it is read, confirmation of deletes (no terminal, and a real pty through `script`), "not a
 * galleon daemon", falling back to other known daemons, `node remove`, `up` restarting a dead
 * node, and a `cluster join` to a dead address that fails fast and leaves a working daemon.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { access, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { DataNode, Volume } from '../../proto/metadata-types.js';
import type { DaemonStatus } from '../../cli/daemon/types.js';
import type { UpResult, LocalNode } from '../../cli/local/cluster.js';
import { osFreePort } from '../../cli/local/ports.js';
import { binPath, cliJson, killClusterDir, killDaemonAt, makeTempDir, repoRoot, runCli, waitFor, type CliResult } from './helpers.js';
import { upClientEnv } from '../support/tls.js';

/** Runs the binary on a pseudo-terminal (util-linux `script`), typing `answer`. */
function runOnTty(args: string[], answer: string, env: Record<string, string>): Promise<CliResult> {
  const quoted = [process.execPath, binPath, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', quoted, '/dev/null'], { cwd: repoRoot, env: { ...process.env, GALLEON_LOG_LEVEL: 'warn', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('[y/N]') && !child.stdin.writableEnded) child.stdin.end(`${answer}\n`);
    });
    const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); }, 60_000);
    child.once('error', reject);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr: '' }); });
  });
}

describe('galleon recovery and safety commands on a real cluster (integration)', function () {
  this.timeout(120_000);
  let root = '';
  let clusterDir = '';
  let nodes: LocalNode[] = [];
  let env: Record<string, string> = {};
  /** The operator certificate of the `up` cluster (mutual TLS); the plaintext solo daemon and the fake servers get none. */
  let tlsEnv: Record<string, string> = {};
  const servers: Server[] = [];
  const extraDaemons: string[] = [];
  const node = (id: string): LocalNode => nodes.find((n) => n.id === id) ?? assert.fail(`no ${id}`);

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-recovery-');
    clusterDir = join(root, 'cluster');
    const r = await runCli(['up', '--no-auth', '--dir', clusterDir, '--nodes', '3', '--base-port', '0', '--heartbeat-interval-ms', '200', '--lease-ttl-ms', '1000', '--data-node-down-after-ms', '1500', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    const up = JSON.parse(r.stdout) as UpResult;
    nodes = up.cluster.nodes;
    tlsEnv = upClientEnv(clusterDir);
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...tlsEnv };
  });

  after(async function () {
    this.timeout(60_000);
    for (const s of servers) s.close();
    for (const storage of extraDaemons) await killDaemonAt(storage);
    if (clusterDir !== '') await runCli(['down', '--dir', clusterDir, '--purge'], {}, 30_000).catch(() => undefined);
    if (root !== '') {
      await killClusterDir(clusterDir);
      await killClusterDir(root);
    }
  });

  it('up marks the folder it made; sizes are whole blocks and say so; 99999T names the 1 PiB limit; expand without --size is one line', async () => {
    await access(join(clusterDir, '.galleon-up.json'));
    const one = await cliJson<Volume & { requestedSizeBytes?: number }>(['volume', 'create', '--name', 'one', '--size', '1', '--replicas', '3', '--block-size', '4K'], env);
    assert.equal(one.sizeBytes, 4096);
    assert.equal(one.requestedSizeBytes, 1);
    const odd = await runCli(['volume', 'create', '--name', 'odd', '--size', '5000', '--block-size', '4K'], env);
    assert.equal(odd.code, 0, odd.stderr);
    assert.match(odd.stdout, /^Note: 5000 bytes rounded up to 8192 \(2 whole block\(s\) of 4096 bytes\)\.$/m);
    const huge = await runCli(['volume', 'create', '--name', 'huge', '--size', '99999T'], env);
    assert.deepEqual([huge.code, huge.stderr], [2, 'Error: size "99999T" is larger than the 1 PiB limit — give at most 1.00 PiB\n']);
    const expand = await runCli(['volume', 'expand', 'odd'], env);
    assert.deepEqual([expand.code, expand.stderr], [2, 'Error: missing required flag --size — see `galleon volume expand --help`\n']);
  });

  it('a never-written block reads as zeros of the block size (exit 0); a 10 MB --file is refused before it is read', async () => {
    assert.equal((await runCli(['volume', 'create', '--name', 'blank', '--size', '1M', '--block-size', '4K'], env)).code, 0);
    const read = await cliJson<{ written: boolean; bytes: number; data: string }>(['volume', 'read-block', 'blank', '0'], env);
    assert.equal(read.written, false);
    assert.equal(read.bytes, 4096);
    assert.deepEqual(Buffer.from(read.data, 'base64'), Buffer.alloc(4096));
    const big = join(root, 'big.bin');
    await writeFile(big, Buffer.alloc(10 * 1024 * 1024, 1));
    const started = Date.now();
    const w = await runCli(['volume', 'write-block', 'blank', '0', '--file', big], env);
    const tookMs = Date.now() - started;
    assert.deepEqual([w.code, w.stderr], [2, `Error: ${big} is 10485760 bytes, more than a block of volume blank (4096 bytes) — write at most 4096 bytes per block; split larger data over several blocks\n`]);
    console.log(`      write-block of a 10 MB file refused in ${tookMs} ms (the whole CLI run)`);
    assert.equal((await cliJson<{ written: boolean }>(['volume', 'read-block', 'blank', '0'], env)).written, false, 'nothing was written');
  });

  it('volume delete and storage-class delete ask on a terminal and refuse without one unless --yes', async () => {
    if (!(await cliJson<Volume[]>(['volume', 'list'], env)).some((v) => v.name === 'odd')) await cliJson<Volume>(['volume', 'create', '--name', 'odd', '--size', '1M'], env);
    const refused = await runCli(['volume', 'delete', 'odd'], env);
    assert.deepEqual([refused.code, refused.stderr], [2, 'Error: refusing to delete volume odd without confirmation (no terminal to ask on) — pass --yes to confirm\n']);
    const no = await runOnTty(['volume', 'delete', 'odd'], 'n', env);
    assert.match(no.stdout, /Delete volume odd and all its data\? \[y\/N\]/);
    assert.match(no.stdout, /Error: did not delete volume odd: not confirmed — answer y, or pass --yes/);
    assert.ok((await cliJson<Volume[]>(['volume', 'list'], env)).some((v) => v.name === 'odd'), 'declined: still there');
    const yes = await runOnTty(['volume', 'delete', 'odd'], 'y', env);
    assert.match(yes.stdout, /Volume odd \(.*\) deleted\./);
    assert.ok(!(await cliJson<Volume[]>(['volume', 'list'], env)).some((v) => v.name === 'odd'));

    const file = join(root, 'class.json');
    await writeFile(file, JSON.stringify({ name: 'scratch', replicas: 1, writeConcern: 'acknowledged' }));
    assert.equal((await runCli(['storage-class', 'create', file], env)).code, 0);
    const scRefused = await runCli(['storage-class', 'delete', 'scratch'], env);
    assert.deepEqual([scRefused.code, scRefused.stderr], [2, 'Error: refusing to delete storage class scratch without confirmation (no terminal to ask on) — pass --yes to confirm\n']);
    assert.deepEqual(await cliJson<{ deleted: string }>(['storage-class', 'delete', 'scratch', '-y'], env), { deleted: 'scratch' });
  });

  it('an HTTP server that is not a daemon gets one clear line, whatever it answers', async () => {
    for (const [status, body] of [[200, '{"hello":"world"}'], [404, 'null'], [200, '<html>hi</html>']] as const) {
      const server = createServer((_req, res) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(body); });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await runCli(['volume', 'list', '--daemon-address', address]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, new RegExp(`^Error: ${address.replaceAll('.', '\\.')} is not a galleon daemon \\(.*\\) — point --daemon-address at a daemon's --ipc-address .*\\n$`));
    }
  });

  it('falls back to the other known daemons when the first does not answer, and says which it used', async () => {
    const dead = `127.0.0.1:${await osFreePort()}`;
    const list = await runCli(['volume', 'list', '--json', '--daemon-address', `${dead},${node('node2').ipcAddress}`], tlsEnv);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(Array.isArray(JSON.parse(list.stdout)), 'stdout is the --json result only');
    assert.equal(list.stderr, `Note: no daemon answered at ${dead}; using ${node('node2').ipcAddress} (from --daemon-address).\n`);
    const fromDir = await runCli(['cluster', 'status', '--dir', clusterDir], { GALLEON_ADDRESS: dead, ...tlsEnv });
    assert.equal(fromDir.code, 0, fromDir.stderr);
    assert.equal(fromDir.stderr, `Note: no daemon answered at ${dead}; using ${node('node1').ipcAddress} (from ${join(clusterDir, 'cluster.json')}).\n`);
    const config = join(root, 'daemon.toml');
    await writeFile(config, `[daemon]\nipc_address = "${node('node2').ipcAddress}"\n`);
    const fromConfig = await runCli(['node', 'list'], { GALLEON_ADDRESS: dead, GALLEON_CONFIG: config, ...tlsEnv });
    assert.equal(fromConfig.code, 0, fromConfig.stderr);
    assert.equal(fromConfig.stderr, `Note: no daemon answered at ${dead}; using ${node('node2').ipcAddress} (from ${config}).\n`);
    // A command aimed at one daemon never acts on another.
    const scoped = await runCli(['daemon', 'status', '--daemon-address', `${dead},${node('node2').ipcAddress}`], tlsEnv);
    assert.equal(scoped.code, 3);
    assert.match(scoped.stderr, /^Error: cannot reach a daemon at 127\.0\.0\.1:\d+ — /);
  });

  it('node remove: refused while up, needs confirmation, then drops the departed node; up restarts it', async () => {
    await cliJson<Volume>(['volume', 'create', '--name', 'keep', '--size', '1M'], env);
    const up = await runCli(['node', 'remove', 'node3', '--yes'], env);
    assert.deepEqual([up.code, up.stderr], [5, 'Error: data node node3 is up; only a node marked down can be removed — stop its daemon first (galleon daemon stop on that node) and wait until `galleon node list` shows it down\n']);
    const stop = await runCli(['daemon', 'stop', '--daemon-address', node('node3').ipcAddress], tlsEnv);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor('node3 marked down', 30_000, async () => {
      const list = await cliJson<DataNode[]>(['node', 'list'], env);
      return list.find((n) => n.id === 'node3')?.state === 'down' ? true : null;
    });
    const unconfirmed = await runCli(['node', 'remove', 'node3'], env);
    assert.equal(unconfirmed.code, 2);
    const removed = await runCli(['node', 'remove', 'node3', '--yes'], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /^Data node node3 removed \(\d+ placement group\(s\) changed\)\.$/m);
    assert.deepEqual((await cliJson<DataNode[]>(['node', 'list'], env)).map((n) => n.id).sort(), ['node1', 'node2']);

    const again = await runCli(['up', '--dir', clusterDir], {}, 120_000);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^Restarted node3 \(the other nodes were running\)\.$/m);
    const list = await cliJson<DataNode[]>(['node', 'list'], env);
    assert.deepEqual(list.map((n) => `${n.id}:${n.state}`).sort(), ['node1:up', 'node2:up', 'node3:up']);
  });

  it('cluster join to a dead address fails within seconds and leaves the daemon a working single-node member', async () => {
    const storage = join(root, 'solo');
    const [bind, ipc, data, dead] = [await osFreePort(), await osFreePort(), await osFreePort(), await osFreePort()];
    const ipcAddress = `127.0.0.1:${ipc}`;
    extraDaemons.push(storage);
    // TLS is not the point here: a plaintext daemon, and CLI calls without a certificate.
    const start = await runCli(['daemon', 'start', '-d', '--insecure-plaintext', '--storage-path', storage, '--bind-address', `127.0.0.1:${bind}`, '--ipc-address', ipcAddress, '--data-address', `127.0.0.1:${data}`]);
    assert.equal(start.code, 0, start.stderr);
    const started = Date.now();
    const join10 = await runCli(['cluster', 'join', `127.0.0.1:${dead}`, '--daemon-address', ipcAddress]);
    const tookMs = Date.now() - started;
    console.log(`      failed join answered in ${tookMs} ms (the whole CLI run)`);
    assert.equal(join10.code, 3, join10.stderr);
    assert.match(join10.stderr, /^Error: no metadata member answered at 127\.0\.0\.1:\d+ within 3 s; nothing changed — give the --bind-address of a running member/);
    assert.ok(tookMs < 15_000, `took ${tookMs} ms`);
    const status = await cliJson<DaemonStatus>(['daemon', 'status', '--daemon-address', ipcAddress]);
    assert.equal(status.metadata?.state, 'running');
    assert.equal((await runCli(['volume', 'list', '--daemon-address', ipcAddress])).code, 0);
  });
});
