/**
 * The TLS material of a local cluster (`galleon up`): a CA under `<dir>/tls/ca`, one node
 * certificate per node in `<storage>/tls` (the daemon's default `--tls-dir`) and the operator's
 * client certificate in `<dir>/tls/client` (where the CLI looks by default). Whatever exists is
 * kept, so a restarted cluster keeps its identities; keys are written with mode 0600.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsMaterial } from '../../proto/tls.js';
import { loadTlsDir, localCaDir, localClientTlsDir, nodeTlsDir, tlsFileNames } from '../lib/tls.js';

/** The name of the operator's client certificate that `galleon up` issues. */
export const localOperatorName = 'operator';

async function present(file: string): Promise<boolean> {
  try {
    await readFile(file);
    return true;
  } catch {
    return false;
  }
}

/** Creates what is missing and returns the operator's client material (the CLI's and `up`'s own). */
export async function ensureLocalPki(dir: string, nodes: readonly { id: string; storagePath: string }[], onProgress: (line: string) => void): Promise<TlsMaterial> {
  // Loaded only here: the X.509 library is not needed by any other command but `galleon cert`.
  const { caFileNames, initCa, issue, defaultCertDays } = await import('../lib/pki.js');
  const caDir = localCaDir(dir);
  if (!(await present(join(caDir, caFileNames.key)))) {
    await initCa(caDir);
    onProgress(`Created the cluster CA in ${caDir}`);
  }
  for (const n of nodes) {
    const out = nodeTlsDir(n.storagePath);
    if (await present(join(out, tlsFileNames.cert))) continue;
    await issue(caDir, { kind: 'node', name: n.id, dns: [], ips: [], days: defaultCertDays }, out);
  }
  const client = localClientTlsDir(dir);
  if (!(await present(join(client, tlsFileNames.cert)))) {
    await issue(caDir, { kind: 'client', name: localOperatorName, dns: [], ips: [], days: defaultCertDays }, client);
    onProgress(`Issued node certificates and the operator's client certificate (${client})`);
  }
  return loadTlsDir(client, 'cli');
}
