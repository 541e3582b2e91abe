import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import type { CertInfo } from '../../lib/pki.js';

export default class CertInitCa extends GalleonCommand {
  static override summary = 'Create the cluster\'s certificate authority (ca.crt, ca.key with mode 0600).';
  static override description = [
    'Create a CA for mutual TLS between the nodes of a cluster and its clients. Keep ca.key safe:',
    'whoever holds it can issue certificates the cluster trusts. `galleon up` makes one in <dir>/tls/ca by itself.',
  ].join('\n');
  static override examples = ['<%= config.bin %> cert init-ca --ca-dir /etc/galleonfs/ca', '<%= config.bin %> cert init-ca --ca-dir ./ca --days 1825'];
  static override flags = {
    'ca-dir': Flags.string({ summary: 'Folder for ca.crt, ca.key and the list of issued certificates.', required: true }),
    days: Flags.integer({ summary: 'Validity of the CA certificate in days. [default: 3650]' }),
  };

  async run(): Promise<CertInfo> {
    const { flags } = await this.parse(CertInitCa);
    const { initCa, defaultCaDays } = await import('../../lib/pki.js');
    const { cert, dir } = await initCa(resolve(flags['ca-dir']), flags.days ?? defaultCaDays);
    this.print(`Created a CA in ${dir}\n  ${cert.subject}, valid until ${cert.notAfter}\nIssue node certificates with: galleon cert issue --ca-dir ${dir} --node ID --out DIR`);
    return cert;
  }
}
