import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import type { CertInfo, IssuedRecord } from '../../lib/pki.js';

export default class CertIssue extends GalleonCommand {
  static override summary = 'Issue a node or client certificate from the cluster CA into a TLS folder.';
  static override description = [
    'Write ca.crt, tls.crt and tls.key (mode 0600) into --out: a node certificate (--node, for `daemon start --tls-dir`;',
    'valid for localhost, 127.0.0.1, ::1 and every --dns/--ip its peers and clients dial) or a client certificate',
    '(--client, for the CLI\'s --tls-dir or GALLEON_TLS_DIR; it may call the admin endpoint, the metadata API and the',
    'block port, never Raft).',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> cert issue --ca-dir /etc/galleonfs/ca --node node1 --ip 10.0.1.10 --dns node1.example.net --out /var/lib/galleonfs/tls',
    '<%= config.bin %> cert issue --ca-dir /etc/galleonfs/ca --client alice --out ~/.galleon-tls',
  ];
  static override flags = {
    'ca-dir': Flags.string({ summary: 'The CA folder (of `cert init-ca`; `galleon up`: <dir>/tls/ca).', required: true }),
    node: Flags.string({ summary: 'Issue a node certificate for this node id.', exclusive: ['client'] }),
    client: Flags.string({ summary: 'Issue a client certificate with this name.', exclusive: ['node'] }),
    dns: Flags.string({ summary: 'A DNS name the node is reached at (repeatable).', multiple: true, default: [] }),
    ip: Flags.string({ summary: 'An IP address the node is reached at (repeatable).', multiple: true, default: [] }),
    out: Flags.string({ summary: 'Folder to write ca.crt, tls.crt, tls.key into.', required: true }),
    days: Flags.integer({ summary: 'Validity in days (at most the CA\'s). [default: 365]' }),
  };

  async run(): Promise<{ record: IssuedRecord; cert: CertInfo }> {
    const { flags } = await this.parse(CertIssue);
    const name = flags.node ?? flags.client;
    if (name === undefined) throw usageError('say what to issue: --node ID or --client NAME', 'e.g. galleon cert issue --ca-dir DIR --node node1 --out DIR');
    const { issue, defaultCertDays } = await import('../../lib/pki.js');
    const kind = flags.node !== undefined ? 'node' : 'client';
    const r = await issue(resolve(flags['ca-dir']), { kind, name, dns: flags.dns, ips: flags.ip, days: flags.days ?? defaultCertDays }, resolve(flags.out));
    this.print(`Issued a ${kind} certificate for ${name} into ${r.record.dir}\n  serial ${r.record.serial}, valid until ${r.record.notAfter}\n  names: ${r.cert.subjectAltName ?? '(none)'}`);
    return r;
  }
}
