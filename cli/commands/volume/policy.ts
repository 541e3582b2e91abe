import { Args, Flags } from '@oclif/core';
import type { Volume } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';

export default class VolumePolicy extends GalleonCommand {
  static override summary = 'Set who may read or write a volume\'s blocks and mount it (replaces its access policy).';
  static override description = [
    'Each --allow is SUBJECT=ro|rw, SUBJECT being user:NAME or role:ROLE. A user\'s own entry wins over its role\'s; a user listed',
    'in neither gets no access. Admins keep read-write. Without any --allow the policy is removed: access by role again',
    '(viewer read-only, operator and admin read-write). Enforced on block reads and writes (admin endpoint and block port) and on mounts.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> volume policy db --allow user:alice=rw --allow role:viewer=ro',
    '<%= config.bin %> volume policy db   # remove the policy',
  ];
  static override args = { volume: Args.string({ description: 'Volume name or id.', required: true }) };
  static override flags = { allow: Flags.string({ summary: 'SUBJECT=ro|rw (repeatable).', multiple: true }) };

  async run(): Promise<Volume> {
    const { args, flags } = await this.parse(VolumePolicy);
    const entries = (flags.allow ?? []).map((a) => {
      const m = /^((?:user|role):[^=]+)=(ro|rw)$/.exec(a);
      if (m === null) throw usageError(`--allow ${JSON.stringify(a)} is not SUBJECT=ro|rw`, 'e.g. --allow user:alice=rw or --allow role:viewer=ro');
      return { subject: m[1] ?? '', access: m[2] ?? '' };
    });
    const vol = await (await this.admin(flags)).route<Volume>('volumePolicy', { ref: args.volume }, { entries });
    this.print(entries.length === 0 ? `Volume ${vol.name}: no policy (access by role).` : `Volume ${vol.name}: ${entries.map((e) => `${e.subject}=${e.access}`).join(', ')}.`);
    return vol;
  }
}
