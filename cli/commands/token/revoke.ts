import { Args } from '@oclif/core';
import type { TokenInfo } from '../../../proto/auth.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class TokenRevoke extends GalleonCommand {
  static override description = 'Revoke a token: every node refuses it within 5 s (the bound of their token caches).';
  static override examples = ['<%= config.bin %> token revoke 5c1e…'];
  static override args = { id: Args.string({ description: 'Token id (galleon token list).', required: true }) };

  async run(): Promise<TokenInfo> {
    const { args, flags } = await this.parse(TokenRevoke);
    const t = await (await this.admin(flags)).route<TokenInfo>('tokenRevoke', { id: args.id });
    this.print(`Token ${t.id} of ${t.user} revoked.`);
    return t;
  }
}
