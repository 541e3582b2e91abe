import type { DaemonStatus } from '../../daemon/types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class DaemonRestart extends GalleonCommand {
  static override daemonScoped = true;
  static override description = 'Restart the daemon\'s roles in place (stores are closed and reopened; the admin address stays up).';
  static override examples = ['<%= config.bin %> daemon restart'];

  async run(): Promise<DaemonStatus> {
    const { flags } = await this.parse(DaemonRestart);
    const s = await (await this.admin(flags)).route<DaemonStatus>('daemonRestart', {}, undefined, 60_000);
    this.print(`Daemon ${s.nodeId} restarted (metadata role: ${s.metadata?.state ?? 'not run'}).`);
    return s;
  }
}
