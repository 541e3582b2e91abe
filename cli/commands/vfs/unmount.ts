import { Args } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import type { MountRow } from '../../lib/vfs-views.js';

export default class VfsUnmount extends GalleonCommand {
  /** Mounts are per node: never fall back to another daemon. */
  static override daemonScoped = true;
  static override description = 'Unmount a volume mounted by the daemon (by volume name or mount point); buffered writes are flushed first.';
  static override examples = ['<%= config.bin %> vfs unmount web-data', '<%= config.bin %> vfs unmount /mnt/web-data'];
  static override args = { target: Args.string({ description: 'Volume name/UUID or mount point.', required: true }) };

  async run(): Promise<MountRow> {
    const { args, flags } = await this.parse(VfsUnmount);
    const target = args.target.includes('/') ? resolve(args.target) : args.target;
    const row = await (await this.admin(flags)).route<MountRow>('vfsUnmount', {}, { target });
    this.print(`Volume ${row.volume} unmounted from ${row.mountPoint}.`);
    return row;
  }
}
