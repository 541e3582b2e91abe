import { Args, Flags } from '@oclif/core';
import type { RestoreResult } from '../../daemon/snapshot-ops.js';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';

export default class VolumeRestore extends GalleonCommand {
  static override description = 'Roll a volume back in place to one of its snapshots (instant). Refused while it is mounted anywhere; the blocks of files made since are freed in the background (see them go with galleon operation get ID, volume get, or --wait).';
  static override examples = ['<%= config.bin %> volume restore db --snapshot db-nightly --yes', '<%= config.bin %> volume restore db --snapshot db-nightly --yes --wait'];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };
  static override flags = { snapshot: Flags.string({ char: 's', summary: 'Snapshot of this volume to roll back to.', required: true }),
    wait: Flags.boolean({ summary: 'Follow the freeing of the blocks of files made since the snapshot to its end (a progress bar on a terminal); Ctrl-C stops watching, not the freeing.', default: false }),
    yes: yesFlag,
  };

  async run(): Promise<RestoreResult> {
    const { args, flags } = await this.parse(VolumeRestore);
    await this.confirm(`restore volume ${args.volume}`, `Roll volume ${args.volume} back to snapshot ${flags.snapshot}? Writes made since are hidden.`, flags.yes);
    const admin = await this.admin(flags);
    let volume = await admin.route<RestoreResult>('volumeRestore', { ref: args.volume }, { snapshot: flags.snapshot, wait: false });
    if (flags.wait && volume.operation !== undefined) {
      const { followOperation } = await import('../../lib/operation-views.js');
      const op = await followOperation(admin, volume.operation, this.jsonEnabled());
      volume = { ...volume, operation: op, freed: op.result as NonNullable<RestoreResult['freed']> };
    }
    const next = volume.freed !== undefined ? ` Freed ${volume.freed.blocks} block(s) of files made since.`
      : volume.operation === undefined ? '' : ` Blocks of files made since are being freed (galleon operation get ${volume.operation.id}).`;
    this.print(`Volume ${volume.name} restored to snapshot ${flags.snapshot}.${next}`);
    return volume;
  }
}
