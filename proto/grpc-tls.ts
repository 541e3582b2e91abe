/**
 * The listener of a metadata member's gRPC port (metadata API, Raft, InstallSnapshot: one port),
 * issue #12. Under TLS the handshake is ours, not grpc-js's: grpc-js hands neither the reason nor
 * the address of a refused handshake to its user, and every refusal must be one audit event.
 *
 * A node:tls server listens (client certificate requested; OpenSSL is told not to reject so that
 * the verdict and the address stay readable), and on each finished handshake:
 *  - a peer whose certificate did not verify against the cluster CA (none, another CA's, an
 *    expired one) is one audit event `<edge>:tls-handshake` and is cut; its socket never reaches
 *    grpc-js, so it can make no call and open no stream;
 *  - a verified peer's socket is handed to grpc-js through its public `createConnectionInjector`
 *    (HTTP/2 over that TLS socket, as grpc-js's own secure server would run it).
 * The gRPC handlers keep a second line: they read the peer through `getAuthContext()`, which grpc-js
 * leaves empty for a socket that is not `authorized` (metadata/service/grpc-server.ts refuses a
 * call without a certificate; Raft refuses any certificate that is not a node's).
 * Plaintext (`tls` null): grpc-js binds the port itself, as before.
 */
import * as grpc from '@grpc/grpc-js';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { auditUnverifiedPeer, handshakeTimeoutMs, type Tls } from './tls.js';

export interface GrpcListener {
  /** The bound port (the one asked for, or the one the system picked for port 0). */
  port: number;
  /** Ends every connection (GOAWAY, then cut after `graceMs`): peers reconnect with their current certificates. */
  drain(graceMs: number): void;
  /** Stops listening and cuts every connection of this port, handshakes in progress included. */
  close(): void;
}

/** `host:port`, `[v6]:port` or `:port` → what `net.Server.listen` takes (no host: every interface). */
export function splitHostPort(address: string): { host: string | undefined; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, Math.max(at, 0)).replace(/^\[(.*)\]$/, '$1');
  const digits = address.slice(at + 1);
  const port = Number(digits);
  if (at < 0 || !/^\d{1,5}$/.test(digits) || port > 65_535) throw new Error(`not a host:port address: ${address}`);
  return { host: host === '' ? undefined : host, port };
}

/** Listens on `address` for `server`: mutual TLS with every refused handshake audited, or plaintext. */
export async function listenGrpc(server: grpc.Server, address: string, tls: Tls, edge: 'metadata' = 'metadata'): Promise<GrpcListener> {
  if (tls === null || tls === undefined) {
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err)));
    });
    const host = splitHostPort(address).host ?? '0.0.0.0';
    return { port, drain: (graceMs) => server.drain(`${host.includes(':') ? `[${host}]` : host}:${port}`, graceMs), close: () => undefined };
  }
  // The HTTP/2 layer runs plaintext over sockets whose TLS is already done (and verified) here.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const id = tls.live?.identity ?? tls;
  const front = createTlsServer({
    ca: id.ca, cert: id.cert, key: id.key, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['h2'], handshakeTimeout: handshakeTimeoutMs,
  });
  // Every connection still open, handshaking or handed over: close() cuts them (grpc-js's forceShutdown ends the sessions anyway).
  const open = new Set<Socket>();
  let closed = false;
  front.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  front.on('secureConnection', (socket: TLSSocket) => {
    // Errors of a TLS socket are the server user's to handle (nodejs/node#35824); the session sees the close.
    socket.on('error', () => socket.destroy());
    if (closed) { socket.destroy(); return; }
    if (socket.authorized !== true) { auditUnverifiedPeer(tls, socket, edge); socket.destroy(); return; }
    injector.injectConnection(socket);
  });
  const unwatch = tls.live?.onChange((change) => {
    const now = tls.live?.identity;
    if (change.identity && now !== undefined) front.setSecureContext({ ca: now.ca, cert: now.cert, key: now.key });
  });
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(port, host, () => { front.off('error', reject); resolve(); });
  });
  const bound = front.address();
  return {
    port: typeof bound === 'object' && bound !== null ? bound.port : port,
    drain: (graceMs) => injector.drain(graceMs),
    close: () => {
      closed = true;
      unwatch?.();
      front.close();
      for (const s of open) s.destroy();
      injector.destroy();
    },
  };
}
