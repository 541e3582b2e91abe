import type { Member } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class ClusterPeers extends GalleonCommand {
  static override description = 'List the members of the metadata quorum (voters and learners).';
  static override examples = ['<%= config.bin %> cluster peers'];

  async run(): Promise<Member[]> {
    const { flags } = await this.parse(ClusterPeers);
    const members = await (await this.admin(flags)).route<Member[]>('clusterPeers', {});
    const { memberTable } = await import('../../lib/views.js');
    this.print(memberTable(members));
    return members;
  }
}
