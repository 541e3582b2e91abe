/**
 * The node's audit log (issue #12): one JSON line per event, appended to
 * `<storage>/audit/audit.log` by the edges of this node (admin endpoint, metadata API, block port).
 * Append-only: lines are only ever added; a full file is renamed to `audit.log.1` (older ones
 * shift up to `.N`) and the oldest beyond `auditMaxFiles` is deleted — the retention bound is
 * bytes, `auditMaxFileBytes` × `auditMaxFiles` (16 MiB per node by default).
 *
 * Writes are synchronous appends: an event is on its way to disk before the answer it audits
 * goes out, and events are few (a user's mutating calls and refused calls; the cluster's own
 * traffic is not audited). The file is 0600: events name users and addresses.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from '../../proto/auth.js';

export const auditDirName = 'audit';
export const auditFileName = 'audit.log';
/** A file is rotated once it would pass this size. */
export const auditMaxFileBytes = 4 * 1024 * 1024;
/** Files kept (the live one and its rotations): the retention bound with auditMaxFileBytes. */
export const auditMaxFiles = 4;
/** Events one `audit list` answer carries at most (the newest). */
export const maxAuditListEvents = 10_000;

export interface AuditQuery {
  sinceMs?: number;
  user?: string;
  limit?: number;
}

export class AuditLog implements AuditSink {
  private readonly dir: string;
  private sizeBytes: number;

  constructor(storagePath: string, private readonly node: string, private readonly logger: Logger, private readonly maxFileBytes = auditMaxFileBytes) {
    this.dir = join(storagePath, auditDirName);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.sizeBytes = existsSync(this.file(0)) ? statSync(this.file(0)).size : 0;
  }

  private file(n: number): string {
    return join(this.dir, n === 0 ? auditFileName : `${auditFileName}.${n}`);
  }

  record(event: Omit<AuditEvent, 'time' | 'id' | 'node'>): void {
    const full: AuditEvent = { time: new Date().toISOString(), id: randomUUID(), ...event, node: this.node };
    const line = `${JSON.stringify(full)}\n`;
    try {
      if (this.sizeBytes > 0 && this.sizeBytes + line.length > this.maxFileBytes) this.rotate();
      appendFileSync(this.file(0), line, { mode: 0o600 });
      this.sizeBytes += Buffer.byteLength(line);
    } catch (err) {
      // A full or failed disk must not turn every call into an error; it is logged loudly.
      this.logger.error({ err, event: full }, 'audit event not written');
    }
  }

  private rotate(): void {
    rmSync(this.file(auditMaxFiles - 1), { force: true });
    for (let n = auditMaxFiles - 2; n >= 0; n--) if (existsSync(this.file(n))) renameSync(this.file(n), this.file(n + 1));
    this.sizeBytes = 0;
  }

  /** Events oldest first, filtered; at most `limit` (the newest ones). */
  list(q: AuditQuery = {}): AuditEvent[] {
    const out: AuditEvent[] = [];
    for (let n = auditMaxFiles - 1; n >= 0; n--) {
      if (!existsSync(this.file(n))) continue;
      for (const line of readFileSync(this.file(n), 'utf8').split('\n')) {
        if (line === '') continue;
        let e: AuditEvent;
        try { e = JSON.parse(line) as AuditEvent; } catch { continue; }
        if (q.sinceMs !== undefined && Date.parse(e.time) < q.sinceMs) continue;
        if (q.user !== undefined && e.user !== q.user) continue;
        out.push(e);
      }
    }
    const limit = Math.min(q.limit ?? maxAuditListEvents, maxAuditListEvents);
    return out.slice(Math.max(0, out.length - limit));
  }
}
