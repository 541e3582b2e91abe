/**
 * A running daemon's TLS folder, watched (issue #12): every `tlsReloadIntervalMs` (and at once on
 * SIGHUP) the daemon reads `ca.crt`, `tls.crt`, `tls.key` and `revoked.json` again and hands what
 * changed to its `LiveTls` (proto/tls-live.ts). So `galleon cert rotate` takes effect for new
 * connections and `galleon cert revoke` on every port within `tlsReloadIntervalMs` plus one read,
 * without a restart.
 *
 * Polling, not fs.watch: the files are replaced by rename (pki.ts), which inotify reports on the
 * folder under names that vary by platform, and a read of four small files a second costs nothing.
 * A new certificate that fails `checkTlsMaterial` (not signed by the CA, key mismatch, expired, not
 * a node certificate) or names another node is logged and ignored: the daemon keeps the identity
 * it has. A `revoked.json` that does not parse is logged and the last good list stays.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { LiveTls } from '../../proto/tls-live.js';
import { tlsFileNames, type TlsMaterial } from '../../proto/tls.js';
import { certNodeId, checkTlsMaterial, type TlsSummary } from './tls.js';

/** How often a daemon re-reads its TLS folder: the bound on a rotation or revocation reaching its ports. */
export const tlsReloadIntervalMs = 1_000;
/** The CA's revocation list, copied into each TLS folder by `galleon cert revoke`. */
export const revokedFileName = 'revoked.json';
/** A revocation list larger than this is refused (a CA revokes a handful of certificates). */
export const maxRevokedBytes = 1024 * 1024;

export interface RevokedRecord { serial: string; name: string; kind: string; revokedAt: string }

/** The serials in a TLS (or CA) folder's `revoked.json`; none when there is no file. */
export async function readRevoked(dir: string): Promise<RevokedRecord[]> {
  let text: string;
  try {
    text = await readFile(join(dir, revokedFileName), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  if (text.length > maxRevokedBytes) throw new Error(`${revokedFileName} is larger than ${maxRevokedBytes} bytes`);
  const parsed = JSON.parse(text) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((r) => typeof (r as { serial?: unknown }).serial === 'string')) {
    throw new Error(`${revokedFileName} is not a list of {serial, ...}`);
  }
  return parsed as RevokedRecord[];
}

export class TlsWatcher {
  readonly live: LiveTls;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private revokedSerials: string[];
  /** The last certificate refused, so a bad file is logged once, not every second. */
  private refused: { cert: Buffer; key: Buffer } | null = null;

  constructor(
    private readonly dir: string,
    material: TlsMaterial,
    private summary: TlsSummary,
    private readonly nodeId: string,
    private readonly logger: Logger,
    revoked: readonly RevokedRecord[],
  ) {
    this.revokedSerials = revoked.map((r) => r.serial);
    this.live = new LiveTls({ ca: material.ca, cert: material.cert, key: material.key }, this.revokedSerials);
    material.live = this.live;
  }

  /** The certificate in force (for `daemon status`). */
  get current(): TlsSummary {
    return this.summary;
  }

  start(): void {
    this.timer ??= setInterval(() => { void this.check(); }, tlsReloadIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look at the folder (overlapping calls share one read). */
  check(): Promise<void> {
    this.running ??= this.read().finally(() => { this.running = null; });
    return this.running;
  }

  private async read(): Promise<void> {
    let ca: Buffer; let cert: Buffer; let key: Buffer;
    try {
      [ca, cert, key] = await Promise.all([tlsFileNames.ca, tlsFileNames.cert, tlsFileNames.key].map((f) => readFile(join(this.dir, f)))) as [Buffer, Buffer, Buffer];
    } catch (err) {
      // Mid-rename or removed: the next look sees the whole set.
      this.logger.debug({ err: (err as Error).message }, 'TLS folder not readable now; keeping the current certificate');
      return;
    }
    const identity = this.acceptIdentity({ ca, cert, key });
    let revoked: string[] | null = null;
    try {
      revoked = (await readRevoked(this.dir)).map((r) => r.serial);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, dir: this.dir }, 'revocation list not read; the last good one stays');
    }
    if (revoked !== null) this.revokedSerials = revoked;
    const change = this.live.update(identity ?? this.live.identity, this.revokedSerials);
    if (change.identity) this.logger.info({ serial: this.summary.serial, notAfter: this.summary.notAfter }, 'TLS: new certificate in force for new connections');
    if (change.revoked) this.logger.info({ revoked: this.live.revokedCount }, 'TLS: revocation list changed; revoked certificates are refused on every port');
  }

  private acceptIdentity(m: { ca: Buffer; cert: Buffer; key: Buffer }): { ca: Buffer; cert: Buffer; key: Buffer } | null {
    const now = this.live.identity;
    if (m.cert.equals(now.cert) && m.key.equals(now.key) && m.ca.equals(now.ca)) return null;
    if (this.refused !== null && this.refused.cert.equals(m.cert) && this.refused.key.equals(m.key)) return null;
    try {
      const summary = checkTlsMaterial(m, this.dir, 'node');
      const cn = certNodeId(summary);
      if (cn !== this.nodeId) throw new Error(`the new certificate names node ${cn ?? '?'}, this is node ${this.nodeId}`);
      this.summary = summary;
      return m;
    } catch (err) {
      this.refused = { cert: m.cert, key: m.key };
      this.logger.warn({ err: (err as Error).message, dir: this.dir }, 'TLS: new certificate refused; the current one stays');
      return null;
    }
  }
}
