/**
 * What the hardening suites share: one real daemon started by the real binary (detached, its own
 * temp dir and ephemeral ports), raw TCP requests (bytes a client library would refuse to send),
 * and small probes of a process and its pid file. Cleanup kills by PID.
 */
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TlsMaterial } from '../../proto/tls.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { osFreePort } from '../../cli/local/ports.js';
import { request } from 'undici';
import { killClusterDir, killDaemonAt, makeTempDir, runCli, waitFor } from '../cli/helpers.js';

export interface TestDaemon {
  root: string;
  storage: string;
  configFile: string;
  ipc: string;
  data: string;
  bind: string;
  pid: number;
  env: Record<string, string>;
  logFile: string;
}

/** Longest a raw exchange may take before the test calls the server wedged. */
export const rawExchangeTimeoutMs = 10_000;

/**
 * The hardening daemon runs plaintext (`[security] tls = false`): its suites send raw HTTP bytes
 * to its parsers. The fuzzer (fuzz.integration.test.ts) covers the same ports with TLS on.
 */
export function configText(d: { storage: string; bind: string; ipc: string; data: string }, extra: string[] = []): string {
  return ['[daemon]', `storage_path = "${d.storage}"`, `bind_address = "${d.bind}"`, `ipc_address = "${d.ipc}"`, `data_address = "${d.data}"`,
    '', '[cluster]', 'target_voters = 1', '', '[security]', 'tls = false', '', ...extra].join('\n');
}

/** Starts one single-node daemon (all roles) with a config file; logs at `logLevel` to <storage>/galleon.log. */
export async function startTestDaemon(prefix: string, logLevel = 'info'): Promise<TestDaemon> {
  const root = await makeTempDir(prefix);
  const storage = join(root, 'node');
  const [bind, ipc, data] = [`127.0.0.1:${await osFreePort()}`, `127.0.0.1:${await osFreePort()}`, `127.0.0.1:${await osFreePort()}`];
  const configFile = join(root, 'daemon.toml');
  await writeFile(configFile, configText({ storage, bind, ipc, data }));
  const env = { GALLEON_ADDRESS: ipc, GALLEON_LOG_LEVEL: logLevel };
  const r = await runCli(['daemon', 'start', '--detach', '--config', configFile], env);
  if (r.code !== 0) {
    await killClusterDir(root);
    throw new Error(`daemon start failed (${r.code}): ${r.stderr}`);
  }
  const pid = Number((await readFile(join(storage, 'galleon.pid'), 'utf8')).trim());
  // The data role registers a moment after the admin endpoint answers: volumes need it.
  await waitFor('the data node to register', 30_000, async () => {
    const res = await request(`http://${ipc}/v1/daemon/status`);
    const s = (await res.body.json()) as { data?: { registered?: boolean } | null };
    return s.data?.registered === true;
  });
  return { root, storage, configFile, ipc, data, bind, pid, env, logFile: join(storage, 'galleon.log') };
}

export async function stopTestDaemon(d: TestDaemon | null): Promise<void> {
  if (d === null) return;
  await killDaemonAt(d.storage);
  if (isAlive(d.pid)) process.kill(d.pid, 'SIGKILL');
  await killClusterDir(d.root);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface RawAnswer {
  /** The status of the first response, or null when the server closed without one. */
  status: number | null;
  text: string;
}

/**
 * Writes `bytes` (then EOF when `halfClose`) on a fresh TCP connection — inside TLS with `tls`
 * (a client certificate), so the bytes reach the HTTP parser of a TLS port — and collects
 * whatever comes back until the server closes or the answer is complete.
 */
export function rawExchange(address: string, bytes: Buffer | string, halfClose = false, tls: TlsMaterial | null = null): Promise<RawAnswer> {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  const host = address.slice(0, colon);
  return new Promise((resolve, reject) => {
    const socket = tls === null ? connect(port, host) : tlsConnect({ port, host, ca: tls.ca, cert: tls.cert, key: tls.key });
    let text = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer from ${address} within ${rawExchangeTimeoutMs} ms`)); }, rawExchangeTimeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m === null ? null : Number(m[1]), text });
    };
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: (\d+)/i.exec(text);
      if (head >= 0 && len !== null && text.length >= head + 4 + Number(len[1])) { socket.destroy(); done(); }
    });
    socket.on('error', () => undefined);
    socket.on('close', done);
    // halfClose: the client says it has nothing more, so a server waiting for the rest must give up.
    if (halfClose) socket.end(bytes);
    else socket.write(bytes);
  });
}

/** The JSON body of a raw answer (after the head), or null. */
export function rawJson(a: RawAnswer): unknown {
  const head = a.text.indexOf('\r\n\r\n');
  if (head < 0) return null;
  try {
    return JSON.parse(a.text.slice(head + 4));
  } catch {
    return null;
  }
}
