import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import type { RevokedRecord } from '../../lib/tls-watch.js';

export default class CertRevoke extends GalleonCommand {
  static override summary = 'Revoke a certificate (by serial) or every certificate of a node or client (by name); running daemons refuse it within a second.';
  static override description = [
    'Adds the certificates to the CA\'s revocation list (revoked.json in the CA folder) and copies the list into each TLS',
    'folder: by default every node and the operator of the local cluster (--dir); name others with --to (repeatable).',
    'A daemon re-reads its TLS folder every second (and on SIGHUP): from then on every port (admin endpoint, metadata',
    'API, Raft, block port) refuses the revoked certificate, on connections opened before too. On hosts of their own,',
    'copy revoked.json into each node\'s TLS folder (as ca.crt). To replace a node\'s certificate first, run',
    '`galleon cert rotate` and revoke the old serial (shown by `galleon cert list`) once `daemon status` shows the new one.',
  ].join('\n');
  static override args = { target: Args.string({ description: 'A serial (at least 8 hex digits; `cert list` shows 16) or a node or client name.', required: true }) };
  static override examples = [
    '<%= config.bin %> cert revoke 5f3a9c0e12ab44d1',
    '<%= config.bin %> cert revoke node3 --ca-dir /etc/galleonfs/ca --to /srv/node1/tls --to /srv/node2/tls',
  ];
  static override flags = {
    'ca-dir': Flags.string({ summary: 'The CA folder. [default: <dir>/tls/ca of the local cluster]' }),
    to: Flags.string({ summary: 'A TLS folder to copy the revocation list into (repeatable). [default: the local cluster\'s]', multiple: true, default: [] }),
  };

  async run(): Promise<{ revoked: RevokedRecord[]; copiedTo: string[] }> {
    const { flags, args } = await this.parse(CertRevoke);
    const [{ revoke, writeRevoked }, { localCaDir, localClientTlsDir, nodeTlsDir }, { readClusterFile }] = await Promise.all([
      import('../../lib/pki.js'), import('../../lib/tls.js'), import('../../local/cluster.js'),
    ]);
    const clusterDir = resolve(flags.dir);
    let dirs = flags.to.map((d) => resolve(d));
    if (dirs.length === 0) {
      const cluster = await readClusterFile(clusterDir);
      if (cluster === null || cluster.tls !== true) {
        throw usageError(`no --to folders given and no TLS cluster in ${clusterDir}`, 'name the TLS folders of the nodes with --to DIR, or pass --dir of a cluster made by `galleon up`');
      }
      dirs = [...cluster.nodes.map((n) => nodeTlsDir(n.storagePath)), localClientTlsDir(clusterDir)];
    }
    const caDir = resolve(flags['ca-dir'] ?? localCaDir(clusterDir));
    const { revoked, list } = await revoke(caDir, args.target);
    for (const d of dirs) await writeRevoked(d, list);
    for (const r of revoked) this.print(`Revoked ${r.kind} ${r.name}: serial ${r.serial}`);
    if (revoked.length === 0) this.print(`Already revoked: ${args.target}`);
    this.print(`Copied the revocation list (${list.length} serial(s)) into ${dirs.length} TLS folder(s); running daemons refuse revoked certificates within a second.`);
    return { revoked, copiedTo: dirs };
  }
}
