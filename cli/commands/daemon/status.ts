import type { DaemonStatus } from '../../daemon/types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class DaemonStatusCommand extends GalleonCommand {
  static override daemonScoped = true;
  static override description = 'Show the daemon\'s runtime status: node, roles, Raft role and health.';
  static override examples = ['<%= config.bin %> daemon status', '<%= config.bin %> --daemon-address 127.0.0.1:8091 daemon status'];

  async run(): Promise<DaemonStatus> {
    const { flags } = await this.parse(DaemonStatusCommand);
    const s = await (await this.admin(flags)).route<DaemonStatus>('daemonStatus', {});
    const { keyValues, formatDuration } = await import('../../lib/format.js');
    const md = s.metadata;
    this.print(keyValues([
      ['Node', s.nodeId], ['PID', s.pid], ['Version', s.version], ['Uptime', formatDuration(s.uptimeMs)],
      ['Healthy', s.healthy ? 'yes' : 'no'], ['Roles', s.roles.join(',')], ['Storage path', s.storagePath],
      ['Bind address', s.bindAddress], ['IPC address', s.ipcAddress],
      ['Security', securityLine(s.security)],
      ['Read freshness', s.security?.freshness === 'strict' ? 'strict (reads no other replica can check are refused)' : 'best-effort (reads no other replica can check are served and counted)'],
      ['Metadata role', md === null ? 'not run' : md.state + (md.error === null ? '' : ` (${md.error})`)],
      ['Raft role', md?.raftRole], ['Leader', md?.leaderId], ['Term', md?.term],
      ['Commit index', md?.commitIndex], ['Applied index', md?.appliedIndex],
      ['Data role', s.data === null ? 'not run' : `${s.data.state}, ${s.data.registered ? 'registered' : 'not registered yet'} at ${s.data.address}`],
    ]));
    return s;
  }
}

/** Older daemons have no `security`: they predate TLS, so they are plaintext. */
function securityLine(sec: DaemonStatus['security'] | undefined): string {
  if (sec === undefined || sec.mode === 'plaintext') return 'PLAINTEXT (--insecure-plaintext: no encryption, no authentication; development only)';
  const serial = sec.certSerial === undefined || sec.certSerial === null ? '' : `, serial ${sec.certSerial.slice(0, 16)}`;
  const revoked = (sec.revokedCertificates ?? 0) > 0 ? `; ${sec.revokedCertificates} revoked` : '';
  return `mutual TLS (${sec.certSubject ?? '?'}${serial}, valid until ${sec.certNotAfter ?? '?'}; ${sec.tlsDir ?? '?'}${revoked})`;
}
