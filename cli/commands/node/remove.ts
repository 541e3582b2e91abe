import { Args } from '@oclif/core';
import type { DataNodeRemoval } from '../../../proto/metadata-types.js';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';

export default class NodeRemove extends GalleonCommand {
  static override summary = 'Remove a departed data node (marked down) from the cluster.';
  static override description = [
    'Remove a data node that left for good: it must be marked down (its daemon stopped for longer than --data-node-down-after-ms).',
    'Its placement groups fail over as when it went down (another in-sync replica becomes primary, a replacement is added) and it leaves the node list.',
    'Refused while it is up, and while it holds the only in-sync copy of any placement group (start it again so its data is copied first).',
    'A removed node that starts again registers as a new, empty data node.',
  ].join('\n');

  static override examples = ['<%= config.bin %> node remove node3', '<%= config.bin %> node remove node3 --yes'];
  static override flags = { yes: yesFlag };
  static override args = { node: Args.string({ description: 'Data node id (see `galleon node list`).', required: true }) };

  async run(): Promise<DataNodeRemoval> {
    const { args, flags } = await this.parse(NodeRemove);
    await this.confirm(`remove data node ${args.node}`, `Remove data node ${args.node} from the cluster?`, flags.yes);
    const removal = await (await this.admin(flags)).route<DataNodeRemoval>('nodeRemove', { id: args.node });
    this.print(`Data node ${removal.node.id} removed (${removal.changed.length} placement group(s) changed).`);
    return removal;
  }
}
