import { Args, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import type { MountRow } from '../../lib/vfs-views.js';

export default class VolumeMount extends GalleonCommand {
  /** Mounts are per node: never fall back to another daemon. */
  static override daemonScoped = true;
  static override description = 'Mount a volume at PATH on the node of --daemon-address (same as `vfs mount`).';
  static override examples = ['<%= config.bin %> volume mount web-data /mnt/web-data', '<%= config.bin %> volume mount web-data /mnt/web-data -o ro',
    '<%= config.bin %> volume mount disk1 /mnt/disk1 --raw && mkfs.ext4 /mnt/disk1/data'];
  static override args = {
    volume: Args.string({ description: 'Volume name or UUID.', required: true }),
    path: Args.string({ description: 'Existing empty directory.', required: true }),
  };
  static override flags = {
    options: Flags.string({ char: 'o', summary: 'Comma-separated mount options: ro or rw. [default: rw]' }),
    'cache-timeout': Flags.string({ summary: 'Seconds names and attributes are cached, to the millisecond (0 = ask the namespace every time: strict). [default: 1]' }),
    raw: Flags.boolean({ summary: 'Show the volume as one file PATH/data of the volume\'s size (for dd, mkfs.ext4, mount -o loop).', default: false }),
  };

  async run(): Promise<MountRow> {
    const { args, flags } = await this.parse(VolumeMount);
    const { parseCacheTimeout, parseMountOptions } = await import('../../lib/vfs-views.js');
    const cacheTimeout = parseCacheTimeout(flags['cache-timeout']);
    const o = parseMountOptions(flags.options);
    if ('error' in o) throw usageError(o.error, 'use -o ro or -o rw');
    const row = await (await this.admin(flags)).route<MountRow>('vfsMount', {}, {
      volume: args.volume, mountPoint: resolve(args.path), readOnly: o.readOnly, raw: flags.raw,
      ...(cacheTimeout === undefined ? {} : { cacheTimeoutSec: cacheTimeout }),
    });
    this.print(row.raw ? `Volume ${row.volume} mounted raw: ${row.mountPoint}/data (${row.mode}).` : `Volume ${row.volume} mounted at ${row.mountPoint} (${row.mode}).`);
    return row;
  }
}
