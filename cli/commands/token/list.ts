import { Flags } from '@oclif/core';
import type { TokenInfo } from '../../../proto/auth.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class TokenList extends GalleonCommand {
  static override description = 'List tokens (ids, users, expiry, revoked); never their secrets.';
  static override examples = ['<%= config.bin %> token list', '<%= config.bin %> token list --user alice'];
  static override flags = { user: Flags.string({ summary: 'Only this user\'s tokens.' }) };

  async run(): Promise<TokenInfo[]> {
    const { flags } = await this.parse(TokenList);
    const all = await (await this.admin(flags)).route<TokenInfo[]>('tokenList', {});
    const tokens = flags.user === undefined ? all : all.filter((t) => t.user === flags.user);
    const { formatTime, table } = await import('../../lib/format.js');
    this.print(table(['ID', 'USER', 'CREATED', 'EXPIRES', 'REVOKED'], tokens.map((t) => [t.id, t.user, formatTime(t.createdAtMs), t.expiresAtMs === null ? 'never' : formatTime(t.expiresAtMs), t.revoked ? 'yes' : 'no'])));
    return tokens;
  }
}
