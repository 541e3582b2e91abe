/**
 * Streamed InstallSnapshot over gRPC (`RaftTransport.InstallSnapshot` in proto/raft.proto).
 *
 * The core's Snap messages carry no state (the state machine's database is the snapshot). When
 * the core asks to send one, the driver opens a point-in-time stream of the state machine at its
 * applied index A (>= the core's snapshot index) and hands it here with the metadata of A (term
 * and configuration at A). `SnapshotSender` ships it chunk by chunk, one transfer per peer at a
 * time, paced by `bytesPerSecond` when set; `SnapshotReceiver` applies each chunk into the state
 * machine's staging area as it arrives and, once the last is in, steps a Snap message with that
 * metadata into the local core, which installs it through the usual Ready (persist, then
 * `installRestored`). A broken transfer (leader change, network, crash) is started over by the
 * next leader or the next Snap of the same leader; the follower drops the partial staging.
 * Memory on both sides: one chunk plus gRPC's flow-control window.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ConfState, Message, NodeId, SnapshotMeta } from '../core/types.js';
import type { SnapshotSink, SnapshotStream, StateMachine } from '../../state/contract.js';
import { grpcChannelOptions, serviceConstructor } from '../../../proto/grpc-loader.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { grpcChannelCredentials, type TlsMaterial } from '../../../proto/tls.js';

export interface SnapshotPiece {
  from: string;
  to: string;
  term: number;
  index: number;
  snap_term: number;
  conf_json: string;
  offset: number;
  chunk: Buffer | Uint8Array;
}

interface SnapshotAck { received_bytes: number }

export interface SnapshotSenderOptions {
  selfId: NodeId;
  resolveAddress: (peer: NodeId) => string | undefined;
  logger: Logger;
  /** Upper bound on the send rate of one transfer; 0 = as fast as the peer takes it. */
  bytesPerSecond: number;
  /** The transfer to `peer` failed or was cancelled: the core goes back to probing it. */
  onFailure: (peer: NodeId) => void;
  onSent?: (peer: NodeId, bytes: number, ms: number) => void;
  /** Mutual TLS (proto/tls.ts); null/absent: plaintext. */
  tls?: TlsMaterial | null;
}

type Call = grpc.ClientWritableStream<SnapshotPiece>;

/** The leader's side: at most one transfer per peer. */
export class SnapshotSender {
  private readonly ctor = serviceConstructor('raft.proto', 'raft', 'RaftTransport');
  private readonly active = new Map<NodeId, { cancel: () => void }>();

  constructor(private readonly o: SnapshotSenderOptions) {
    if (!(o.bytesPerSecond >= 0)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot send rate ${o.bytesPerSecond} is negative`, { hint: 'use 0 for unlimited' });
  }

  busy(peer: NodeId): boolean {
    return this.active.has(peer);
  }

  /** Starts shipping `source` (closed at the end whatever happens) to `peer`. */
  start(peer: NodeId, term: number, meta: SnapshotMeta, source: SnapshotStream): void {
    if (this.active.has(peer)) {
      void source.close();
      return;
    }
    let cancelled = false;
    let call: Call | null = null;
    this.active.set(peer, { cancel: () => { cancelled = true; call?.cancel(); } });
    const started = performance.now();
    const run = async (): Promise<number> => {
      const address = this.o.resolveAddress(peer);
      if (address === undefined) throw new GalleonError(ErrorCode.UNAVAILABLE, `no address known for ${peer}`, { hint: 'the peer announces itself when it connects' });
      const client = new this.ctor(address, grpcChannelCredentials(this.o.tls), grpcChannelOptions);
      try {
        return await new Promise<number>((resolve, reject) => {
          const c = (client as unknown as { InstallSnapshot: (cb: (err: grpc.ServiceError | null, ack?: SnapshotAck) => void) => Call })
            .InstallSnapshot((err, ack) => (err !== null ? reject(new Error(err.details, { cause: err })) : resolve(ack?.received_bytes ?? 0)));
          c.on('error', () => { /* reported through the callback */ });
          call = c;
          if (cancelled) c.cancel();
          this.pump(c, peer, term, meta, source, () => cancelled).catch((err: unknown) => { c.cancel(); reject(err instanceof Error ? err : new Error(String(err))); });
        });
      } finally {
        client.close();
      }
    };
    run().then((bytes) => {
      this.o.logger.info({ peer, index: meta.index, bytes, ms: Math.round(performance.now() - started) }, 'sent a snapshot');
      this.o.onSent?.(peer, bytes, performance.now() - started);
    }, (err: unknown) => {
      this.o.logger.warn({ peer, index: meta.index, err: cancelled ? 'cancelled' : err }, 'snapshot transfer failed');
      this.o.onFailure(peer);
    }).finally(() => {
      this.active.delete(peer);
      void source.close().catch(() => undefined);
    });
  }

  /** Leadership lost or the member stops: every transfer is cancelled. */
  cancelAll(): void {
    for (const t of this.active.values()) t.cancel();
  }

  private async pump(call: Call, peer: NodeId, term: number, meta: SnapshotMeta, source: SnapshotStream, cancelled: () => boolean): Promise<void> {
    const started = performance.now();
    let offset = 0;
    for await (const chunk of source.chunks) {
      if (cancelled()) return;
      const piece: SnapshotPiece = { from: this.o.selfId, to: peer, term, index: meta.index, snap_term: meta.term, conf_json: JSON.stringify(meta.conf), offset, chunk };
      if (!call.write(piece)) await drained(call);
      offset += chunk.byteLength;
      if (this.o.bytesPerSecond > 0) {
        const aheadMs = (offset / this.o.bytesPerSecond) * 1000 - (performance.now() - started);
        if (aheadMs > 1) await new Promise((r) => setTimeout(r, aheadMs));
      }
    }
    call.end();
  }
}

function drained(call: Call): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      call.off('error', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('error', done);
    call.on('close', done);
  });
}

export interface SnapshotReceiverOptions {
  selfId: NodeId;
  stateMachine: StateMachine;
  logger: Logger;
  /** A complete snapshot is staged: step this Snap message into the core. */
  onReceived: (m: Message) => void;
  onChunk?: (bytes: number) => void;
}

/** The follower's side: one transfer at a time; a newer one (another leader, a retry) wins. */
export class SnapshotReceiver {
  private current: { call: grpc.ServerReadableStream<SnapshotPiece, object>; done: Promise<void> } | null = null;

  constructor(private readonly o: SnapshotReceiverOptions) {}

  handle(call: grpc.ServerReadableStream<SnapshotPiece, object>, callback: grpc.sendUnaryData<object>): void {
    const previous = this.current;
    const done = (async () => {
      if (previous !== null) {
        previous.call.destroy(new Error('a newer snapshot transfer started'));
        await previous.done;
      }
      try {
        const bytes = await this.receive(call);
        callback(null, { received_bytes: bytes });
      } catch (err) {
        this.o.logger.warn({ err }, 'snapshot transfer in failed');
        const code = !(err instanceof GalleonError) ? grpc.status.ABORTED
          : err.code === ErrorCode.CHECKSUM_MISMATCH ? grpc.status.DATA_LOSS
            : err.code === ErrorCode.INVALID_ARGUMENT ? grpc.status.INVALID_ARGUMENT : grpc.status.ABORTED;
        callback({ code, details: err instanceof Error ? err.message : String(err) });
      }
    })();
    this.current = { call, done };
    void done.finally(() => { if (this.current?.call === call) this.current = null; });
  }

  private async receive(call: grpc.ServerReadableStream<SnapshotPiece, object>): Promise<number> {
    let sink: SnapshotSink | null = null;
    let first: SnapshotPiece | null = null;
    let received = 0;
    let conf: ConfState | null = null;
    try {
      for await (const raw of call as AsyncIterable<SnapshotPiece>) {
        const piece = raw;
        if (first === null) {
          first = piece;
          if (piece.to !== this.o.selfId) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot for ${piece.to} arrived at ${this.o.selfId}`, { hint: 'check the member addresses' });
          conf = checkFirstPiece(piece);
          sink = await this.o.stateMachine.beginRestore(piece.index);
          this.o.logger.info({ from: piece.from, term: piece.term, index: piece.index }, 'receiving a snapshot');
        } else if (piece.index !== first.index || piece.term !== first.term || piece.from !== first.from) {
          throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'snapshot pieces of two transfers on one call', { hint: 'the leader restarts the transfer' });
        }
        if (piece.offset !== received) throw new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `snapshot piece at offset ${piece.offset}, expected ${received}`, { hint: 'the leader restarts the transfer' });
        await sink!.write(piece.chunk);
        received += piece.chunk.byteLength;
        this.o.onChunk?.(piece.chunk.byteLength);
      }
      if (first === null || sink === null) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'empty snapshot transfer', { hint: 'the leader restarts the transfer' });
      const index = await sink.finish();
      if (index !== first.index) throw new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `snapshot state at ${index}, announced ${first.index}`, { hint: 'the leader restarts the transfer' });
    } catch (err) {
      await sink?.abort().catch(() => undefined);
      throw err;
    }
    this.o.logger.info({ from: first.from, index: first.index, bytes: received }, 'received a snapshot');
    this.o.onReceived({
      type: 'snap', from: first.from, to: this.o.selfId, term: first.term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0,
      snapshot: { meta: { index: first.index, term: first.snap_term, conf: conf! }, data: new Uint8Array(0) },
    });
    return received;
  }
}

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isIdList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x !== '');

/**
 * The first piece names the transfer: checked whole before anything is staged, so a malformed or
 * foreign piece changes nothing (the Raft core asserts its invariants and would stop the member on
 * a NaN term or a conf of the wrong shape). Returns the configuration it carries.
 */
function checkFirstPiece(piece: SnapshotPiece): ConfState {
  const bad = (what: string): GalleonError => new GalleonError(ErrorCode.INVALID_ARGUMENT, `malformed snapshot piece: ${what}`, { hint: 'only a metadata member sends snapshots; the leader restarts the transfer' });
  if (typeof piece.from !== 'string' || piece.from === '') throw bad('no sender');
  if (!isCount(piece.term) || !isCount(piece.index) || !isCount(piece.snap_term) || piece.index === 0) throw bad('term or index is not a positive integer');
  let conf: unknown;
  try {
    conf = JSON.parse(piece.conf_json);
  } catch {
    throw bad('configuration is not JSON');
  }
  const c = conf as Partial<ConfState> | null;
  if (typeof c !== 'object' || c === null || !isIdList(c.voters) || !isIdList(c.learners) || c.voters.length === 0) throw bad('configuration of the wrong shape');
  return { voters: c.voters, learners: c.learners };
}
