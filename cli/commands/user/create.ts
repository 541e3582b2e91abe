import { Args, Flags } from '@oclif/core';
import type { User } from '../../../proto/auth.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class UserCreate extends GalleonCommand {
  static override summary = 'Create a user with a role (admin, operator, viewer) and, optionally, a tenant.';
  static override description = [
    'Roles: viewer reads; operator also creates and changes volumes, classes and blocks; admin also manages users, tokens, policies and the cluster.',
    'A user with a tenant sees only its tenant\'s volumes and classes (and the shared classes). An admin of a tenant creates users of that tenant only.',
    'Give the user a token with `galleon token create --user NAME`.',
  ].join('\n');
  static override examples = ['<%= config.bin %> user create alice --role operator', '<%= config.bin %> user create bob --role viewer --tenant acme'];
  static override args = { name: Args.string({ description: 'User name (letters, digits, dot, dash; at most 63).', required: true }) };
  static override flags = {
    role: Flags.string({ summary: 'Role of the user.', options: ['admin', 'operator', 'viewer'], required: true }),
    tenant: Flags.string({ summary: 'Tenant the user belongs to (none: sees every tenant).' }),
  };

  async run(): Promise<User> {
    const { args, flags } = await this.parse(UserCreate);
    const user = await (await this.admin(flags)).route<User>('userCreate', {}, { name: args.name, role: flags.role, ...(flags.tenant === undefined ? {} : { tenant: flags.tenant }) });
    this.print(`User ${user.name} created (role ${user.role}${user.tenant === null ? '' : `, tenant ${user.tenant}`}). Give it a token: galleon token create --user ${user.name}`);
    return user;
  }
}
