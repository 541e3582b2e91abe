import { Args, Flags } from '@oclif/core';
import { readFile, stat } from 'node:fs/promises';
import type { Volume } from '../../../proto/metadata-types.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
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
    const client = await this.admin(flags);
    // Checked here, before the file is read or anything is sent: a too-large file fails at once.
    const volume = await client.route<Volume>('volumeGet', { ref: args.volume });
    const data = flags.file === undefined ? Buffer.from(flags.data ?? '', 'utf8') : await readBlockFile(flags.file, volume);
    if (data.length > volume.blockSizeBytes) throw tooLarge(`--data is ${data.length} bytes`, volume);
    const body = { dataBase64: data.toString('base64'), ...(flags.concern === undefined ? {} : { concern: flags.concern }) };
    const r = await client.route<BlockWriteResult>('blockWrite', { ref: args.volume, inode: flags.inode, block: args.block }, body);
    const upgraded = r.requestedConcern !== null && r.requestedConcern !== r.concern ? ` (upgraded from ${r.requestedConcern}: the volume's default)` : '';
    this.print(`wrote ${r.bytes} bytes to block ${r.blockNo} of ${r.volume}: ${r.concern}${upgraded}, pg ${r.pg}, seq ${r.seq}, epoch ${r.epoch}`);
    return r;
  }
}

function tooLarge(what: string, volume: Volume): GalleonError {
  return new GalleonError(ErrorCode.INVALID_SIZE, `${what}, more than a block of volume ${volume.name} (${volume.blockSizeBytes} bytes)`, {
    hint: `write at most ${volume.blockSizeBytes} bytes per block; split larger data over several blocks`,
  });
}

async function readBlockFile(file: string, volume: Volume): Promise<Buffer> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw usageError(`${file} is not a regular file`, 'give the path of a file with the block content');
    if (info.size > volume.blockSizeBytes) throw tooLarge(`${file} is ${info.size} bytes`, volume);
    return await readFile(file);
  } catch (err) {
    if (err instanceof GalleonError) throw err;
    throw usageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 'check the path');
  }
}
