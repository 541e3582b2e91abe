/**
 * Mutual TLS on every connection of a cluster: the credentials each kind of endpoint needs, made
 * from one `TlsMaterial` (the cluster CA, this process's certificate and key, PEM). Every server
 * and client construction site takes `tls?: TlsMaterial | null` and asks this file for its
 * credentials, so the TLS plumbing lives here and the sites keep one small hook each:
 *
 *  - gRPC (Raft transport, InstallSnapshot, metadata API): `listenGrpc` (grpc-tls.ts: our own TLS
 *    listener, client certificate checked against the CA, refusals audited) and `grpcChannelCredentials`;
 *  - HTTP (block traffic, replication, admin endpoint): `createHttpEdgeServer` (node:https with
 *    `requestCert`, every unverified peer cut and audited) and `undiciConnectOptions` / `httpUrl` for undici.
 *
 * `null` (or absent) means plaintext: only the daemon's explicit `--insecure-plaintext` (or
 * `[security] tls = false`) and test harnesses that are not about TLS pass it. A TLS server
 * cuts a peer without a certificate, with one from another CA or an expired one right after the
 * handshake, before any request is read, and audits it (`auditUnverifiedPeer`). A plaintext HTTP request to a TLS port gets one 400 with the stable code
 * TLS_REQUIRED (proto/errors.ts) instead of a silently dropped connection, so the CLI can say
 * what to do.
 *
 * Who is who: a certificate's subject says `OU=galleon-node` (a cluster node) or
 * `OU=galleon-client` (an operator or program, `galleon cert issue --client`); `peerKindOf`
 * reads it. Raft accepts only nodes (metadata/raft/node/transport.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { buildConnector } from 'undici';
import { ErrorCode, GalleonError, invariant } from './errors.js';
import type { AuditSink } from './auth.js';
import type { LiveTls } from './tls-live.js';

export interface TlsMaterial {
  /** The cluster CA's certificate (PEM): the only issuer a peer's certificate may have. */
  ca: Buffer;
  /** This process's certificate (PEM), issued by that CA. */
  cert: Buffer;
  /** Its private key (PEM). */
  key: Buffer;
  /**
   * A daemon's: the identity and revocation list as they change while it runs (tls-live.ts).
   * When present, `ca`/`cert`/`key` above are the ones it started with and every helper here
   * reads the live ones instead.
   */
  live?: LiveTls;
  /**
   * A daemon's audit log: where the refusals that only the certificate decides (a revoked
   * certificate, a node certificate speaking for another node) are recorded, on every port.
   */
  audit?: AuditSink;
}

/** What a refusal by certificate records: the verb (`admin:…`, `block:…`, `metadata:…`, `raft:…`), the object, the source address. */
export interface CertRefusal {
  verb: string;
  object: string | null;
  code: string;
  reason: string;
  source: string;
}

/**
 * Audits a refusal decided by the peer's certificate (no token involved): one event, outcome
 * denied, the certificate's CN as the user (`cert:<CN>`). No audit log (a test harness): nothing.
 */
export function auditCertRefusal(tls: Tls, cert: Pick<PeerCertificate, 'subject'> | null | undefined, r: CertRefusal): void {
  if (tls === null || tls === undefined || tls.audit === undefined) return;
  const cn = cert?.subject.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  tls.audit.record({
    user: typeof name === 'string' ? `cert:${name.slice(0, 64)}` : null, tenant: null, verb: r.verb.slice(0, 80), object: r.object?.slice(0, 128) ?? null,
    outcome: 'denied', code: r.code, reason: r.reason, source: r.source,
  });
}

/** The organizational units `galleon cert` writes into a subject, and what they mean. */
export const nodeOrgUnit = 'galleon-node';
export const clientOrgUnit = 'galleon-client';
export type PeerKind = 'node' | 'client' | 'unknown';

/** A connection that has not sent its first byte in this long is closed (before TLS starts). */
export const firstByteTimeoutMs = 10_000;
/** A TLS handshake that takes longer than this is abandoned (node's default is 120 s). */
export const handshakeTimeoutMs = 10_000;
/** First byte of a TLS record carrying a handshake (RFC 8446 §5.1, ContentType handshake = 22). */
const tlsHandshakeRecordType = 0x16;

export type Tls = TlsMaterial | null | undefined;

/** The files of a TLS folder, as `galleon cert issue` and `galleon up` write them. */
export const tlsFileNames = { ca: 'ca.crt', cert: 'tls.crt', key: 'tls.key' } as const;

/** Reads a TLS folder (the processes' `--tls-dir`); cli/lib/tls.ts adds the operator's error lines. */
export async function readTlsDir(dir: string): Promise<TlsMaterial> {
  const [ca, cert, key] = await Promise.all([tlsFileNames.ca, tlsFileNames.cert, tlsFileNames.key].map((f) => readFile(join(dir, f))));
  return { ca: ca as Buffer, cert: cert as Buffer, key: key as Buffer };
}

export function tlsMode(tls: Tls): 'mutual-tls' | 'plaintext' {
  return tls === null || tls === undefined ? 'plaintext' : 'mutual-tls';
}

export function grpcChannelCredentials(tls: Tls): grpc.ChannelCredentials {
  if (tls === null || tls === undefined) return grpc.credentials.createInsecure();
  if (tls.live !== undefined) return grpc.experimental.createCertificateProviderChannelCredentials(tls.live, tls.live);
  return grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
}

/** `http://address` or `https://address` for undici. */
export function httpUrl(address: string, tls: Tls): string {
  return `${tls === null || tls === undefined ? 'http' : 'https'}://${address}`;
}

/** undici `connect` options (Pool, Agent, Client): present our certificate, trust only the CA. */
export function undiciConnectOptions(tls: Tls): { ca: Buffer; cert: Buffer; key: Buffer; rejectUnauthorized: true } | undefined {
  if (tls === null || tls === undefined) return undefined;
  return { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: true };
}

/**
 * undici's `connect` for the pools of a daemon: with a live identity, a connector that builds its
 * TLS options again once the identity changed, so new connections present the rotated
 * certificate (connections already open keep theirs until they close); otherwise the options.
 */
export function undiciConnect(tls: Tls): buildConnector.BuildOptions | buildConnector.connector | undefined {
  if (tls === null || tls === undefined) return undefined;
  const live = tls.live;
  if (live === undefined) return undiciConnectOptions(tls);
  let generation = -1;
  let inner: buildConnector.connector | null = null;
  return (opts, callback) => {
    if (inner === null || generation !== live.generation) {
      const id = live.identity;
      inner = buildConnector({ ca: id.ca, cert: id.cert, key: id.key, rejectUnauthorized: true });
      generation = live.generation;
    }
    return inner(opts, callback);
  };
}

/** The node id a verified node certificate names (its CN), or null for any other certificate. */
export function peerNodeIdOf(cert: Pick<PeerCertificate, 'subject'> | null | undefined): string | null {
  if (peerKindOf(cert) !== 'node') return null;
  const cn = cert?.subject.CN;
  const first = Array.isArray(cn) ? (cn.length === 1 ? cn[0] : undefined) : cn;
  return typeof first === 'string' && first !== '' ? first : null;
}

/** The refusal of a certificate on the revocation list (UNAUTHENTICATED: 401, gRPC UNAUTHENTICATED). */
export function certificateRevoked(serial: string): GalleonError {
  return new GalleonError(ErrorCode.UNAUTHENTICATED, `certificate ${serial.toLowerCase()} is revoked`, {
    hint: 'use a certificate issued after the revocation (`galleon cert issue`, or `galleon cert rotate` for a node)',
  });
}

/** What a verified peer certificate says its holder is (by the OU `galleon cert` wrote). */
export function peerKindOf(cert: Pick<PeerCertificate, 'subject'> | null | undefined): PeerKind {
  const ou = cert?.subject.OU;
  const units = Array.isArray(ou) ? ou : ou === undefined ? [] : [ou];
  if (units.includes(nodeOrgUnit)) return 'node';
  if (units.includes(clientOrgUnit)) return 'client';
  return 'unknown';
}

/**
 * An HTTP server for block traffic or the admin endpoint: node:http when `tls` is absent,
 * otherwise node:https requiring a client certificate from the cluster CA. Same `http.Server`
 * API either way (listen, close, closeIdleConnections...).
 */
export function createHttpEdgeServer(tls: Tls, options: http.ServerOptions, handler: http.RequestListener, edge: 'admin' | 'block' = 'block'): http.Server {
  if (tls === null || tls === undefined) return http.createServer(options, handler);
  const live = tls.live;
  const id = live?.identity ?? tls;
  const server = https.createServer({
    // rejectUnauthorized false: refuseUnauthorizedPeers ends every connection whose certificate
    // failed verification before it carries a request, and audits it (OpenSSL would end it silently).
    ...options, ca: id.ca, cert: id.cert, key: id.key, requestCert: true, rejectUnauthorized: false, handshakeTimeout: handshakeTimeoutMs,
  }, onlyAuthorized(live === undefined ? handler : refuseRevoked(tls, live, handler, edge)));
  refusePlaintextRequests(server);
  refuseUnauthorizedPeers(tls, server, edge);
  live?.onChange((change) => {
    const now = live.identity;
    if (change.identity) server.setSecureContext({ ca: now.ca, cert: now.cert, key: now.key });
    // Idle keep-alive connections reconnect, presenting their holders' current certificates.
    if (change.revoked) server.closeIdleConnections();
  });
  return server;
}

/**
 * A peer whose certificate did not verify (none, one of another CA, an expired one) is cut right
 * after the handshake, before the HTTP layer reads a byte of it, and that is one audit event: no
 * request was read, so the source address and OpenSSL's verdict are all there is. The listener runs
 * first (prepended), so the HTTP server only ever gets verified peers. The gRPC port does the same
 * in its own TLS listener (grpc-tls.ts).
 */
function refuseUnauthorizedPeers(tls: TlsMaterial, server: https.Server, edge: 'admin' | 'block'): void {
  const check = (socket: TLSSocket): void => {
    if (socket.authorized) return;
    auditUnverifiedPeer(tls, socket, edge);
    socket.destroy();
  };
  server.prependListener('secureConnection', check);
  invariant(server.listeners('secureConnection')[0] === check, 'the certificate check runs before the HTTP layer');
}

/** The one audit event of a handshake whose client certificate did not verify (`<edge>:tls-handshake`); the caller cuts the socket. */
export function auditUnverifiedPeer(tls: TlsMaterial, socket: TLSSocket, edge: 'admin' | 'block' | 'metadata'): void {
  invariant(socket.authorized !== true, 'only an unverified peer is audited as a refused handshake');
  const why = Object.keys(socket.getPeerCertificate()).length === 0 ? 'no client certificate' : String(socket.authorizationError ?? 'unverified');
  auditCertRefusal(tls, null, {
    verb: `${edge}:tls-handshake`, object: null, code: ErrorCode.UNAUTHENTICATED, reason: `certificate refused: ${why.slice(0, 120)}`,
    source: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
  });
}

/**
 * Second line behind `refuseUnauthorizedPeers` (the server no longer lets OpenSSL reject): a
 * request on a connection whose certificate did not verify never reaches the handler, whatever
 * the order of the socket's listeners turns out to be.
 */
function onlyAuthorized(handler: http.RequestListener): http.RequestListener {
  return (req, res) => {
    if ((req.socket as TLSSocket).authorized === true) { handler(req, res); return; }
    req.socket.destroy();
  };
}

/** Every request on a connection whose certificate was revoked (even after it opened) gets one 401 and the connection closes. */
function refuseRevoked(tls: TlsMaterial, live: LiveTls, handler: http.RequestListener, edge: 'admin' | 'block'): http.RequestListener {
  // A connection's certificate does not change: read it once per socket, not per request (block traffic).
  const certs = new WeakMap<object, PeerCertificate | null>();
  return (req, res) => {
    let cert = certs.get(req.socket);
    if (cert === undefined) {
      cert = peerCertificateOf(req);
      certs.set(req.socket, cert);
    }
    if (cert === null || !live.isRevoked(cert)) { handler(req, res); return; }
    req.resume();
    const e = certificateRevoked(cert.serialNumber).toJSON();
    const path = (req.url ?? '').split('?')[0]?.split('/').slice(0, 3).join('/') ?? '';
    auditCertRefusal(tls, cert, {
      verb: `${edge}:${req.method ?? ''} ${path}`, object: `certificate ${cert.serialNumber.toLowerCase()}`, code: e.code, reason: 'certificate revoked',
      source: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`,
    });
    // Both shapes the edges answer with: the block port's (the error itself) and the admin endpoint's ({error}).
    const body = JSON.stringify({ ...e, error: e });
    res.writeHead(401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  };
}

/**
 * Puts a sniffer in front of the TLS server's own connection listener: a connection whose first
 * byte opens a TLS handshake goes on to TLS (the byte is put back: TLSSocket reads what the
 * socket buffered), anything else gets one plaintext 400 TLS_REQUIRED and is closed.
 */
function refusePlaintextRequests(server: https.Server): void {
  const tlsListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    socket.setTimeout(firstByteTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.setTimeout(0);
      if (first[0] === tlsHandshakeRecordType) {
        socket.unshift(first);
        for (const l of tlsListeners) l.call(server, socket);
        return;
      }
      const body = JSON.stringify({ error: tlsRequired().toJSON() });
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
}

export function tlsRequired(): GalleonError {
  return new GalleonError(ErrorCode.TLS_REQUIRED, 'this endpoint accepts only mutual TLS with a certificate of the cluster CA', {
    hint: 'give the CLI a client certificate (--tls-dir DIR or GALLEON_TLS_DIR; `galleon cert issue --client NAME` makes one)',
  });
}

/** The verified certificate of the peer of an HTTPS request, or null on plaintext. */
export function peerCertificateOf(req: http.IncomingMessage): PeerCertificate | null {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return null;
  const cert = socket.getPeerCertificate();
  return Object.keys(cert).length === 0 ? null : cert;
}

/**
 * The OpenSSL / node code of a failed TLS handshake (refused certificate, unknown CA, a
 * plaintext server), looked up through `cause` chains; null for any other error.
 */
export function tlsFailureCode(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e !== null && e !== undefined && depth < 4; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (/^ERR_(SSL|TLS)_/.test(code) || certificateErrorCodes.has(code))) return code;
  }
  return null;
}

/** OpenSSL's verification failures, as node reports them on a client socket. */
const certificateErrorCodes = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'EPROTO',
]);
