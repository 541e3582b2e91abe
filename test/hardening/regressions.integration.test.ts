/**
 * Issue #10, findings 1, 4 and 6, replayed against one real daemon (all roles, started by the
 * real binary): each request of the probe that crashed a node, changed state or gave a 500 must
 * now get one 4xx with a stable code, change nothing, and leave the process alive. Every test
 * here failed on ece3f25.
 */
import { strict as assert } from 'node:assert';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import type { Volume } from '../../proto/metadata-types.js';
import { cliJson, runCli, waitFor } from '../cli/helpers.js';
import { configText, isAlive, rawExchange, rawJson, startTestDaemon, stopTestDaemon, type TestDaemon } from './helpers.js';

interface Answer { status: number; body: { error?: { code?: string } } & Record<string, unknown> }

async function call(address: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH', path: string, body: string | null, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`http://${address}${path}`, { method, headers, body, headersTimeout: 15_000, bodyTimeout: 15_000 });
  const text = await res.body.text();
  return { status: res.statusCode, body: (text === '' ? {} : JSON.parse(text)) as Answer['body'] };
}

const json = { 'content-type': 'application/json' };

async function errorLines(logFile: string): Promise<string[]> {
  return (await readFile(logFile, 'utf8')).split('\n').filter((l) => /"level":(50|60)/.test(l));
}

describe('hardening: issue #10 findings 1, 4, 6 (integration)', function () {
  this.timeout(120_000);
  let d: TestDaemon | null = null;
  let vol: Volume | null = null;

  before(async () => {
    d = await startTestDaemon('galleon-hardening-');
    vol = await cliJson<Volume>(['volume', 'create', '-n', 'target', '-s', '1M', '-c', 'fast-local-ssd'], d.env);
  });

  after(async () => {
    await stopTestDaemon(d);
  });

  const daemon = (): TestDaemon => { assert.ok(d !== null); return d; };
  const volumeNames = async (): Promise<string[]> => (await cliJson<Volume[]>(['volume', 'list'], daemon().env)).map((v) => v.name).sort();

  async function assertAlive(): Promise<void> {
    const t = daemon();
    assert.ok(isAlive(t.pid), 'daemon process alive');
    assert.equal(Number((await readFile(join(t.storage, 'galleon.pid'), 'utf8')).trim()), t.pid, 'pid file unchanged');
    assert.equal((await call(t.ipc, 'GET', '/healthz', null)).status, 200);
    // The last resort counts on /metrics; requests are refused at the edge, so it caught nothing.
    const metrics = await (await request(`http://${t.ipc}/metrics`)).body.text();
    assert.match(metrics, /^galleon_uncaught_errors_total\{kind="exception"\} 0$|# TYPE galleon_uncaught_errors_total counter/m);
    assert.doesNotMatch(metrics, /^galleon_uncaught_errors_total\{[^}]*\} [1-9]/m);
  }

  it('finding 1: the request target //[ gets a 4xx with a code and the daemon lives on', async () => {
    const t = daemon();
    for (const target of ['//[', '//[::1', '//', '//%zz', '/%', '//evil.example/v1/daemon/stop']) {
      const a = await rawExchange(t.ipc, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.ok(a.status !== null && a.status >= 400 && a.status < 500, `${target}: ${a.text}`);
      assert.equal((rawJson(a) as { error?: { code?: string } } | null)?.error?.code, 'INVALID_ARGUMENT', target);
      const onData = await rawExchange(t.data, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal(onData.status, 400, `${target}: ${onData.text}`);
      assert.equal((rawJson(onData) as { code?: string } | null)?.code, 'INVALID_ARGUMENT', target);
    }
    await assertAlive();
  });

  it('finding 4: a text/plain POST from another site creates no volume (403 CROSS_ORIGIN_REFUSED)', async () => {
    const t = daemon();
    const before = await volumeNames();
    const a = await call(t.ipc, 'POST', '/v1/volumes', JSON.stringify({ name: 'evil', size: '1M', storageClass: 'fast-local-ssd' }), { 'content-type': 'text/plain', origin: 'http://evil.example' });
    assert.equal(a.status, 403);
    assert.equal(a.body.error?.code, 'CROSS_ORIGIN_REFUSED');
    const noOrigin = await call(t.ipc, 'POST', '/v1/volumes', JSON.stringify({ name: 'evil', size: '1M', storageClass: 'fast-local-ssd' }), { 'content-type': 'text/plain' });
    assert.equal(noOrigin.status, 415, 'a simple (non-JSON) POST is refused even without an Origin');
    assert.equal(noOrigin.body.error?.code, 'UNSUPPORTED_MEDIA_TYPE');
    assert.deepEqual(await volumeNames(), before);
  });

  it('finding 4: POST /v1/daemon/stop from another site does not stop the node', async () => {
    const t = daemon();
    const a = await call(t.ipc, 'POST', '/v1/daemon/stop', '', { 'content-type': 'text/plain', origin: 'http://evil.example' });
    assert.equal(a.status, 403);
    assert.equal(a.body.error?.code, 'CROSS_ORIGIN_REFUSED');
    const jsonButForeign = await call(t.ipc, 'POST', '/v1/daemon/stop', null, { ...json, origin: 'http://evil.example' });
    assert.equal(jsonButForeign.status, 403);
    await assertAlive();
  });

  it('finding 4: a body of [1,2] creates no volume (400)', async () => {
    const t = daemon();
    const before = await volumeNames();
    for (const body of ['[1,2]', '1', '"x"', 'null', '{"size":1e400}', '{"size":-1}', '{"name":"n","size":"1M","extra":1}']) {
      const a = await call(t.ipc, 'POST', '/v1/volumes', body, json);
      assert.equal(a.status, 400, `${body} → ${a.status} ${JSON.stringify(a.body)}`);
      assert.equal(a.body.error?.code, 'INVALID_ARGUMENT', body);
    }
    assert.deepEqual(await volumeNames(), before);
  });

  it('finding 4: dataBase64 "!!!not base64***" is refused and writes nothing', async () => {
    const t = daemon();
    assert.ok(vol !== null);
    const a = await call(t.ipc, 'PUT', `/v1/volumes/${vol.name}/inodes/0/blocks/0`, JSON.stringify({ dataBase64: '!!!not base64***' }), json);
    assert.equal(a.status, 400);
    assert.equal(a.body.error?.code, 'INVALID_ARGUMENT');
    // Never written: BLOCK_NOT_FOUND, or (should unwritten blocks read as zeros one day) no byte set.
    const read = JSON.parse((await runCli(['volume', 'read-block', vol.name, '0', '--json'], t.env)).stdout) as { error?: { code: string }; dataBase64?: string };
    if (read.error !== undefined) assert.equal(read.error.code, 'BLOCK_NOT_FOUND');
    else assert.ok(Buffer.from(read.dataBase64 ?? '', 'base64').every((b) => b === 0), 'nothing was written');
  });

  it('finding 4: malformed % escapes get 400 on the admin and data ports, with no error-level log line', async () => {
    const t = daemon();
    for (const path of ['/v1/volumes/%E0%A4%A', '/v1/volumes/%zz', '/v1/storage-classes/%', '/v1/volumes/a%ZZb/inodes/0/blocks/0']) {
      const a = await call(t.ipc, 'GET', path, null);
      assert.equal(a.status, 400, `${path} → ${a.status}`);
      assert.equal(a.body.error?.code, 'INVALID_ARGUMENT');
    }
    // The data port's errors are the serialized GalleonError itself (dataplane/wire.ts).
    for (const path of ['/v1/blocks/%zz/0/0', '/v1/journal/%E0%A4%A/0', '/v1/pg-blocks/%/0']) {
      const a = await call(t.data, 'GET', path, null);
      assert.equal(a.status, 400, `${path} → ${a.status}`);
      assert.equal(a.body.code, 'INVALID_ARGUMENT');
    }
    const replicate = await call(t.data, 'POST', '/v1/replicate', '', {
      'x-galleon-volume': '%zz', 'x-galleon-inode': '0', 'x-galleon-block': '0', 'x-galleon-op': 'delete', 'x-galleon-pg': '0', 'x-galleon-seq': '1', 'x-galleon-epoch': '1', 'x-galleon-primary': 'x',
    });
    assert.equal(replicate.status, 400);
    assert.deepEqual(await errorLines(t.logFile), []);
    await assertAlive();
  });

  it('finding 6: SIGHUP reloads and logs one line, the daemon keeps running', async () => {
    const t = daemon();
    process.kill(t.pid, 'SIGHUP');
    const line = await waitFor('the SIGHUP log line', 10_000, async () => (await readFile(t.logFile, 'utf8')).split('\n').find((l) => l.includes('SIGHUP')) ?? null);
    assert.match(line, /configuration reloaded/);
    await assertAlive();
  });

  it('finding 6: SIGHUP applies the config file\'s log level live and names what needs a restart', async () => {
    const t = daemon();
    await writeFile(t.configFile, configText({ storage: t.storage, bind: t.bind, ipc: t.ipc, data: t.data }, ['[log]', 'level = "debug"', '']).replace('target_voters = 1', 'target_voters = 3'));
    process.kill(t.pid, 'SIGHUP');
    const line = await waitFor('the second SIGHUP line', 10_000, async () => (await readFile(t.logFile, 'utf8')).split('\n').find((l) => l.includes('"logLevel":"debug"')) ?? null);
    assert.match(line, /targetVoters changed and apply only after a restart/);
    // A refused request logs at debug: visible now without a restart.
    assert.equal((await call(t.ipc, 'GET', '/v1/volumes/%zz', null)).status, 400);
    await waitFor('a debug line', 10_000, async () => ((await readFile(t.logFile, 'utf8')).includes('admin request refused') ? true : null));
    await assertAlive();
  });

  it('finding 6: SIGTERM stops gracefully and removes the pid file', async () => {
    const t = daemon();
    process.kill(t.pid, 'SIGTERM');
    await waitFor('the daemon to exit', 30_000, () => Promise.resolve(isAlive(t.pid) ? null : true));
    await assert.rejects(access(join(t.storage, 'galleon.pid')), 'pid file removed');
    assert.match(await readFile(t.logFile, 'utf8'), /"msg":"stopped"/);
  });
});
