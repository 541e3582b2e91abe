import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import { parseCacheTimeout, type MountRow } from '../../lib/vfs-views.js';

export default class VfsMount extends GalleonCommand {
  /** Mounts are per node: never fall back to another daemon. */
  static override daemonScoped = true;
  static override description = 'Mount a volume as a directory on the node of --daemon-address (FUSE; the daemon holds the mount).';
  static override examples = ['<%= config.bin %> vfs mount web-data --mount-point /mnt/web-data', '<%= config.bin %> vfs mount media --mount-point /mnt/media --readonly'];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };
  static override flags = {
    'mount-point': Flags.string({ summary: 'Existing empty directory (on the daemon\'s machine).', required: true }),
    readonly: Flags.boolean({ summary: 'Mount read-only (writes get EROFS).', default: false }),
    'cache-timeout': Flags.string({ summary: 'Seconds names and attributes are cached, to the millisecond (0 = ask the namespace every time: strict). [default: 1]' }),
  };

  async run(): Promise<MountRow> {
    const { args, flags } = await this.parse(VfsMount);
    const cacheTimeout = parseCacheTimeout(flags['cache-timeout']);
    const row = await (await this.admin(flags)).route<MountRow>('vfsMount', {}, {
      volume: args.volume, mountPoint: resolve(flags['mount-point']), readOnly: flags.readonly,
      ...(cacheTimeout === undefined ? {} : { cacheTimeoutSec: cacheTimeout }),
    });
    this.print(`Volume ${row.volume} mounted at ${row.mountPoint} (${row.mode}).`);
    return row;
  }
}
