/**
 * Certificates for a chaos run's processes: one CA per run, a node certificate per member and
 * data node (`<root>/tls/<id>`, passed as --tls-dir), and a client certificate for the run's own
 * clients, made with the code of `galleon cert` (cli/lib/pki.ts). A restarted process keeps its
 * folder, so it keeps its identity.
 */
import { join } from 'node:path';
import { defaultCertDays, initCa, issue } from '../../cli/lib/pki.js';
import { readTlsDir, type TlsMaterial } from '../../proto/tls.js';

export interface ChaosPki {
  /** The --tls-dir of the process `id`, its node certificate issued on first use. */
  dirOf(id: string): Promise<string>;
  /** The certificate of the run's clients (workload, verifier, nemesis queries). */
  client: TlsMaterial;
}

export async function makeChaosPki(root: string): Promise<ChaosPki> {
  const base = join(root, 'tls');
  const caDir = join(base, 'ca');
  await initCa(caDir, defaultCertDays, 'galleon-chaos-ca');
  await issue(caDir, { kind: 'client', name: 'chaos', dns: [], ips: [], days: defaultCertDays }, join(base, 'client'));
  const issued = new Map<string, Promise<string>>();
  const dirOf = (id: string): Promise<string> => {
    let dir = issued.get(id);
    if (dir === undefined) {
      dir = issue(caDir, { kind: 'node', name: id, dns: [], ips: [], days: defaultCertDays }, join(base, id)).then(() => join(base, id));
      issued.set(id, dir);
    }
    return dir;
  };
  return { dirOf, client: await readTlsDir(join(base, 'client')) };
}
