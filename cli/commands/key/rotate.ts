import type { KeyRotateResult } from '../../daemon/keys.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { GalleonCommand } from '../../lib/base-command.js';

export default class KeyRotate extends GalleonCommand {
  static override description = 'Start a new version of the key-encryption key and re-wrap every encrypted volume\'s data key under it. Blocks are not rewritten: the data keys stay the same.';
  static override examples = ['<%= config.bin %> key rotate', '<%= config.bin %> key rotate --json'];

  async run(): Promise<KeyRotateResult> {
    const { flags } = await this.parse(KeyRotate);
    const r = await (await this.admin(flags)).route<KeyRotateResult>('keyRotate', {});
    const lines = [`Key rotated: ${r.provider} ${r.keyId}; ${r.rewrapped.length} data key(s) re-wrapped, ${r.failed.length} failed.`];
    for (const f of r.failed) lines.push(`  ${f.volume}: ${f.error}`);
    this.print(lines.join('\n'));
    if (r.failed.length > 0) {
      throw new GalleonError(ErrorCode.KEY_UNAVAILABLE, `${r.failed.length} data key(s) were not re-wrapped (${r.failed.map((f) => f.volume).join(', ')})`, {
        hint: 'fix the cause printed above and run galleon key rotate again; keys not re-wrapped stay usable under the previous key version',
      });
    }
    return r;
  }
}
