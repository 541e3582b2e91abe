import { Args } from '@oclif/core';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import type { CertInfo } from '../../lib/pki.js';

export default class CertShow extends GalleonCommand {
  static override summary = 'Show a certificate: subject, issuer, names, validity, and whether the CA beside it signed it.';
  static override examples = ['<%= config.bin %> cert show ./.galleon/node1/tls', '<%= config.bin %> cert show /var/lib/galleonfs/tls/tls.crt'];
  static override args = { path: Args.string({ description: 'A TLS folder (its tls.crt) or a PEM certificate file.', required: true }) };

  async run(): Promise<CertInfo> {
    const { args } = await this.parse(CertShow);
    const [{ describe }, { tlsFileNames }, { keyValues }] = await Promise.all([import('../../lib/pki.js'), import('../../lib/tls.js'), import('../../lib/format.js')]);
    const path = resolve(args.path);
    const isDir = await stat(path).then((s) => s.isDirectory(), () => false);
    const file = isDir ? join(path, tlsFileNames.cert) : path;
    const pem = await readFile(file).catch((err: unknown) => { throw usageError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'give a TLS folder or a PEM certificate file'); });
    const caPem = await readFile(join(dirname(file), tlsFileNames.ca)).catch(() => null);
    let info: CertInfo;
    try {
      info = describe(pem, file, caPem !== null && file !== join(dirname(file), tlsFileNames.ca) ? caPem : null);
    } catch (err) {
      throw usageError(`${file} is not a PEM certificate (${(err as Error).message})`, 'give a tls.crt or ca.crt file');
    }
    this.print(keyValues([
      ['File', info.file], ['Kind', info.kind], ['Subject', info.subject], ['Issuer', info.issuer], ['Serial', info.serial],
      ['Names', info.subjectAltName ?? '(none)'], ['Valid from', info.notBefore], ['Valid until', `${info.notAfter}${info.expired ? ' (EXPIRED)' : ''}`],
      ['SHA-256', info.fingerprint256], ['Signed by ca.crt beside it', info.signedByCa === null ? 'no ca.crt beside it' : info.signedByCa ? 'yes' : 'NO'],
    ]));
    return info;
  }
}
