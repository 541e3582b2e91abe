import { Flags } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import type { LeaveResult } from '../../daemon/types.js';

export default class ClusterLeave extends GalleonCommand {
  static override daemonScoped = true;
  static override summary = 'Leave the cluster (handing leadership over first) and stop the daemon.';
  static override description = [
    'Remove the daemon\'s node from the cluster and stop it.',
    'A leader first hands leadership to another voter. With --force the node stops even when the quorum cannot confirm the removal.',
  ].join('\n');
  static override examples = ['<%= config.bin %> cluster leave', '<%= config.bin %> cluster leave --force'];
  static override flags = { force: Flags.boolean({ summary: 'Stop the node even if the cluster cannot remove it cleanly.', default: false }) };

  async run(): Promise<LeaveResult> {
    const { flags } = await this.parse(ClusterLeave);
    const result = await (await this.admin(flags)).route<LeaveResult>('clusterLeave', {}, { force: flags.force }, 60_000);
    const handover = result.transferredLeadershipTo === null ? '' : ` after handing leadership to ${result.transferredLeadershipTo}`;
    this.print(result.removed
      ? `Node ${result.nodeId} left the cluster${handover}; its daemon is stopping.`
      : `Node ${result.nodeId} stopped without a confirmed removal (--force); remove it from a running member with \`galleon cluster leave\` on that node or re-add it later.`);
    return result;
  }
}
