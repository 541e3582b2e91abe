import { Args, Flags } from '@oclif/core';
import type { Snapshot } from '../../../proto/metadata-types.js';
import type { OperationView } from '../../daemon/operations.js';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';
import { formatBytes } from '../../lib/size.js';

interface DeleteResult {
  snapshot: Snapshot;
  dryRun: boolean;
  bytesToFree: number;
  versionsToFree: number;
  freed: { versions: number; bytes: number } | null;
  /** The background freeing: phase, versions done/total, bytes (null for a dry run). */
  operation: OperationView | null;
}

export default class SnapshotDelete extends GalleonCommand {
  static override description = 'Delete a snapshot; the block versions only it kept are freed in the background (see them go with galleon operation get ID, or --wait). Refused while clones read through it.';
  static override examples = [
    '<%= config.bin %> snapshot delete db-nightly --dry-run',
    '<%= config.bin %> snapshot delete db-nightly --yes',
    '<%= config.bin %> snapshot delete db-nightly --yes --wait',
  ];
  static override args = { snapshot: Args.string({ description: 'Snapshot name or UUID.', required: true }) };
  static override flags = {
    yes: yesFlag,
    'dry-run': Flags.boolean({ summary: 'Show the space the delete would free; delete nothing.', default: false }),
    wait: Flags.boolean({ summary: 'Follow the freeing to its end (a progress bar on a terminal); Ctrl-C stops watching, not the freeing.', default: false }),
  };

  async run(): Promise<DeleteResult> {
    const { args, flags } = await this.parse(SnapshotDelete);
    if (!flags['dry-run']) await this.confirm(`delete snapshot ${args.snapshot}`, `Delete snapshot ${args.snapshot}?`, flags.yes);
    const admin = await this.admin(flags);
    let r = await admin.route<DeleteResult>('snapshotDelete', { ref: args.snapshot }, { dryRun: flags['dry-run'], wait: false });
    if (flags.wait && r.operation !== null) {
      const { followOperation } = await import('../../lib/operation-views.js');
      const op = await followOperation(admin, r.operation, this.jsonEnabled());
      r = { ...r, operation: op, freed: op.result as { versions: number; bytes: number } };
    }
    const space = `${formatBytes(r.bytesToFree)} in ${r.versionsToFree} block version(s), all replicas`;
    if (r.dryRun) this.print(`Deleting snapshot ${r.snapshot.name} would free ${space}.`);
    else if (r.freed !== null) this.print(`Snapshot ${r.snapshot.name} deleted; freed ${formatBytes(r.freed.bytes)} in ${r.freed.versions} block version(s).`);
    else this.print(`Snapshot ${r.snapshot.name} deleted; ${space} are being freed in the background${r.operation === null ? '' : ` (galleon operation get ${r.operation.id})`}.`);
    return r;
  }
}
