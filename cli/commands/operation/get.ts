import { Args } from '@oclif/core';
import type { OperationView } from '../../daemon/operations.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class OperationGet extends GalleonCommand {
  static override description = 'Show where a background operation of this daemon is (the freeing after a snapshot delete or a volume restore): phase, done/total, bytes, state.';
  static override examples = ['<%= config.bin %> operation get op-m1x2y3-1', '<%= config.bin %> operation get op-m1x2y3-1 --json'];
  static override args = { id: Args.string({ description: 'Operation id (printed by snapshot delete and volume restore).', required: true }) };

  async run(): Promise<OperationView> {
    const { args, flags } = await this.parse(OperationGet);
    const op = await (await this.admin(flags)).route<OperationView>('operationGet', { id: args.id });
    const { operationDetails } = await import('../../lib/operation-views.js');
    this.print(operationDetails(op, Date.now()));
    return op;
  }
}
