import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import type { IssuedRecord } from '../../lib/pki.js';

export default class CertList extends GalleonCommand {
  static override summary = 'List the certificates a CA issued (newest last).';
  static override examples = ['<%= config.bin %> cert list', '<%= config.bin %> cert list --ca-dir /etc/galleonfs/ca --json'];
  static override flags = {
    'ca-dir': Flags.string({ summary: 'The CA folder. [default: <dir>/tls/ca of the local cluster]' }),
  };

  async run(): Promise<IssuedRecord[]> {
    const { flags } = await this.parse(CertList);
    const [{ listIssued }, { localCaDir }, { table }] = await Promise.all([import('../../lib/pki.js'), import('../../lib/tls.js'), import('../../lib/format.js')]);
    const list = await listIssued(resolve(flags['ca-dir'] ?? localCaDir(resolve(flags.dir))));
    this.print(table(['KIND', 'NAME', 'SERIAL', 'VALID UNTIL', 'NAMES', 'FOLDER'],
      list.map((r) => [r.kind, r.name, r.serial.slice(0, 16), r.notAfter, [...r.dns, ...r.ips].join(','), r.dir])));
    return list;
  }
}
