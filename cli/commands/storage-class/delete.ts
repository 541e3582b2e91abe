import { Args } from '@oclif/core';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';

export default class StorageClassDelete extends GalleonCommand {
  static override description = 'Delete a storage class that no volume uses (built-in classes stay).';
  static override examples = ['<%= config.bin %> storage-class delete ultra-fast-ssd', '<%= config.bin %> storage-class delete ultra-fast-ssd -y'];
  static override flags = { yes: yesFlag };
  static override args = { name: Args.string({ description: 'Storage class name.', required: true }) };

  async run(): Promise<{ deleted: string }> {
    const { args, flags } = await this.parse(StorageClassDelete);
    await this.confirm(`delete storage class ${args.name}`, `Delete storage class ${args.name}?`, flags.yes);
    await (await this.admin(flags)).route<unknown>('storageClassDelete', { name: args.name });
    this.print(`Storage class ${args.name} deleted.`);
    return { deleted: args.name };
  }
}
