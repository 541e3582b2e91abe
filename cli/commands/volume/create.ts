import { Flags } from '@oclif/core';
import type { AccessMode, Volume, VolumeSpec, VolumeType } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { parseVolumeSize, roundingNote } from '../../lib/size.js';
import { parseLabels } from '../../lib/labels.js';
import { usageError } from '../../lib/errors.js';
import { maxReplicaCount, minReplicaCount } from '../../../proto/limits.js';

export default class VolumeCreate extends GalleonCommand {
  static override description = 'Create a new volume.';
  static override examples = [
    '<%= config.bin %> volume create --name web-data --size 1G --storage-class fast-local-ssd',
    '<%= config.bin %> volume create -n db-data -s 10G -c encrypted-storage -r 3 --label team=db',
    '<%= config.bin %> volume create -n media -s 100G --block-size 1M',
  ];

  static override flags = {
    name: Flags.string({ char: 'n', summary: 'Volume name (unique; generated when omitted).' }),
    'volume-type': Flags.string({ char: 't', summary: 'Volume type.', options: ['ephemeral', 'persistent', 'shared'], default: 'persistent' }),
    size: Flags.string({ char: 's', summary: 'Size with a K/M/G/T suffix (powers of 1024).', default: '1G' }),
    'storage-class': Flags.string({ char: 'c', summary: 'Storage class.', default: 'encrypted-storage' }),
    replicas: Flags.integer({ char: 'r', summary: 'Number of replicas (overrides the storage class).' }),
    'access-mode': Flags.string({ summary: 'Access mode.', options: ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany'] }),
    label: Flags.string({ char: 'l', summary: 'Label as key=value (repeatable).', multiple: true }),
    'block-size': Flags.string({ summary: 'Block size, fixed for the volume\'s life: a power of two from 4K to 1M (the unit of file data on the data plane). [default: the daemon\'s --block-size, 128K]' }),
  };

  async run(): Promise<Volume & { requestedSizeBytes?: number }> {
    const { flags } = await this.parse(VolumeCreate);
    const spec: VolumeSpec = {
      type: flags['volume-type'] as VolumeType,
      size: parseVolumeSize(flags.size),
      storageClass: flags['storage-class'],
      labels: parseLabels(flags.label ?? []),
    };
    if (flags.name !== undefined) spec.name = flags.name;
    if (flags.replicas !== undefined) {
      if (flags.replicas < minReplicaCount || flags.replicas > maxReplicaCount) {
        throw usageError(`invalid replica count ${flags.replicas}`, `use ${minReplicaCount} to ${maxReplicaCount}, or leave it to the storage class`);
      }
      spec.replicas = flags.replicas;
    }
    if (flags['access-mode'] !== undefined) spec.accessMode = flags['access-mode'] as AccessMode;
    if (flags['block-size'] !== undefined) spec.blockSize = flags['block-size'];
    const volume = await (await this.admin(flags)).route<Volume>('volumeCreate', {}, spec);
    const { volumeDetails } = await import('../../lib/views.js');
    const note = roundingNote(spec.size as number, volume);
    this.print(`Volume ${volume.name} created.\n${volumeDetails(volume)}${note === null ? '' : `\n${note}`}`);
    return note === null ? volume : { ...volume, requestedSizeBytes: spec.size as number };
  }
}
