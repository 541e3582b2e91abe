import type { User } from '../../../proto/auth.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class UserList extends GalleonCommand {
  static override description = 'List users (an admin of a tenant sees its tenant\'s).';
  static override examples = ['<%= config.bin %> user list', '<%= config.bin %> user list --json'];

  async run(): Promise<User[]> {
    const { flags } = await this.parse(UserList);
    const users = await (await this.admin(flags)).route<User[]>('userList', {});
    const { formatTime, table } = await import('../../lib/format.js');
    this.print(table(['NAME', 'ROLE', 'TENANT', 'CREATED'], users.map((u) => [u.name, u.role, u.tenant ?? '-', formatTime(u.createdAtMs)])));
    return users;
  }
}
