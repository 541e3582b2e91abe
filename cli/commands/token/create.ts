import { Flags } from '@oclif/core';
import type { TokenInfo } from '../../../proto/auth.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';

/** `--ttl` units: seconds, minutes, hours, days. */
const ttlUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

export function parseTtl(raw: string): number {
  const m = /^(\d{1,9})([smhd])$/.exec(raw.trim());
  if (m === null) throw usageError(`--ttl ${JSON.stringify(raw)} is not a duration`, 'use a number and a unit: 30m, 12h, 90d');
  return Number(m[1]) * (ttlUnits[m[2] ?? 's'] ?? 1);
}

export default class TokenCreate extends GalleonCommand {
  static override summary = 'Make a token for a user; it is shown once (the cluster keeps only its SHA-256).';
  static override examples = ['<%= config.bin %> token create --user alice', '<%= config.bin %> token create --user ci --ttl 12h --json'];
  static override flags = {
    user: Flags.string({ summary: 'The user the token authenticates as.', required: true }),
    ttl: Flags.string({ summary: 'Lifetime (30m, 12h, 90d); without it the token lives until revoked.' }),
  };

  async run(): Promise<TokenInfo & { token: string }> {
    const { flags } = await this.parse(TokenCreate);
    const ttlSec = flags.ttl === undefined ? undefined : parseTtl(flags.ttl);
    const made = await (await this.admin(flags)).route<TokenInfo & { token: string }>('tokenCreate', {}, { user: flags.user, ...(ttlSec === undefined ? {} : { ttlSec }) });
    this.print(`${made.token}\nToken ${made.id} for ${made.user}${made.expiresAtMs === null ? '' : `, expires ${new Date(made.expiresAtMs).toISOString()}`}. It is not shown again: use it with --token or GALLEON_TOKEN.`);
    return made;
  }
}
