import { Args, Flags } from '@oclif/core';
import type { BackupTarget, BackupTargetSpec } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';

export default class BackupTargetAdd extends GalleonCommand {
  static override description = 'Record a place backups go: a directory (local disk or a network file system) or an S3-compatible bucket.';
  static override examples = [
    '<%= config.bin %> backup-target add nightly --dir /var/backups/galleon',
    '<%= config.bin %> backup-target add offsite --s3 https://s3.example.com --bucket galleon --prefix prod/',
    'AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… <%= config.bin %> backup-target add offsite --s3 http://127.0.0.1:9000 --bucket b',
  ];
  static override flags = {
    dir: Flags.string({ summary: 'Absolute path of a directory every daemon can write.', exclusive: ['s3'] }),
    s3: Flags.string({ summary: 'Endpoint of an S3-compatible service, http(s)://host:port.', exclusive: ['dir'] }),
    bucket: Flags.string({ summary: 'S3 bucket (must exist).', dependsOn: ['s3'] }),
    prefix: Flags.string({ summary: 'Key prefix inside the bucket.', dependsOn: ['s3'] }),
    region: Flags.string({ summary: 'S3 region. [default: us-east-1]', dependsOn: ['s3'] }),
    'access-key': Flags.string({ summary: 'S3 access key id (recorded in the cluster); without it the daemons use AWS_ACCESS_KEY_ID.', dependsOn: ['s3', 'secret-key'] }),
    'secret-key': Flags.string({ summary: 'S3 secret key (recorded in the cluster); without it the daemons use AWS_SECRET_ACCESS_KEY.', dependsOn: ['s3', 'access-key'] }),
  };
  static override args = { name: Args.string({ description: 'Target name.', required: true }) };

  async run(): Promise<BackupTarget> {
    const { args, flags } = await this.parse(BackupTargetAdd);
    if (flags.dir === undefined && flags.s3 === undefined) throw usageError('a backup target needs --dir PATH or --s3 URL', 'e.g. galleon backup-target add nightly --dir /var/backups/galleon');
    if (flags.s3 !== undefined && flags.bucket === undefined) throw usageError('an S3 target needs --bucket', 'add --bucket NAME');
    const spec: BackupTargetSpec = { name: args.name };
    if (flags.dir !== undefined) spec.dir = flags.dir;
    if (flags.s3 !== undefined) spec.s3 = flags.s3;
    if (flags.bucket !== undefined) spec.bucket = flags.bucket;
    if (flags.prefix !== undefined) spec.prefix = flags.prefix;
    if (flags.region !== undefined) spec.region = flags.region;
    if (flags['access-key'] !== undefined) spec.accessKeyId = flags['access-key'];
    if (flags['secret-key'] !== undefined) spec.secretAccessKey = flags['secret-key'];
    const t = await (await this.admin(flags)).route<BackupTarget>('backupTargetAdd', {}, spec);
    this.print(`Backup target ${t.name} added (${t.kind === 'dir' ? t.path : `${t.endpoint}/${t.bucket}/${t.prefix}`}).`);
    return t;
  }
}
