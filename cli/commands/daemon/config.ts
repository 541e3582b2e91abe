import type { DaemonConfig } from '../../daemon/types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class DaemonConfigCommand extends GalleonCommand {
  static override daemonScoped = true;
  static override description = 'Show the daemon\'s effective configuration (defaults, config file, flags).';
  static override examples = ['<%= config.bin %> daemon config', '<%= config.bin %> daemon config --json'];

  async run(): Promise<DaemonConfig> {
    const { flags } = await this.parse(DaemonConfigCommand);
    const c = await (await this.admin(flags)).route<DaemonConfig>('daemonConfig', {});
    const { keyValues } = await import('../../lib/format.js');
    this.print(keyValues([
      ['Node id', c.nodeId], ['Roles', c.roles.join(',')], ['Storage path', c.storagePath], ['Bind address', c.bindAddress],
      ['IPC address', c.ipcAddress], ['Data address', c.dataAddress], ['Peer addresses', c.peerAddresses.join(',')], ['Block size', c.blockSizeBytes],
      ['Replication strategy', c.replicationStrategy], ['Persistence level', c.persistenceLevel], ['Zone', c.zone],
      ['Target voters', c.targetVoters], ['Heartbeat interval (ms)', c.heartbeatIntervalMs], ['Lease ttl (ms)', c.leaseTtlMs],
      ['Data node down after (ms)', c.dataNodeDownAfterMs],
      // Older daemons send no tls: they predate it and run plaintext.
      ['TLS', c.tls === false || c.tls === undefined ? 'off (plaintext)' : `mutual, ${c.tlsDir ?? `${c.storagePath}/tls`}`], ['Config file', c.configFile],
    ]));
    return c;
  }
}
