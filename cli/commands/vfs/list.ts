import { GalleonCommand } from '../../lib/base-command.js';
import type { MountRow } from '../../lib/vfs-views.js';

export default class VfsList extends GalleonCommand {
  /** Mounts are per node: never fall back to another daemon. */
  static override daemonScoped = true;
  static override description = 'List the mounts of the node of --daemon-address (and volumes it could not mount, with why).';
  static override examples = ['<%= config.bin %> vfs list', '<%= config.bin %> vfs list --json'];

  async run(): Promise<MountRow[]> {
    const { flags } = await this.parse(VfsList);
    const rows = await (await this.admin(flags)).route<MountRow[]>('vfsList', {});
    const { mountTable } = await import('../../lib/vfs-views.js');
    this.print(mountTable(rows));
    return rows;
  }
}
