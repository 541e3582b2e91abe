import { Args, Flags } from '@oclif/core';
import type { Snapshot } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class SnapshotCreate extends GalleonCommand {
  static override description = 'Take a point-in-time snapshot of a volume (metadata only: instant at any size). A volume mounted on the daemon\'s node is flushed first.';
  static override examples = [
    '<%= config.bin %> snapshot create web-data',
    '<%= config.bin %> snapshot create db --name db-nightly --hook-pre "psql -c CHECKPOINT" --hook-timeout-ms 30000',
  ];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };
  static override flags = {
    name: Flags.string({ char: 'n', summary: 'Snapshot name (default <volume>-snap-<id>).' }),
    'hook-pre': Flags.string({ summary: 'Shell command run on the daemon\'s host before the snapshot (e.g. freeze the application).' }),
    'hook-post': Flags.string({ summary: 'Shell command run after the snapshot, also when it failed.' }),
    'hook-timeout-ms': Flags.integer({ summary: 'A hook running longer is killed and counts as failed.', default: 60_000, min: 1, max: 3_600_000 }),
    'on-error': Flags.string({ summary: 'A failed pre-snapshot hook: fail (no snapshot) or continue.', options: ['fail', 'continue'], default: 'fail' }),
  };

  async run(): Promise<Snapshot> {
    const { args, flags } = await this.parse(SnapshotCreate);
    const body = {
      volume: args.volume, onError: flags['on-error'], hookTimeoutMs: flags['hook-timeout-ms'],
      ...(flags.name === undefined ? {} : { name: flags.name }),
      ...(flags['hook-pre'] === undefined ? {} : { hookPre: flags['hook-pre'] }),
      ...(flags['hook-post'] === undefined ? {} : { hookPost: flags['hook-post'] }),
    };
    const snap = await (await this.admin(flags)).route<Snapshot>('snapshotCreate', {}, body);
    this.print(`Snapshot ${snap.name} (${snap.id}) of volume ${snap.volumeName} created at cut epoch ${snap.cut}.`);
    return snap;
  }
}
