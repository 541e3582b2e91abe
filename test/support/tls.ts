/**
 * TLS material for tests, made in process with the same code as `galleon cert` (cli/lib/pki.ts):
 * a CA, node certificates in each node's `<storage>/tls` (the daemon's default --tls-dir) and a
 * client certificate whose folder the CLI gets through GALLEON_TLS_DIR. Everything lives under
 * the test's own temp folder, removed with it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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
