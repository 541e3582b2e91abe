/**
 * A daemon's TLS identity as it changes while the daemon runs (issue #12): `galleon cert rotate`
 * writes a new certificate and key into the node's TLS folder, `galleon cert revoke` writes the
 * CA's list of revoked serials (`revoked.json`) beside them, and the daemon's folder watcher
 * (cli/lib/tls-watch.ts) hands both to `update`. Everything built from a `TlsMaterial` that
 * carries a `LiveTls` (proto/tls.ts) reads it at the moment it needs it:
 *
 *  - gRPC channels get it as a grpc-js `CertificateProvider`, so the next connection (and every
 *    reconnection) uses the new certificate;
 *  - HTTPS servers and the gRPC port's TLS listener (grpc-tls.ts) swap their secure context
 *    (`setSecureContext`) on each change;
 *  - undici connectors build their TLS options again when the generation moves on;
 *  - every port checks the peer certificate's serial against `isRevoked` per request (HTTP), per
 *    call (metadata API) and per frame (Raft), so a revoked certificate is refused on connections
 *    opened before the revocation too.
 *
 * Pure bookkeeping: no clock, no I/O; the watcher owns the files and their polling.
 */
import type { PeerCertificate } from 'node:tls';

export interface LiveIdentity { ca: Buffer; cert: Buffer; key: Buffer }

type CaListener = (u: { caCertificate: Buffer } | null) => void;
type IdentityListener = (u: { certificate: Buffer; privateKey: Buffer } | null) => void;
export type LiveChange = { identity: boolean; revoked: boolean };

/**
 * Serials compared as numbers: lower-case hex without separators or leading zeros (OpenSSL
 * prints `0A…` as `A…`, issued.json keeps the 16 bytes as written).
 */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[^0-9a-fA-F]/g, '').toLowerCase().replace(/^0+/, '');
  return hex === '' ? '0' : hex;
}

export class LiveTls {
  private current: LiveIdentity;
  private revoked: ReadonlySet<string> = new Set();
  /** Moves on with every change of the identity (undici connectors compare it). */
  generation = 0;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly changeListeners = new Set<(c: LiveChange) => void>();

  constructor(initial: LiveIdentity, revokedSerials: readonly string[] = []) {
    this.current = initial;
    this.revoked = new Set(revokedSerials.map(normalizeSerial));
  }

  get identity(): LiveIdentity {
    return this.current;
  }

  get revokedCount(): number {
    return this.revoked.size;
  }

  /** Takes a new identity and revocation list; listeners hear only what changed. */
  update(next: LiveIdentity, revokedSerials: readonly string[]): LiveChange {
    const identity = !next.cert.equals(this.current.cert) || !next.key.equals(this.current.key) || !next.ca.equals(this.current.ca);
    const list = new Set(revokedSerials.map(normalizeSerial));
    const revoked = list.size !== this.revoked.size || [...list].some((s) => !this.revoked.has(s));
    if (identity) {
      this.current = next;
      this.generation += 1;
      for (const l of this.caListeners) l({ caCertificate: next.ca });
      for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    }
    if (revoked) this.revoked = list;
    const change = { identity, revoked };
    if (identity || revoked) for (const l of this.changeListeners) l(change);
    return change;
  }

  isRevoked(cert: Pick<PeerCertificate, 'serialNumber'> | null | undefined): boolean {
    if (cert === null || cert === undefined || typeof cert.serialNumber !== 'string' || this.revoked.size === 0) return false;
    return this.revoked.has(normalizeSerial(cert.serialNumber));
  }

  onChange(listener: (c: LiveChange) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  // grpc-js CertificateProvider: a listener hears the current value right after it is added (not
  // during the call: grpc-js's server credentials register their own watcher only after adding
  // the listener, and would miss a synchronous first value), then every change.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => { if (this.caListeners.has(listener)) listener({ caCertificate: this.current.ca }); });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => { if (this.identityListeners.has(listener)) listener({ certificate: this.current.cert, privateKey: this.current.key }); });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}
