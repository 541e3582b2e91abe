import { Args } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import type { VfsStatusView } from '../../lib/vfs-views.js';

export default class VfsStatus extends GalleonCommand {
  /** Mounts are per node: never fall back to another daemon. */
  static override daemonScoped = true;
  static override description = 'Status of a mounted volume: mount point, state, files, directories, bytes, pending writes, last sync.';
  static override examples = ['<%= config.bin %> vfs status web-data', '<%= config.bin %> vfs status web-data --json'];
  static override args = { volume: Args.string({ description: 'Volume name/UUID or mount point.', required: true }) };

  async run(): Promise<VfsStatusView> {
    const { args, flags } = await this.parse(VfsStatus);
    const s = await (await this.admin(flags)).route<VfsStatusView>('vfsStatus', { ref: args.volume });
    const { vfsStatusDetails } = await import('../../lib/vfs-views.js');
    this.print(vfsStatusDetails(s));
    return s;
  }
}
