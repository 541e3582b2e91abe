/**
 * What authentication costs a request (issue #12), in one run:
 *  1. the token check in process: the node credential (hash + constant-time compare), a user's
 *     cached token (hash + map), and a cache miss against an in-memory lookup (what the local
 *     replica read adds is on top of that);
 *  2. end to end against a real daemon (`galleon up --nodes 1`): `GET /v1/volumes` on the admin
 *     endpoint with the node credential, with a user's (cached) token, and on an open cluster
 *     (`--no-auth`) as the reference — the same request, sequential, so the ratio is the check's.
 * Run: npx tsx test/bench/auth.bench.ts   (BENCH_REQUESTS per round, default 1000)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import { Authenticator, hashToken, newToken, type CredentialRecord } from '../../proto/auth-token.js';
import type { LocalCluster, UpResult } from '../../cli/local/cluster.js';
import { cliJson, killClusterDir, makeTempDir, runCli } from '../cli/helpers.js';

const requests = Number(process.env.BENCH_REQUESTS ?? 1_000);
const checks = 200_000;
const rounds = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function perCheckUs(auth: Authenticator, header: string, n: number): Promise<number> {
  for (let i = 0; i < 1_000; i++) await auth.authenticate(header);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await auth.authenticate(header);
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

async function inProcess(): Promise<void> {
  const node = newToken();
  const user = newToken();
  const rec: CredentialRecord = {
    token: { id: 't', user: 'u', hash: hashToken(user), createdAtMs: 0, expiresAtMs: null, revoked: false },
    user: { name: 'u', role: 'operator', tenant: null, createdAtMs: 0 },
  };
  const lookup = (): Promise<CredentialRecord> => Promise.resolve(rec);
  const cached = new Authenticator({ nodeTokenHash: hashToken(node), lookup });
  const uncached = new Authenticator({ nodeTokenHash: hashToken(node), lookup, cacheTtlMs: 0 });
  const runs = { node: [] as number[], cached: [] as number[], miss: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    runs.node.push(await perCheckUs(cached, `Bearer ${node}`, checks));
    runs.cached.push(await perCheckUs(cached, `Bearer ${user}`, checks));
    runs.miss.push(await perCheckUs(uncached, `Bearer ${user}`, checks));
  }
  console.log(`token check in process (${rounds} interleaved rounds of ${checks}, medians):`);
  console.log(`  node credential         ${median(runs.node).toFixed(2)} µs`);
  console.log(`  user token, cached      ${median(runs.cached).toFixed(2)} µs`);
  console.log(`  user token, every miss  ${median(runs.miss).toFixed(2)} µs (+ the replica read it stands for)`);
}

async function upCluster(root: string, name: string, auth: boolean): Promise<{ dir: string; cluster: LocalCluster }> {
  const dir = join(root, name);
  const r = await runCli(['up', ...(auth ? [] : ['--no-auth']), '--no-first-volume', '--dir', dir, '--nodes', '1', '--base-port', '0', '--json'], {}, 180_000);
  if (r.code !== 0) throw new Error(`up failed: ${r.stderr}`);
  return { dir, cluster: (JSON.parse(r.stdout) as UpResult).cluster };
}

async function sequentialMs(address: string, token: string | null): Promise<number> {
  const pool = new Pool(`http://${address}`, { connections: 1 });
  const headers = token === null ? {} : { authorization: `Bearer ${token}` };
  try {
    for (let i = 0; i < 100; i++) await (await pool.request({ method: 'GET', path: '/v1/volumes', headers })).body.dump();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < requests; i++) {
      const res = await pool.request({ method: 'GET', path: '/v1/volumes', headers });
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      await res.body.dump();
    }
    return Number(process.hrtime.bigint() - t0) / 1e6 / requests;
  } finally {
    await pool.close();
  }
}

async function endToEnd(): Promise<void> {
  const root = await makeTempDir('galleon-auth-bench-');
  try {
    const open = await upCluster(root, 'open', false);
    const authed = await upCluster(root, 'auth', true);
    const admin = (await readFile(join(authed.dir, 'admin-token'), 'utf8')).trim();
    const node = (await readFile(join(authed.dir, 'node-token'), 'utf8')).trim();
    await cliJson(['user', 'create', 'bench', '--role', 'viewer'], { GALLEON_ADDRESS: authed.cluster.daemonAddress, GALLEON_TOKEN: admin });
    const user = (await cliJson<{ token: string }>(['token', 'create', '--user', 'bench'], { GALLEON_ADDRESS: authed.cluster.daemonAddress, GALLEON_TOKEN: admin })).token;
    // Interleaved rounds, medians: the machine is shared, and load drifts over a run.
    const runs = { base: [] as number[], node: [] as number[], user: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      runs.base.push(await sequentialMs(open.cluster.daemonAddress, null));
      runs.node.push(await sequentialMs(authed.cluster.daemonAddress, node));
      runs.user.push(await sequentialMs(authed.cluster.daemonAddress, user));
    }
    const [base, withNode, withUser] = [median(runs.base), median(runs.node), median(runs.user)];
    console.log(`GET /v1/volumes on the admin endpoint, ${rounds} interleaved rounds of ${requests} sequential requests, medians (one daemon, linearizable read):`);
    console.log(`  open cluster (reference) ${base.toFixed(3)} ms`);
    console.log(`  node credential          ${withNode.toFixed(3)} ms  (${(withNode / base).toFixed(2)}×)`);
    console.log(`  viewer's token (cached)  ${withUser.toFixed(3)} ms  (${(withUser / base).toFixed(2)}×)`);
    await runCli(['down', '--dir', open.dir], {}, 60_000);
    await runCli(['down', '--dir', authed.dir], {}, 60_000);
  } finally {
    await killClusterDir(root);
  }
}

await inProcess();
await endToEnd();
