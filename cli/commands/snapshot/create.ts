import { Args, Flags } from '@oclif/core';
import type { Snapshot } from '../../../proto/metadata-types.js';
import type { FlushReport } from '../../daemon/snapshot-ops.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class SnapshotCreate extends GalleonCommand {
  static override description = 'Take a point-in-time snapshot of a volume (metadata only: instant at any size). Every read-write mount of the volume, on every node, is flushed first; a mount whose node is dead cannot be, and what it had not flushed is not in the snapshot.';
  static override examples = [
    '<%= config.bin %> snapshot create web-data',
    '<%= config.bin %> snapshot create db --name db-nightly --hook-pre "psql -c CHECKPOINT" --hook-timeout-ms 30000',
    '<%= config.bin %> snapshot create logs --no-flush',
  ];
  static override args = { volume: Args.string({ description: 'Volume name or UUID.', required: true }) };
  static override flags = {
    name: Flags.string({ char: 'n', summary: 'Snapshot name (default <volume>-snap-<id>).' }),
    'hook-pre': Flags.string({ summary: 'Shell command run on the daemon\'s host before the snapshot (e.g. freeze the application).' }),
    'hook-post': Flags.string({ summary: 'Shell command run after the snapshot, also when it failed.' }),
    'hook-timeout-ms': Flags.integer({ summary: 'A hook running longer is killed and counts as failed.', default: 60_000, min: 1, max: 3_600_000 }),
    'on-error': Flags.string({ summary: 'A failed pre-snapshot hook or mount flush: fail (no snapshot) or continue.', options: ['fail', 'continue'], default: 'fail' }),
    flush: Flags.boolean({ summary: 'Flush every mount of the volume first (--no-flush: only what the mounts had committed is in the snapshot).', default: true, allowNo: true }),
    'flush-timeout-ms': Flags.integer({ summary: 'How long the mounts get to flush; one that has not answered by then fails the snapshot (or, with --on-error continue, is left out).', default: 20_000, min: 1, max: 3_600_000 }),
  };

  async run(): Promise<Snapshot> {
    const { args, flags } = await this.parse(SnapshotCreate);
    const body = {
      volume: args.volume, onError: flags['on-error'], hookTimeoutMs: flags['hook-timeout-ms'], flush: flags.flush, flushTimeoutMs: flags['flush-timeout-ms'],
      ...(flags.name === undefined ? {} : { name: flags.name }),
      ...(flags['hook-pre'] === undefined ? {} : { hookPre: flags['hook-pre'] }),
      ...(flags['hook-post'] === undefined ? {} : { hookPost: flags['hook-post'] }),
    };
    const snap = await (await this.admin(flags)).route<Snapshot & { flush?: FlushReport | null }>('snapshotCreate', {}, body);
    this.print(`Snapshot ${snap.name} (${snap.id}) of volume ${snap.volumeName} created at cut epoch ${snap.cut}.`);
    const f = snap.flush ?? null;
    if (f !== null && f.asked > 0) this.print(`Flushed ${f.flushed} of ${f.asked} mount(s) first.`);
    if (f !== null && f.lapsed.length + f.unanswered.length + f.failed.length > 0) {
      this.print(`Not in the snapshot: what ${f.lapsed.length + f.unanswered.length + f.failed.length} mount(s) had not flushed (node gone, silent or failing).`);
    }
    return snap;
  }
}
