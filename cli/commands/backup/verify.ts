import { Args, Flags } from '@oclif/core';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { GalleonCommand } from '../../lib/base-command.js';
import type { JobView } from '../../../dataplane/backup/service.js';
import type { VerifyRecord } from '../../../dataplane/backup/catalog.js';

export default class BackupVerify extends GalleonCommand {
  static override description = 'Read a backup\'s stored blocks back and check each against the manifest; names every missing or corrupt block (exit 1).';
  static override examples = ['<%= config.bin %> backup verify bk-0mabc1234ef', '<%= config.bin %> backup verify bk-0mabc1234ef --sample 10'];
  static override flags = { sample: Flags.string({ summary: 'Percent of the blocks to read (a spread sample).', default: '100' }) };
  static override args = { id: Args.string({ description: 'Backup id.', required: true }) };

  async run(): Promise<VerifyRecord> {
    const { args, flags } = await this.parse(BackupVerify);
    const pct = Number(flags.sample);
    if (!Number.isFinite(pct) || pct <= 0 || pct > 100) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `--sample ${flags.sample} is not a percentage`, { hint: 'give a number above 0 and at most 100' });
    const admin = await this.admin(flags);
    const job = await admin.route<JobView>('backupVerify', { id: args.id }, { samplePercent: pct });
    const { followJob, jobMode } = await import('../../lib/backup-views.js');
    const r = (await followJob(admin, job, jobMode(this.jsonEnabled()))).result as VerifyRecord;
    if (!r.ok) {
      const bad = [...r.missing.map((k) => `${k} (missing)`), ...r.corrupt.map((k) => `${k} (corrupt)`)];
      throw new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `backup ${r.id} failed verification: ${bad.length} of ${r.checkedBlocks} blocks bad: ${bad.slice(0, 8).join(', ')}${bad.length > 8 ? ', …' : ''}`,
        { hint: 'restore from another backup, and take a new full backup (galleon backup create --strategy full)', details: { missing: r.missing, corrupt: r.corrupt } });
    }
    this.print(`Backup ${r.id} verified: ${r.checkedBlocks} blocks (${r.samplePercent}% sample) match the manifest.`);
    return r;
  }
}
