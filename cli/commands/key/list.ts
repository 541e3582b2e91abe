import type { KeyListEntry } from '../../daemon/keys.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { formatTime, table } from '../../lib/format.js';

export default class KeyList extends GalleonCommand {
  static override description = 'List the wrapped data keys of encrypted volumes: provider, key-encryption key, writers, last wrap.';
  static override examples = ['<%= config.bin %> key list'];

  async run(): Promise<KeyListEntry[]> {
    const { flags } = await this.parse(KeyList);
    const keys = await (await this.admin(flags)).route<KeyListEntry[]>('keyList', {});
    this.print(table(['VOLUME', 'PROVIDER', 'KEY', 'WRITERS', 'WRAPPED'], keys.map((k) => [k.volume, k.provider, k.keyId, k.writers, formatTime(k.wrappedAtMs)])));
    return keys;
  }
}
