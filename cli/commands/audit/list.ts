import { Flags } from '@oclif/core';
import type { AuditEvent } from '../../../proto/auth.js';
import type { ClusterStatus } from '../../../proto/metadata-types.js';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import { parseTtl } from '../token/create.js';

/** `--since` is an ISO time or a duration back from now (30m, 12h, 7d). */
export function parseSince(raw: string, nowMs: number): number {
  if (/^\d+[smhd]$/.test(raw.trim())) return nowMs - parseTtl(raw) * 1000;
  const t = Date.parse(raw);
  if (Number.isNaN(t)) throw usageError(`--since ${JSON.stringify(raw)} is neither a time nor a duration`, 'e.g. --since 1h or --since 2026-12-06T10:00:00Z');
  return t;
}

export default class AuditList extends GalleonCommand {
  static override summary = 'Audit events (every mutating call of a user, every refused call) of the cluster\'s nodes, oldest first.';
  static override description = [
    'Each node keeps the events of the requests it served (admin endpoint, metadata API, block port) in <storage>/audit/audit.log',
    '(append-only, at most 16 MiB: 4 files of 4 MiB). This command gathers them from the daemon it talks to and from every',
    'metadata member\'s admin address (cluster status); a data-only node\'s own are read with --daemon-address pointing at it.',
  ].join('\n');
  static override examples = ['<%= config.bin %> audit list --since 1h', '<%= config.bin %> audit list --user alice --json'];
  static override flags = {
    since: Flags.string({ summary: 'Only events from this time on (ISO time, or a duration back from now: 30m, 12h, 7d).' }),
    user: Flags.string({ summary: 'Only this user\'s events.' }),
  };

  async run(): Promise<AuditEvent[]> {
    const { flags } = await this.parse(AuditList);
    const query = {
      ...(flags.since === undefined ? {} : { sinceMs: parseSince(flags.since, Date.now()) }), ...(flags.user === undefined ? {} : { user: flags.user }),
    };
    const client = await this.admin(flags);
    const mine = await client.route<AuditEvent[]>('auditList', {}, query);
    const status = await client.route<ClusterStatus>('clusterStatus', {});
    const [{ AdminClient }, { resolveToken }] = await Promise.all([import('../../lib/admin-client.js'), import('../../lib/token-source.js')]);
    const token = await resolveToken(flags.token, flags.dir);
    const others = await Promise.all(status.members.filter((m) => m.adminAddress !== null).map(async (m) => {
      try {
        return await new AdminClient(m.adminAddress ?? '', token === undefined ? {} : { token }).route<AuditEvent[]>('auditList', {}, query);
      } catch (err) {
        process.stderr.write(`Note: no audit events from ${m.id} at ${m.adminAddress ?? '?'} (${(err as Error).message})\n`);
        return [];
      }
    }));
    const byId = new Map<string, AuditEvent>();
    for (const e of [...mine, ...others.flat()]) byId.set(e.id, e);
    const events = [...byId.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
    const { table } = await import('../../lib/format.js');
    this.print(table(['TIME', 'NODE', 'USER', 'TENANT', 'VERB', 'OBJECT', 'OUTCOME', 'SOURCE'],
      events.map((e) => [e.time, e.node, e.user ?? '-', e.tenant ?? '-', e.verb, e.object ?? '-', e.code === null ? e.outcome : `${e.outcome} (${e.code})`, e.source])));
    return events;
  }
}
