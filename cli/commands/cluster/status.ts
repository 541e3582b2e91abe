import type { ClusterStatus } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class ClusterStatusCommand extends GalleonCommand {
  static override description = 'Show the cluster: leader, term, indexes, members and data nodes.';
  static override examples = ['<%= config.bin %> cluster status', '<%= config.bin %> cluster status --json'];

  async run(): Promise<ClusterStatus> {
    const { flags } = await this.parse(ClusterStatusCommand);
    const status = await (await this.admin(flags)).route<ClusterStatus>('clusterStatus', {});
    const { clusterSummary, memberTable } = await import('../../lib/views.js');
    this.print(`${clusterSummary(status)}\n\n${memberTable(status.members)}`);
    return status;
  }
}
