import { Flags } from '@oclif/core';
import { GalleonCommand } from '../lib/base-command.js';
import type { DownResult } from '../local/cluster.js';
import { markerFileName } from '../local/purge.js';

export default class Down extends GalleonCommand {
  static override description = 'Stop the local cluster started by `galleon up` (SIGTERM, then SIGKILL after 10 s); --purge deletes what `up` made there, and the folder when nothing else is in it.';
  static override examples = ['<%= config.bin %> down', '<%= config.bin %> down --purge', '<%= config.bin %> down --dir /tmp/galleon'];
  static override flags = {
    dir: Flags.string({ summary: 'Folder given to `galleon up`.', default: './.galleon' }),
    purge: Flags.boolean({ summary: 'Also delete what `galleon up` made there (node storage, logs, cluster.json) and the folder if nothing else is in it.', default: false }),
  };

  async run(): Promise<DownResult> {
    const { flags } = await this.parse(Down);
    const { clusterDown } = await import('../local/cluster.js');
    const result = await clusterDown(flags.dir, flags.purge);
    const stopped = result.stopped.filter((s) => s.signal !== null);
    const lines = result.stopped.length === 0
      ? [`No local cluster in ${result.dir}.`]
      : [`Stopped ${stopped.length} of ${result.stopped.length} nodes${stopped.length < result.stopped.length ? ' (the others were not running)' : ''}.`,
        ...stopped.map((s) => `  ${s.id} (pid ${s.pid})${s.signal === 'SIGKILL' ? ' killed after the grace period' : ''}`)];
    if (result.purged) lines.push(`Removed ${result.dir}.`);
    else if (result.removed.length > 0) {
      lines.push(`Removed the cluster's files (${result.removed.join(', ')}); kept ${result.dir}${keptWhy(result.kept)}.`);
    }
    else if (flags.purge) lines.push(`Nothing removed: ${result.dir} holds no cluster made by \`galleon up\`.`);
    this.print(lines.join('\n'));
    return result;
  }
}

/** Why the folder stayed: what in it galleon did not make (its own marker stays with them, on purpose). */
function keptWhy(kept: readonly string[]): string {
  const foreign = kept.filter((e) => e !== markerFileName);
  if (foreign.length === 0) return ' (galleon up did not create it)';
  const marker = foreign.length < kept.length ? ` (its marker ${markerFileName} stays, so that a later purge still knows the folder)` : '';
  return `, which holds files galleon did not create: ${foreign.join(', ')}${marker}`;
}
