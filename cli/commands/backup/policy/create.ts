import { Flags } from '@oclif/core';
import type { BackupPolicy } from '../../../../proto/metadata-types.js';
import type { RetentionPlan } from '../../../../dataplane/backup/logic/retention.js';
import { GalleonCommand } from '../../../lib/base-command.js';

export default class BackupPolicyCreate extends GalleonCommand {
  static override description = 'Back a volume up on a schedule (cron, UTC) with grandfather-father-son retention; each new backup gets a sample verification.';
  static override examples = [
    '<%= config.bin %> backup policy create --volume db-data --target nightly --schedule "0 2 * * *" --strategy incremental --keep-daily 7 --keep-weekly 4 --keep-monthly 3',
    '<%= config.bin %> backup policy create --volume db-data --target nightly --schedule "0 2 * * *" --keep-daily 3 --dry-run',
  ];
  static override flags = {
    volume: Flags.string({ summary: 'Volume name or id.', required: true }),
    target: Flags.string({ summary: 'Backup target name.', required: true }),
    schedule: Flags.string({ summary: 'Cron expression in UTC (5 fields, or 6 with seconds).', required: true }),
    strategy: Flags.string({ options: ['full', 'incremental', 'differential'], default: 'incremental', summary: 'Strategy of each run.' }),
    'keep-daily': Flags.integer({ min: 0, max: 1000, default: 7, summary: 'Keep the newest backup of this many days.' }),
    'keep-weekly': Flags.integer({ min: 0, max: 1000, default: 4, summary: 'Keep the newest backup of this many ISO weeks.' }),
    'keep-monthly': Flags.integer({ min: 0, max: 1000, default: 3, summary: 'Keep the newest backup of this many months.' }),
    'verify-sample': Flags.integer({ min: 0, max: 100, default: 10, summary: 'Percent of each new backup\'s blocks to verify (0: off).' }),
    'dry-run': Flags.boolean({ default: false, summary: 'Create nothing: show what retention would keep and delete now.' }),
  };

  async run(): Promise<BackupPolicy | (RetentionPlan & { volume: string; target: string })> {
    const { flags } = await this.parse(BackupPolicyCreate);
    const body = {
      volume: flags.volume, target: flags.target, schedule: flags.schedule, strategy: flags.strategy,
      keepDaily: flags['keep-daily'], keepWeekly: flags['keep-weekly'], keepMonthly: flags['keep-monthly'], verifySamplePercent: flags['verify-sample'],
    };
    const admin = await this.admin(flags);
    if (flags['dry-run']) {
      const plan = await admin.route<RetentionPlan & { volume: string; target: string }>('backupPolicyPlan', {}, body);
      const { table } = await import('../../../lib/format.js');
      this.print(`Retention now on ${plan.volume} at ${plan.target}: keeps ${plan.keep.length}, would delete ${plan.drop.length}.\n${table(['BACKUP', 'VERDICT', 'WHY'], [
        ...plan.keep.map((k) => [k.id, 'keep', k.reasons.join(',')]), ...plan.drop.map((d) => [d, 'DELETE', '-']),
      ])}`);
      return plan;
    }
    const p = await admin.route<BackupPolicy>('backupPolicyCreate', {}, body);
    const { formatTime } = await import('../../../lib/format.js');
    this.print(`Backup policy ${p.id} created: ${p.volume} to ${p.target} at "${p.schedule}" (UTC), next run ${formatTime(p.nextDueMs)}.`);
    return p;
  }
}
