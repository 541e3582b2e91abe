import { Args } from '@oclif/core';
import { readFile } from 'node:fs/promises';
import type { StorageClass } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';

export default class StorageClassCreate extends GalleonCommand {
  static override description = 'Create a storage class from a JSON or YAML file.';
  static override examples = ['<%= config.bin %> storage-class create ultra-fast-ssd.json', '<%= config.bin %> storage-class create secure-distributed.yaml'];
  static override args = { file: Args.string({ description: 'JSON or YAML file describing the class.', required: true }) };

  async run(): Promise<StorageClass> {
    const { args, flags } = await this.parse(StorageClassCreate);
    let text: string;
    try {
      text = await readFile(args.file, 'utf8');
    } catch (err) {
      throw usageError(`cannot read ${args.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'give the path of a JSON or YAML storage class file');
    }
    const { parseStorageClassText } = await import('../../lib/storage-class-file.js');
    const spec = parseStorageClassText(text, args.file);
    const sc = await (await this.admin(flags)).route<StorageClass>('storageClassCreate', {}, spec);
    this.print(`Storage class ${sc.name} created.`);
    return sc;
  }
}
