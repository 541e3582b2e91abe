/**
 * The metadata API on gRPC: decodes a CallRequest, runs it through MetadataService, and answers
 * with a JSON result or a serialized GalleonError. Unary `Call` and multiplexed `CallStream`
 * share this path.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError, type SerializedError } from '../../proto/errors.js';
import { serviceConstructor } from '../../proto/grpc-loader.js';
import type { MetadataService } from './api-handler.js';
import type { MetadataGate } from './auth-gate.js';
import { auditCertRefusal, certificateRevoked, peerNodeIdOf, type Tls } from '../../proto/tls.js';
import { bindToNode } from './node-claims.js';
import { isDenial } from '../../proto/auth.js';

type CallContext = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getPeer' | 'getAuthContext'>;

/**
 * One call through the gate (when there is one): authenticated, authorized, bound to the
 * certificate's node (`bind`, after the token: a bad token is UNAUTHENTICATED whatever it asks), its
 * answer filtered.
 */
async function callThrough(svc: MetadataService, req: CallRequestWire, args: unknown, call: CallContext, gate: MetadataGate | undefined, bind: (args: unknown) => unknown): Promise<unknown> {
  const input = { method: req.method, clientId: req.client_id, seq: req.seq, stale: req.stale };
  if (gate === undefined) return svc.call({ ...input, args: bind(args) as unknown[] });
  const header = call.metadata.get('authorization').map(String);
  // Arguments that are not a list are refused by the service (after the door): the guard sees none.
  const list = Array.isArray(args) ? args : null;
  const admitted = await gate.admit({ authorization: header.length === 0 ? undefined : header, source: call.getPeer(), method: req.method, args: list ?? [] });
  // A refusal of the binding is audited by bind itself, once.
  const bound = bind(list === null ? args : admitted.args) as unknown[];
  let value: unknown;
  try {
    value = await svc.call({ ...input, args: bound });
  } catch (err) {
    return admitted.settle({ ok: false, err });
  }
  return admitted.settle({ ok: true, value });
}

export interface CallRequestWire { id: number; method: string; args: string; client_id: string; seq: number; stale: boolean }
export interface CallReplyWire { id: number; result: string; error: string }

export function serializeError(err: unknown): SerializedError {
  if (err instanceof GalleonError) return err.toJSON();
  return new GalleonError(ErrorCode.INTERNAL, `internal error: ${err instanceof Error ? err.message : String(err)}`, {
    hint: 'this is a bug in the metadata service; the member log has details',
  }).toJSON();
}

/**
 * `gate` (auth-gate.ts, issue #12): absent, every call is served as before (no authentication).
 * `tls` with a live identity (proto/tls-live.ts): a call from a certificate revoked since its
 * connection opened is refused (UNAUTHENTICATED), per call, streams included.
 */
export function registerMetadataService(server: grpc.Server, service: () => MetadataService | null, logger: Logger, gate?: MetadataGate, tls?: Tls): void {
  const ctor = serviceConstructor('metadata.proto', 'metadata', 'Metadata');

  const run = async (req: CallRequestWire, call: CallContext): Promise<CallReplyWire> => {
    const id = req.id;
    let bound = false;
    try {
      const svc = service();
      if (svc === null) throw new GalleonError(ErrorCode.UNAVAILABLE, 'metadata member is starting or stopping', { hint: 'retry shortly or ask another member' });
      refuseRevoked(tls, call, req.method);
      let args: unknown;
      try {
        args = req.args === '' ? [] : JSON.parse(req.args);
      } catch {
        throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'call arguments are not JSON', { hint: 'send the arguments as a JSON array' });
      }
      const bind = (a: unknown): unknown => { const out = bindCall(tls, call, req.method, a); bound = true; return out; };
      const value = await callThrough(svc, req, args, call, gate, bind);
      return { id, result: JSON.stringify(value ?? null), error: '' };
    } catch (err) {
      // Without tokens no gate audits: a lease of another node refused in the apply (its holder scope) is audited here.
      if (bound && gate === undefined && isDenial(err)) auditScopeRefusal(tls, call, req.method, err);
      if (!(err instanceof GalleonError)) logger.error({ err, method: req.method }, 'metadata call failed unexpectedly');
      return { id, result: '', error: JSON.stringify(serializeError(err)) };
    }
  };

  server.addService(ctor.service, {
    Call: (call: grpc.ServerUnaryCall<CallRequestWire, CallReplyWire>, callback: grpc.sendUnaryData<CallReplyWire>) => {
      run(call.request, call).then((reply) => callback(null, reply), (err: unknown) => callback({ code: grpc.status.INTERNAL, details: String(err) }));
    },
    CallStream: (call: grpc.ServerDuplexStream<CallRequestWire, CallReplyWire>) => {
      let open = true;
      const revokedSince = revokedSinceOpen(tls, call);
      call.on('data', (req: CallRequestWire) => {
        if (!open) return;
        if (revokedSince()) {
          // Opened before the revocation: the holder may have rotated meanwhile. Ending the stream
          // makes it reconnect with the certificate it holds now; a revoked one is then refused per call.
          open = false;
          call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the certificate of this stream was revoked; reconnect' });
          return;
        }
        void run(req, call).then((reply) => { if (open) call.write(reply); });
      });
      call.on('end', () => { open = false; call.end(); });
      call.on('error', () => { open = false; });
      call.on('cancelled', () => { open = false; });
    },
  });
}

/**
 * Under TLS, before any token is looked at: a call on a connection without a verified certificate
 * (a second line: the port's TLS listener, proto/grpc-tls.ts, never hands such a connection over)
 * and a certificate revoked since its connection opened are refused (UNAUTHENTICATED) and audited.
 */
function refuseRevoked(tls: Tls, call: CallContext, method: string): void {
  if (tls === null || tls === undefined) return;
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (cert === undefined) {
    const err = new GalleonError(ErrorCode.UNAUTHENTICATED, 'this connection has no verified client certificate', { hint: 'connect with a certificate of the cluster CA (--tls-dir)' });
    auditCertRefusal(tls, null, { verb: `metadata:${method.slice(0, 64)}`, object: null, code: err.code, reason: 'no verified certificate', source: call.getPeer() });
    throw err;
  }
  if (tls.live === undefined || !tls.live.isRevoked(cert)) return;
  const err = certificateRevoked(cert.serialNumber);
  auditCertRefusal(tls, cert, { verb: `metadata:${method.slice(0, 64)}`, object: `certificate ${cert.serialNumber.toLowerCase()}`, code: err.code, reason: 'certificate revoked', source: call.getPeer() });
  throw err;
}

/**
 * Under TLS a call that speaks for a node (node-claims.ts) must come from that node's certificate
 * (PERMISSION_DENIED, audited); plaintext: nothing, the node credential alone is checked (any holder
 * may speak for any node). Answers the arguments to serve.
 */
function bindCall(tls: Tls, call: CallContext, method: string, args: unknown): unknown {
  // Arguments that are not a list are refused by the service's own check.
  if (tls === null || tls === undefined || !Array.isArray(args)) return args;
  const cert = call.getAuthContext()?.sslPeerCertificate;
  try {
    return bindToNode(method, args, peerNodeIdOf(cert));
  } catch (err) {
    const claimed = (err as GalleonError).details as { claimed?: string } | undefined;
    auditCertRefusal(tls, cert, { verb: `metadata:${method.slice(0, 64)}`, object: claimed?.claimed ?? null, code: (err as GalleonError).code, reason: 'node certificate mismatch', source: call.getPeer() });
    throw err;
  }
}

function auditScopeRefusal(tls: Tls, call: CallContext, method: string, err: unknown): void {
  const cert = tls === null || tls === undefined ? undefined : call.getAuthContext()?.sslPeerCertificate;
  auditCertRefusal(tls, cert, { verb: `metadata:${method.slice(0, 64)}`, object: null, code: (err as GalleonError).code, reason: 'node certificate mismatch', source: call.getPeer() });
}

/** Whether the stream's certificate, not revoked when the stream opened, is revoked now. */
function revokedSinceOpen(tls: Tls | undefined, call: Pick<grpc.ServerDuplexStream<unknown, unknown>, 'getAuthContext'>): () => boolean {
  const live = tls?.live;
  if (live === undefined) return () => false;
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (cert === undefined || live.isRevoked(cert)) return () => false;
  return () => live.isRevoked(cert);
}
