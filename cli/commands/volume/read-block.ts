import { Args, Flags } from '@oclif/core';
import { writeFile } from 'node:fs/promises';
import type { BlockReadResult } from '../../daemon/block-ops.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class VolumeReadBlock extends GalleonCommand {
  static override description = 'Read one block of a volume through the data plane: raw bytes to stdout, or to --out FILE. ' +
    'With --json the payload is base64 (or hex with --encoding hex).';

  static override examples = [
    '<%= config.bin %> volume read-block web-data 0',
    '<%= config.bin %> volume read-block web-data 12 --out ./block.bin',
    '<%= config.bin %> volume read-block web-data 12 --json --encoding hex',
    '<%= config.bin %> volume read-block web-data 12 --snapshot web-data-nightly --out ./then.bin',
  ];

  static override args = {
    volume: Args.string({ description: 'Volume name or UUID.', required: true }),
    block: Args.string({ description: 'Block number (from 0).', required: true }),
  };

  static override flags = {
    out: Flags.string({ char: 'o', summary: 'Write the block content to this file instead of stdout.' }),
    inode: Flags.string({ summary: 'Inode the block belongs to.', default: '0' }),
    encoding: Flags.string({ summary: 'Payload encoding in --json output.', options: ['base64', 'hex'], default: 'base64' }),
    snapshot: Flags.string({ summary: 'Read the block as it was in this snapshot of the volume.' }),
  };

  async run(): Promise<Omit<BlockReadResult, 'dataBase64'> & { data: string; encoding: string }> {
    const { args, flags } = await this.parse(VolumeReadBlock);
    const admin = await this.admin(flags);
    const { dataBase64, ...rest } = flags.snapshot === undefined
      ? await admin.route<BlockReadResult>('blockRead', { ref: args.volume, inode: flags.inode, block: args.block })
      : await admin.route<BlockReadResult>('snapshotBlockRead', { ref: flags.snapshot, inode: flags.inode, block: args.block });
    if (flags.snapshot !== undefined && rest.volume !== args.volume && rest.volumeId !== args.volume) {
      const { GalleonError } = await import('../../../proto/errors.js');
      throw new GalleonError('INVALID_ARGUMENT', `snapshot ${flags.snapshot} is of volume ${rest.volume}, not ${args.volume}`, { hint: `read it with: galleon volume read-block ${rest.volume} ${args.block} --snapshot ${flags.snapshot}` });
    }
    const bytes = Buffer.from(dataBase64, 'base64');
    if (flags.out !== undefined) {
      await writeFile(flags.out, bytes);
      this.print(rest.written
        ? `read ${bytes.length} bytes of block ${rest.blockNo} of ${rest.volume} into ${flags.out} (seq ${rest.seq}, epoch ${rest.epoch})`
        : `block ${rest.blockNo} of ${rest.volume} was never written: wrote ${bytes.length} zero bytes into ${flags.out}`);
    } else if (!this.jsonEnabled()) {
      process.stdout.write(bytes);
    }
    return { ...rest, encoding: flags.encoding, data: flags.encoding === 'hex' ? bytes.toString('hex') : dataBase64 };
  }
}
