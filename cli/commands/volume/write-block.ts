import { Args, Flags } from '@oclif/core';
import { readFile } from 'node:fs/promises';
import { writeConcernOrder } from '../../../proto/metadata-types.js';
import type { BlockWriteResult } from '../../daemon/block-ops.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';

export default class VolumeWriteBlock extends GalleonCommand {
  static override description = 'Write one block of a volume through the data plane (the daemon must run the data role). ' +
    'A write concern weaker than the volume\'s storage-class default is upgraded to that default.';

  static override examples = [
    '<%= config.bin %> volume write-block web-data 0 --data "hello"',
    '<%= config.bin %> volume write-block web-data 12 --file ./block.bin --concern replicated --json',
  ];

  static override args = {
    volume: Args.string({ description: 'Volume name or UUID.', required: true }),
    block: Args.string({ description: 'Block number (from 0).', required: true }),
  };

  static override flags = {
    data: Flags.string({ char: 'd', summary: 'The block content as a UTF-8 string.', exclusive: ['file'] }),
    file: Flags.string({ char: 'f', summary: 'Read the block content from this file.', exclusive: ['data'] }),
    concern: Flags.string({ char: 'w', summary: `Write concern: ${writeConcernOrder.join(', ')} [default: the volume's].` }),
    inode: Flags.string({ summary: 'Inode the block belongs to.', default: '0' }),
  };

  async run(): Promise<BlockWriteResult> {
    const { args, flags } = await this.parse(VolumeWriteBlock);
    if (flags.concern !== undefined && !(writeConcernOrder as readonly string[]).includes(flags.concern)) {
      throw usageError(`unknown write concern "${flags.concern}"`, `use one of ${writeConcernOrder.join(', ')}`);
    }
    if ((flags.data === undefined) === (flags.file === undefined)) throw usageError('give the block content with --data STRING or --file PATH', 'exactly one of the two');
    let data: Buffer;
    if (flags.file !== undefined) {
      try {
        data = await readFile(flags.file);
      } catch (err) {
        throw usageError(`cannot read ${flags.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 'check the path');
      }
    } else {
      data = Buffer.from(flags.data ?? '', 'utf8');
    }
    const body = { dataBase64: data.toString('base64'), ...(flags.concern === undefined ? {} : { concern: flags.concern }) };
    const path = `/v1/volumes/${encodeURIComponent(args.volume)}/inodes/${encodeURIComponent(flags.inode)}/blocks/${encodeURIComponent(args.block)}`;
    const r = await (await this.admin(flags)).call<BlockWriteResult>('PUT', path, body);
    const upgraded = r.requestedConcern !== null && r.requestedConcern !== r.concern ? ` (upgraded from ${r.requestedConcern}: the volume's default)` : '';
    this.print(`wrote ${r.bytes} bytes to block ${r.blockNo} of ${r.volume}: ${r.concern}${upgraded}, pg ${r.pg}, seq ${r.seq}, epoch ${r.epoch}`);
    return r;
  }
}
