import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import type { IssuedRecord } from '../../lib/pki.js';

export default class CertRotate extends GalleonCommand {
  static override summary = 'Re-issue certificates with new keys and a new validity, same names.';
  static override description = [
    'Replace tls.crt and tls.key in each TLS folder with a new key pair and certificate for the same node or client',
    'and names, signed by the CA. Without folders: every node and the operator of the local cluster (--dir).',
    'A running daemon re-reads its TLS folder every second (and on SIGHUP) and uses the new certificate for new',
    'connections, without a restart (`daemon status` shows its serial). Connections already open keep the old one until',
    'they close; `galleon cert revoke OLD-SERIAL` ends them, and every peer reconnects with its current certificate.',
  ].join('\n');
  static override strict = false;
  static override args = { dirs: Args.string({ description: 'TLS folders to rotate (holding tls.crt).', required: false }) };
  static override examples = [
    '<%= config.bin %> cert rotate --ca-dir /etc/galleonfs/ca /var/lib/galleonfs/tls',
    '<%= config.bin %> cert rotate --dir ./.galleon',
  ];
  static override flags = {
    'ca-dir': Flags.string({ summary: 'The CA folder. [default: <dir>/tls/ca of the local cluster]' }),
    days: Flags.integer({ summary: 'Validity of the new certificates in days. [default: 365]' }),
  };

  async run(): Promise<IssuedRecord[]> {
    const { flags, argv } = await this.parse(CertRotate);
    const [{ issue, requestOf, defaultCertDays }, { localCaDir, localClientTlsDir, nodeTlsDir }, { readClusterFile }] = await Promise.all([
      import('../../lib/pki.js'), import('../../lib/tls.js'), import('../../local/cluster.js'),
    ]);
    const clusterDir = resolve(flags.dir);
    let dirs = (argv as string[]).map((d) => resolve(d));
    if (dirs.length === 0) {
      const cluster = await readClusterFile(clusterDir);
      if (cluster === null || cluster.tls !== true) throw usageError(`no TLS folders given and no TLS cluster in ${clusterDir}`, 'name the folders to rotate, or pass --dir of a cluster made by `galleon up`');
      dirs = [...cluster.nodes.map((n) => nodeTlsDir(n.storagePath)), localClientTlsDir(clusterDir)];
    }
    const caDir = resolve(flags['ca-dir'] ?? localCaDir(clusterDir));
    const done: IssuedRecord[] = [];
    // Every request is read first: a folder without a certificate changes nothing anywhere.
    const requests = await Promise.all(dirs.map((d) => requestOf(d, flags.days ?? defaultCertDays)));
    for (const [i, r] of requests.entries()) {
      const { record } = await issue(caDir, r, dirs[i] ?? '');
      done.push(record);
      this.print(`Rotated ${record.kind} ${record.name} in ${record.dir}: serial ${record.serial}, valid until ${record.notAfter}`);
    }
    this.print('Running daemons use their new certificates for new connections within a second (no restart); revoke the old serials with `galleon cert revoke`.');
    return done;
  }
}
