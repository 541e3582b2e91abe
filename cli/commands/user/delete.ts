import { Args } from '@oclif/core';
import type { User } from '../../../proto/auth.js';
import { GalleonCommand, yesFlag } from '../../lib/base-command.js';

export default class UserDelete extends GalleonCommand {
  static override description = 'Delete a user and every token it holds (refused at once by every node within 5 s).';
  static override examples = ['<%= config.bin %> user delete alice --yes'];
  static override args = { name: Args.string({ description: 'User name.', required: true }) };
  static override flags = { yes: yesFlag };

  async run(): Promise<User> {
    const { args, flags } = await this.parse(UserDelete);
    await this.confirm(`delete user ${args.name}`, `Delete user ${args.name} and its tokens?`, flags.yes);
    const user = await (await this.admin(flags)).route<User>('userDelete', { name: args.name });
    this.print(`User ${user.name} deleted.`);
    return user;
  }
}
