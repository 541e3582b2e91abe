import { Args } from '@oclif/core';
import type { Member } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { formatHostPort, parseHostPort } from '../../lib/address.js';

export default class ClusterJoin extends GalleonCommand {
  static override daemonScoped = true;
  static override summary = 'Join the cluster of a running member (a fresh single-node daemon only).';
  static override description = [
    'Make the daemon join the cluster reachable at ADDRESS (a member\'s --bind-address).',
    'Only a daemon that runs a fresh one-member cluster of its own (no volumes, no classes of its own) can join:',
    'it drops that cluster and joins as a learner, and is promoted to voter while the quorum is below its target size.',
  ].join('\n');
  static override examples = ['<%= config.bin %> cluster join 10.0.1.10:8080 --daemon-address 10.0.1.11:8090'];
  static override args = { address: Args.string({ description: 'Raft/metadata address of a running member.', required: true }) };

  async run(): Promise<Member[]> {
    const { args, flags } = await this.parse(ClusterJoin);
    const address = formatHostPort(parseHostPort(args.address, 'cluster address'));
    const members = await (await this.admin(flags)).route<Member[]>('clusterJoin', {}, { address }, 60_000);
    const { memberTable } = await import('../../lib/views.js');
    this.print(`Joined the cluster at ${address}.\n${memberTable(members)}`);
    return members;
  }
}
