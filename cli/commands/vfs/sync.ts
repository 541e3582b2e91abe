import { Args } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';

interface SyncRow { volume: string; files: number }

export default class VfsSync extends GalleonCommand {
  /** Mounts are per node: never fall back to another daemon. */
  static override daemonScoped = true;
  static override description = 'Flush every open file of a mounted volume (or of all) to the data plane at the volume\'s write concern and commit sizes.';
  static override examples = ['<%= config.bin %> vfs sync', '<%= config.bin %> vfs sync web-data'];
  static override args = { volume: Args.string({ description: 'Volume name/UUID or mount point (default: all mounts).', required: false }) };

  async run(): Promise<SyncRow[]> {
    const { args, flags } = await this.parse(VfsSync);
    const rows = await (await this.admin(flags)).route<SyncRow[]>('vfsSync', {}, args.volume === undefined ? {} : { volume: args.volume });
    this.print(rows.length === 0 ? 'No volumes mounted on this node.' : rows.map((r) => `Synced ${r.volume} (${r.files} open files flushed).`).join('\n'));
    return rows;
  }
}
