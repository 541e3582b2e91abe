import { Args } from '@oclif/core';
import type { StorageClass } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class StorageClassGet extends GalleonCommand {
  static override description = 'Show one storage class.';
  static override examples = ['<%= config.bin %> storage-class get encrypted-storage'];
  static override args = { name: Args.string({ description: 'Storage class name.', required: true }) };

  async run(): Promise<StorageClass> {
    const { args, flags } = await this.parse(StorageClassGet);
    const sc = await (await this.admin(flags)).route<StorageClass>('storageClassGet', { name: args.name });
    const { storageClassDetails } = await import('../../lib/views.js');
    this.print(storageClassDetails(sc));
    return sc;
  }
}
