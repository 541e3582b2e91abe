import type { BackupPolicy } from '../../../../proto/metadata-types.js';
import { GalleonCommand } from '../../../lib/base-command.js';

export default class BackupPolicyList extends GalleonCommand {
  static override description = 'List backup policies, their next run and their last run.';
  static override examples = ['<%= config.bin %> backup policy list'];

  async run(): Promise<BackupPolicy[]> {
    const { flags } = await this.parse(BackupPolicyList);
    const ps = await (await this.admin(flags)).route<BackupPolicy[]>('backupPolicyList', {});
    const { table, formatTime } = await import('../../../lib/format.js');
    this.print(ps.length === 0 ? 'No backup policies.' : table(['ID', 'VOLUME', 'TARGET', 'SCHEDULE', 'STRATEGY', 'KEEP D/W/M', 'NEXT', 'LAST RUN'], ps.map((p) => [
      p.id, p.volume, p.target, p.schedule, p.strategy, `${p.keepDaily}/${p.keepWeekly}/${p.keepMonthly}`, formatTime(p.nextDueMs),
      p.lastRun === null ? '-' : `${formatTime(p.lastRun.dueMs)} ${p.lastRun.done ? (p.lastRun.error === null ? `ok ${p.lastRun.backupId ?? ''}` : `failed: ${p.lastRun.error}`) : 'running'}`,
    ])));
    return ps;
  }
}
