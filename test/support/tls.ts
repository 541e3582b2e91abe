/**
 * TLS material for tests, made in process with the same code as `galleon cert` (cli/lib/pki.ts):
 * a CA, node certificates in each node's `<storage>/tls` (the daemon's default --tls-dir) and a
 * client certificate whose folder the CLI gets through GALLEON_TLS_DIR. Everything lives under
 * the test's own temp folder, removed with it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { issue, initCa, defaultCertDays } from '../../cli/lib/pki.js';
import { loadTlsDir, nodeTlsDir } from '../../cli/lib/tls.js';
import type { TlsMaterial } from '../../proto/tls.js';

export interface TestPki {
  caDir: string;
  /** The client certificate's folder: GALLEON_TLS_DIR for the CLI. */
  clientDir: string;
  client: TlsMaterial;
}

/** A CA under `root/<name>`, a client certificate, and a node certificate in each storage path's tls folder. */
export async function makeTestPki(root: string, nodes: readonly { id: string; storagePath: string }[], name = 'pki'): Promise<TestPki> {
  const caDir = join(root, name, 'ca');
  await initCa(caDir, defaultCertDays, `${name}-ca`);
  for (const n of nodes) await issue(caDir, { kind: 'node', name: n.id, dns: [], ips: [], days: defaultCertDays }, nodeTlsDir(n.storagePath));
  const clientDir = join(root, name, 'client');
  await issue(caDir, { kind: 'client', name: 'tester', dns: [], ips: [], days: defaultCertDays }, clientDir);
  return { caDir, clientDir, client: await loadTlsDir(clientDir, 'cli') };
}

/** A certificate of `kind` issued by the CA in `caDir` into `out`, loaded; `expired`: valid for a day, a year ago. */
export async function issueTestCert(caDir: string, kind: 'node' | 'client', name: string, out: string, expired = false): Promise<TlsMaterial> {
  const yearMs = 365 * 86_400_000;
  await issue(caDir, { kind, name, dns: [], ips: [], days: expired ? 1 : defaultCertDays }, out, expired ? () => Date.now() - yearMs : Date.now);
  return loadTlsDir(out, 'cli');
}

/**
 * What the operator's CLI of a local cluster made by `galleon up --dir dir` needs: its client
 * certificate (GALLEON_TLS_DIR) and, when the cluster requires tokens, the admin token `up` wrote.
 */
export function upClientEnv(dir: string): { GALLEON_TLS_DIR: string; GALLEON_TOKEN?: string } {
  const tokenFile = join(dir, 'admin-token');
  const token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined;
  // A plaintext cluster (`up --insecure-plaintext`) has no client certificate: an empty value
  // leaves the CLI to its default (`<--dir>/tls/client`, absent: plaintext).
  const tlsDir = join(dir, 'tls', 'client');
  return { GALLEON_TLS_DIR: existsSync(tlsDir) ? tlsDir : '', ...(token === undefined ? {} : { GALLEON_TOKEN: token }) };
}

/**
 * One bare TLS connection to `address` (ALPN h2, as a gRPC client) with `tls` (only a trusted CA:
 * no certificate) that the server is expected to cut after the handshake: resolves to the
 * connection's local port (the `source` its audit event names), rejects if the handshake did not
 * finish or the server kept the connection open for `timeoutMs`.
 */
export function handshakeCutByServer(address: string, tls: Partial<TlsMaterial> & { ca: Buffer }, timeoutMs = 5_000): Promise<number> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), ca: tls.ca, cert: tls.cert, key: tls.key, ALPNProtocols: ['h2'], servername: 'localhost', checkServerIdentity: () => undefined });
    let local = 0;
    s.on('secureConnect', () => { local = s.localPort ?? 0; });
    s.on('error', () => undefined);
    s.on('close', () => (local === 0 ? reject(new Error('the handshake did not finish')) : resolve(local)));
    s.setTimeout(timeoutMs, () => { s.destroy(); reject(new Error('the server did not cut the connection')); });
  });
}
