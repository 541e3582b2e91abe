import type { DataNode } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class NodeList extends GalleonCommand {
  static override description = 'List the data nodes registered with the cluster.';
  static override examples = ['<%= config.bin %> node list'];

  async run(): Promise<DataNode[]> {
    const { flags } = await this.parse(NodeList);
    const nodes = await (await this.admin(flags)).route<DataNode[]>('nodeList', {});
    const { dataNodeTable } = await import('../../lib/views.js');
    this.print(dataNodeTable(nodes));
    return nodes;
  }
}
