import type { StorageClass } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class StorageClassList extends GalleonCommand {
  static override description = 'List all storage classes.';
  static override examples = ['<%= config.bin %> storage-class list'];

  async run(): Promise<StorageClass[]> {
    const { flags } = await this.parse(StorageClassList);
    const classes = await (await this.admin(flags)).route<StorageClass[]>('storageClassList', {});
    const { storageClassTable } = await import('../../lib/views.js');
    this.print(storageClassTable(classes));
    return classes;
  }
}
