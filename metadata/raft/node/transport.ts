/**
 * Raft peer transport over @grpc/grpc-js: one long-lived client stream per peer, each frame a
 * batch of messages. Messages queued in the same turn of the event loop leave in one frame.
 *
 * Limits: a bounded queue per peer (oldest non-essential messages are dropped when full and the
 * peer is reported unreachable, so the core falls back to probing); frames above
 * `chunkBytes` are split into chunks (snapshots). A broken stream is reopened with backoff;
 * while a peer is down its messages are dropped (Raft retransmits) and it is reported
 * unreachable, plus a snapshot failure if a snapshot went out on the broken stream.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../core/types.js';
import { grpcChannelOptions, serviceConstructor } from '../../../proto/grpc-loader.js';
import { auditCertRefusal, grpcChannelCredentials, peerKindOf, peerNodeIdOf, type TlsMaterial } from '../../../proto/tls.js';
import { decodeMessages, encodeMessages, estimateMessageBytes } from './message-codec.js';
import type { SnapshotPiece } from './snapshot-transfer.js';

export interface TransportHandlers {
  /** Messages received from peers, in arrival order (one call per frame). */
  onMessages(messages: Message[]): void;
  onUnreachable(peer: NodeId): void;
  onSnapshotFailure(peer: NodeId): void;
  /** A peer announced an address on its stream that differs from (or fills in) what we had. */
  onPeerAddress?(peer: NodeId, address: string): void;
  /** An InstallSnapshot call (snapshot-transfer.ts SnapshotReceiver); refused when unset. */
  onInstallSnapshot?(call: grpc.ServerReadableStream<SnapshotPiece, object>, callback: grpc.sendUnaryData<object>): void;
}

export interface TransportOptions {
  selfId: NodeId;
  /** Our own address, announced to peers on every stream. */
  selfAddress?: string;
  /** Current gRPC address of a peer, or undefined when unknown. */
  resolveAddress: (peer: NodeId) => string | undefined;
  handlers: TransportHandlers;
  logger: Logger;
  /** Mutual TLS (proto/tls.ts): dial peers with this certificate, accept only node certificates; null/absent: plaintext. */
  tls?: TlsMaterial | null;
  maxQueuedMessages?: number;
  maxQueuedBytes?: number;
  maxFrameBytes?: number;
  chunkBytes?: number;
  reconnectBackoffMinMs?: number;
  reconnectBackoffMaxMs?: number;
}

export const transportDefaults = {
  maxQueuedMessages: 8192,
  maxQueuedBytes: 64 * 1024 * 1024,
  maxFrameBytes: 4 * 1024 * 1024,
  chunkBytes: 1024 * 1024,
  reconnectBackoffMinMs: 50,
  reconnectBackoffMaxMs: 1000,
} as const;

interface Frame { from: string; from_address?: string; batch?: Buffer; chunk?: { offset: number; total_bytes: number; data: Buffer } }

/** Losing these stalls an election or a snapshot; everything else Raft re-sends by itself. */
function isEssential(m: Message): boolean {
  return m.type === 'vote' || m.type === 'vote-resp' || m.type === 'pre-vote' || m.type === 'pre-vote-resp'
    || m.type === 'snap' || m.type === 'timeout-now';
}

/** A peer whose queue overflows is reported unreachable at most this often. */
const unreachableReportIntervalMs = 100;

class PeerLink {
  private queue: Message[] = [];
  private queuedBytes = 0;
  private lastUnreachableReportMs = 0;
  private client: grpc.Client | null = null;
  private address: string | null = null;
  private stream: grpc.ClientWritableStream<Frame> | null = null;
  private waitingDrain = false;
  private flushScheduled = false;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private snapshotSentOnStream = false;
  private closed = false;

  constructor(private readonly peer: NodeId, private readonly t: RaftTransport) {
    this.backoffMs = t.opts.reconnectBackoffMinMs;
  }

  enqueue(m: Message): void {
    if (this.closed) return;
    if (this.retryTimer !== null) {
      // Peer is down and we are backing off: drop, Raft will retry after reportUnreachable.
      if (m.type === 'snap') this.t.handlers.onSnapshotFailure(this.peer);
      return;
    }
    this.queue.push(m);
    this.queuedBytes += estimateMessageBytes(m);
    while (this.queue.length > 1 && (this.queue.length > this.t.opts.maxQueuedMessages || this.queuedBytes > this.t.opts.maxQueuedBytes)) this.shed();
    this.scheduleFlush();
  }

  /** Drops the oldest non-essential message (Raft re-sends what matters after the report). */
  private shed(): void {
    const idx = this.queue.findIndex((m) => !isEssential(m));
    const [dropped] = this.queue.splice(idx >= 0 ? idx : 0, 1);
    if (dropped !== undefined) {
      this.queuedBytes -= estimateMessageBytes(dropped);
      if (dropped.type === 'snap') this.t.handlers.onSnapshotFailure(this.peer);
    }
    const now = Date.now();
    if (now - this.lastUnreachableReportMs >= unreachableReportIntervalMs) {
      this.lastUnreachableReportMs = now;
      this.t.handlers.onUnreachable(this.peer);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.waitingDrain) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private ensureStream(): grpc.ClientWritableStream<Frame> | null {
    const address = this.t.opts.resolveAddress(this.peer);
    if (address === undefined) return null;
    if (this.client === null || this.address !== address) {
      this.client?.close();
      this.stream = null;
      this.client = new this.t.ctor(address, grpcChannelCredentials(this.t.opts.tls), grpcChannelOptions);
      this.address = address;
    }
    if (this.stream === null) {
      const stream = (this.client as unknown as { Stream: (cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<Frame> })
        .Stream((err) => { if (err !== null) this.onStreamBroken(stream, err); });
      stream.on('error', () => { /* reported through the callback */ });
      stream.on('drain', () => {
        this.waitingDrain = false;
        this.scheduleFlush();
      });
      this.stream = stream;
      this.snapshotSentOnStream = false;
    }
    return this.stream;
  }

  private onStreamBroken(stream: grpc.ClientWritableStream<Frame>, err: grpc.ServiceError): void {
    if (this.stream !== stream || this.closed) return;
    this.t.logger.debug({ peer: this.peer, code: err.code, details: err.details }, 'raft stream to peer broke');
    this.stream = null;
    this.waitingDrain = false;
    this.queue = [];
    this.queuedBytes = 0;
    this.t.handlers.onUnreachable(this.peer);
    if (this.snapshotSentOnStream) this.t.handlers.onSnapshotFailure(this.peer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.scheduleFlush();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, this.t.opts.reconnectBackoffMaxMs);
  }

  private flush(): void {
    if (this.closed || this.queue.length === 0 || this.waitingDrain || this.retryTimer !== null) return;
    const stream = this.ensureStream();
    if (stream === null) {
      this.t.logger.warn({ peer: this.peer }, 'no address known for raft peer; dropping its messages');
      const hadSnap = this.queue.some((m) => m.type === 'snap');
      this.queue = [];
      this.queuedBytes = 0;
      this.t.handlers.onUnreachable(this.peer);
      if (hadSnap) this.t.handlers.onSnapshotFailure(this.peer);
      return;
    }
    while (this.queue.length > 0 && !this.waitingDrain) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length) {
        const est = estimateMessageBytes(this.queue[n]!);
        if (n > 0 && bytes + est > this.t.opts.maxFrameBytes) break;
        bytes += est;
        n++;
      }
      const batch = this.queue.splice(0, n);
      this.queuedBytes = Math.max(0, this.queuedBytes - bytes);
      if (batch.some((m) => m.type === 'snap')) this.snapshotSentOnStream = true;
      const buf = encodeMessages(batch);
      let ok = true;
      if (buf.byteLength <= this.t.opts.chunkBytes) {
        ok = stream.write({ from: this.t.opts.selfId, from_address: this.t.opts.selfAddress, batch: buf });
        this.t.metrics.framesSent++;
      } else {
        for (let off = 0; off < buf.byteLength; off += this.t.opts.chunkBytes) {
          const data = buf.subarray(off, Math.min(off + this.t.opts.chunkBytes, buf.byteLength));
          ok = stream.write({ from: this.t.opts.selfId, from_address: this.t.opts.selfAddress, chunk: { offset: off, total_bytes: buf.byteLength, data } }) && ok;
          this.t.metrics.framesSent++;
        }
      }
      this.t.metrics.messagesSent += batch.length;
      if (!ok) this.waitingDrain = true;
    }
    // A successful flush means the peer answers again: reset the backoff.
    this.backoffMs = this.t.opts.reconnectBackoffMinMs;
  }

  queued(): { messages: number; bytes: number } {
    return { messages: this.queue.length, bytes: this.queuedBytes };
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stream?.end();
    this.stream = null;
    this.client?.close();
    this.client = null;
    this.queue = [];
    this.queuedBytes = 0;
  }
}

export class RaftTransport {
  readonly opts: Required<Omit<TransportOptions, 'handlers' | 'logger' | 'resolveAddress' | 'selfId' | 'selfAddress'>> & Pick<TransportOptions, 'resolveAddress' | 'selfId'> & { selfAddress: string };
  readonly handlers: TransportHandlers;
  readonly logger: Logger;
  readonly ctor: grpc.ServiceClientConstructor;
  readonly metrics = { framesSent: 0, messagesSent: 0, framesReceived: 0, messagesReceived: 0 };
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<grpc.ServerReadableStream<Frame, object>>();
  private stopped = false;

  constructor(options: TransportOptions) {
    this.opts = {
      selfId: options.selfId,
      selfAddress: options.selfAddress ?? '',
      resolveAddress: options.resolveAddress,
      maxQueuedMessages: options.maxQueuedMessages ?? transportDefaults.maxQueuedMessages,
      maxQueuedBytes: options.maxQueuedBytes ?? transportDefaults.maxQueuedBytes,
      maxFrameBytes: options.maxFrameBytes ?? transportDefaults.maxFrameBytes,
      chunkBytes: options.chunkBytes ?? transportDefaults.chunkBytes,
      reconnectBackoffMinMs: options.reconnectBackoffMinMs ?? transportDefaults.reconnectBackoffMinMs,
      reconnectBackoffMaxMs: options.reconnectBackoffMaxMs ?? transportDefaults.reconnectBackoffMaxMs,
      tls: options.tls ?? null,
    };
    this.handlers = options.handlers;
    this.logger = options.logger;
    this.ctor = serviceConstructor('raft.proto', 'raft', 'RaftTransport');
  }

  /** Adds the receiving side to a gRPC server (shared with the metadata API). */
  register(server: grpc.Server): void {
    server.addService(this.ctor.service, {
      Stream: (call: grpc.ServerReadableStream<Frame, object>, callback: grpc.sendUnaryData<object>) => {
        if (this.refuseNonNode(call, callback)) return;
        this.serve(call, callback);
      },
      InstallSnapshot: (call: grpc.ServerReadableStream<SnapshotPiece, object>, callback: grpc.sendUnaryData<object>) => {
        if (this.refuseNonNode(call, callback)) return;
        if (this.stopped || this.handlers.onInstallSnapshot === undefined) callback({ code: grpc.status.UNAVAILABLE, details: 'member does not take snapshots now' });
        else this.handlers.onInstallSnapshot(call, callback);
      },
    });
  }

  /**
   * Under TLS the handshake already refused certificates of other CAs; a client certificate of
   * our own CA (an operator's) may call the metadata API but never speak Raft.
   */
  private refuseNonNode(call: grpc.ServerReadableStream<unknown, object>, callback: grpc.sendUnaryData<object>): boolean {
    if (this.opts.tls === null || this.opts.tls === undefined) return false;
    const cert = call.getAuthContext()?.sslPeerCertificate;
    if (this.opts.tls.live?.isRevoked(cert) === true) {
      this.logger.warn({ peer: call.getPeer(), serial: cert?.serialNumber }, 'refused a raft stream from a revoked certificate');
      auditCertRefusal(this.opts.tls, cert, { verb: 'raft:stream', object: `certificate ${cert?.serialNumber.toLowerCase() ?? '?'}`, code: 'UNAUTHENTICATED', reason: 'certificate revoked', source: call.getPeer() });
      callback({ code: grpc.status.UNAUTHENTICATED, details: `certificate ${cert?.serialNumber ?? '?'} is revoked` });
      return true;
    }
    const kind = peerKindOf(cert);
    if (kind === 'node') return false;
    this.logger.warn({ peer: call.getPeer(), kind }, 'refused a raft stream from a certificate that is not a node\'s');
    callback({ code: grpc.status.PERMISSION_DENIED, details: `raft is for cluster nodes; this certificate is a ${kind} certificate` });
    return true;
  }

  /**
   * Under TLS a node certificate speaks only for the node it names (its CN): a stream whose frames
   * claim another node (node2's certificate sending as node1's leader) is refused, and so is a
   * stream whose certificate is revoked meanwhile (checked per frame: `galleon cert revoke` cuts
   * streams that were open). Answers whether the frame may be read.
   */
  private claimCheck(call: grpc.ServerReadableStream<Frame, object>, callback: grpc.sendUnaryData<object>): (from: string) => boolean {
    const tls = this.opts.tls;
    if (tls === null || tls === undefined) return () => true;
    const cert = call.getAuthContext()?.sslPeerCertificate;
    const node = peerNodeIdOf(cert);
    let refused = false;
    return (from) => {
      if (refused) return false;
      const revoked = tls.live?.isRevoked(cert) === true;
      if (!revoked && from === node) return true;
      refused = true;
      this.inbound.delete(call);
      this.logger.warn({ peer: call.getPeer(), certNode: node, claimed: from, revoked }, revoked ? 'cut a raft stream: its certificate was revoked' : 'refused a raft stream claiming another node than its certificate names');
      auditCertRefusal(tls, cert, revoked
        ? { verb: 'raft:stream', object: `certificate ${cert?.serialNumber.toLowerCase() ?? '?'}`, code: 'UNAUTHENTICATED', reason: 'certificate revoked', source: call.getPeer() }
        : { verb: 'raft:stream', object: from.slice(0, 64), code: 'PERMISSION_DENIED', reason: 'node certificate mismatch', source: call.getPeer() });
      callback(revoked
        ? { code: grpc.status.UNAUTHENTICATED, details: `certificate ${cert?.serialNumber ?? '?'} is revoked` }
        : { code: grpc.status.PERMISSION_DENIED, details: `this certificate is node ${node ?? '?'}'s; it may not speak for node ${from.slice(0, 64)}` });
      return false;
    };
  }

  send(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of messages) {
      if (m.to === this.opts.selfId) continue;
      let link = this.links.get(m.to);
      if (link === undefined) {
        link = new PeerLink(m.to, this);
        this.links.set(m.to, link);
      }
      link.enqueue(m);
    }
  }

  /** Messages waiting for a peer's stream (for status and tests). */
  queued(peer: NodeId): { messages: number; bytes: number } {
    return this.links.get(peer)?.queued() ?? { messages: 0, bytes: 0 };
  }

  /** Forgets a removed peer (closes its stream). */
  removePeer(peer: NodeId): void {
    this.links.get(peer)?.close();
    this.links.delete(peer);
  }

  stop(): void {
    this.stopped = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const call of this.inbound) call.destroy();
    this.inbound.clear();
  }

  private serve(call: grpc.ServerReadableStream<Frame, object>, answer: grpc.sendUnaryData<object>): void {
    let answered = false;
    const callback: grpc.sendUnaryData<object> = (err, value) => {
      if (answered) return;
      answered = true;
      answer(err, value);
    };
    if (this.stopped) {
      callback({ code: grpc.status.UNAVAILABLE, details: 'member is stopping' });
      return;
    }
    this.inbound.add(call);
    const certNode = this.opts.tls === null || this.opts.tls === undefined ? null : peerNodeIdOf(call.getAuthContext()?.sslPeerCertificate);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const deliver = (buf: Buffer): void => {
      let msgs: Message[];
      try {
        msgs = decodeMessages(buf);
      } catch (err) {
        this.logger.warn({ err }, 'dropping an undecodable raft frame');
        return;
      }
      this.metrics.framesReceived++;
      this.metrics.messagesReceived += msgs.length;
      // Under TLS the stream's first frame named the certificate's node (claimCheck): a message from any other is forged.
      const from = certNode;
      if (!this.stopped) this.handlers.onMessages(msgs.filter((m) => m.to === this.opts.selfId && (from === null || m.from === from)));
    };
    let announced = false;
    const claim = this.claimCheck(call, callback);
    call.on('data', (frame: Frame) => {
      if (!claim(frame.from)) return;
      if (!announced && frame.from_address !== undefined && frame.from_address !== '' && frame.from !== '') {
        announced = true;
        // A peer that restarted on another port tells us here; until then we would dial the old one.
        if (this.opts.resolveAddress(frame.from) !== frame.from_address) this.handlers.onPeerAddress?.(frame.from, frame.from_address);
      }
      if (frame.chunk !== undefined && frame.chunk !== null && frame.chunk.total_bytes > 0) {
        const c = frame.chunk;
        if (c.offset !== pendingBytes) {
          // A chunk out of sequence means a lost one: drop the partial batch.
          pending = [];
          pendingBytes = 0;
          if (c.offset !== 0) return;
        }
        pending.push(c.data);
        pendingBytes += c.data.byteLength;
        if (pendingBytes >= c.total_bytes) {
          const whole = Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          deliver(whole);
        }
        return;
      }
      if (frame.batch !== undefined && frame.batch.byteLength > 0) deliver(frame.batch);
    });
    const finish = (): void => {
      this.inbound.delete(call);
      callback(null, {});
    };
    call.on('end', finish);
    call.on('error', () => { this.inbound.delete(call); });
  }
}
