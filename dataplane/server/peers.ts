/**
 * Outgoing block traffic of a data node (primary -> replicas, replica -> primary for catch-up):
 * one keep-alive undici Pool per peer. Replication is idempotent (a replica ignores a seq it
 * already has), so a connection failure gets a bounded retry.
 */
import { Readable } from 'node:stream';
import { systemClock, type Clock } from '../clock.js';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { withNodeCredential } from '../credential.js';
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import { httpUrl, undiciConnect, type TlsMaterial } from '../../proto/tls.js';
import type { BlockOp } from '../store/types.js';
import { blockPath, decodeJournalFrames, decodeReplicateAnswers, encodeReplicateBatch, errorFromResponse, Header, streamJournalFrames } from '../wire.js';
import type { JournalFrameMeta, ReplicateFrameMeta } from '../wire.js';

export const peerConnections = 16;
export const replicateTimeoutMs = 10_000;
export const replicateAttempts = 3;
export const replicateRetryDelayMs = 25;
/**
 * Forwards to one replica are coalesced: ops queued during one turn of the event loop leave
 * together at its end (one HTTP request, one group commit on the replica). One batch is on the
 * wire at a time, so small ops pile up into big batches (each request costs far more CPU than
 * an op); a second may follow only when it carries at least `bulkBatchBytes` of bodies, so
 * large blocks still overlap their transfer with the replica's disk writes.
 */
export const maxReplicateBatchesInFlight = 2;
export const bulkBatchBytes = 1024 * 1024;
export const maxReplicateBatchEntries = 256;
export const maxReplicateBatchBytes = 8 * 1024 * 1024;
/** Forwards queued per replica beyond which the primary holds new writes (flow control). */
export const maxQueuedReplicateOps = 4096;

interface QueuedOp {
  op: BlockOp;
  opts: ReplicateOptions;
  bytes: number;
  resolve: (r: { appliedSeq: number }) => void;
  reject: (e: unknown) => void;
}

interface ForwardQueue {
  items: QueuedOp[];
  inFlight: number;
  /** A pump is scheduled for the end of this event-loop turn. */
  flushQueued: boolean;
}

export interface ReplicateOptions {
  sync: boolean;
  /** Address of the primary, so a replica that finds a gap knows where to catch up from. */
  primary: string;
  /** Journal entries up to this seq are held by every replica and may be trimmed. */
  trimSeq: number;
}

/**
 * What replication needs from the network between data nodes: the `Replicator` takes this, not
 * the HTTP implementation (`Peers`), so a test or a simulator can stand in for the network.
 */
export interface PeerTransport {
  replicate(address: string, op: BlockOp, opts: ReplicateOptions): Promise<{ appliedSeq: number }>;
  /** Resolves once the replica at `address` has room for another forward (flow control). */
  waitForRoom(address: string): Promise<void>;
  fetchJournal(address: string, volumeId: string, pg: number, fromSeq: number, epoch: number, maxBytes: number): Promise<{ meta: JournalFrameMeta; data: Buffer }[]>;
  peer(address: string, volumeId: string, pg: number, epoch: number, from: string, timeoutMs: number): Promise<{ appliedSeq: number; highestSeq: number; epoch: number }>;
  requestCatchUp(address: string, volumeId: string, pg: number, from: string, epoch: number): Promise<{ appliedSeq: number }>;
  blockVersion(address: string, a: { volumeId: string; inode: number; blockNo: number }): Promise<{ epoch: number; seq: number } | null>;
  writeAsClient(address: string, a: { volumeId: string; inode: number; blockNo: number }, data: Uint8Array, epoch: number, concern: string): Promise<void>;
  /** A hand-back write: the primary takes it (true) only when `version` is newer than its own copy's data. */
  handBackBlock(address: string, a: { volumeId: string; inode: number; blockNo: number }, data: Uint8Array, epoch: number, concern: string, version: { epoch: number; seq: number }): Promise<boolean>;
  fetchPgBlocks(address: string, volumeId: string, pg: number, epoch: number): Promise<{ appliedSeq: number; frames: AsyncGenerator<{ meta: JournalFrameMeta; data: Buffer }> }>;
}

export class Peers implements PeerTransport {
  private readonly pools = new Map<string, Dispatcher>();

  /**
   * `tls`: this node's certificate, presented to every peer (proto/tls.ts); null: plaintext.
   * `nodeToken`: sent with every request to a peer (issue #12; dataplane/credential.ts).
   */
  /** `clock`: time for the waits between retries (dataplane/clock.ts). */
  constructor(private readonly tls: TlsMaterial | null = null, private readonly nodeToken?: string, private readonly clock: Clock = systemClock) {}

  private pool(address: string): Dispatcher {
    let p = this.pools.get(address);
    if (p === undefined) {
      const connect = undiciConnect(this.tls);
      p = withNodeCredential(new Pool(httpUrl(address, this.tls), { ...(connect === undefined ? {} : { connect }), connections: peerConnections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: replicateTimeoutMs, bodyTimeout: replicateTimeoutMs }), this.nodeToken);
      this.pools.set(address, p);
    }
    return p;
  }

  private readonly queues = new Map<string, ForwardQueue>();
  private closed = false;

  /** Forwards one op to a replica, in a batch with whatever else is queued for it. */
  replicate(address: string, op: BlockOp, opts: ReplicateOptions): Promise<{ appliedSeq: number }> {
    let q = this.queues.get(address);
    if (q === undefined) { q = { items: [], inFlight: 0, flushQueued: false }; this.queues.set(address, q); }
    const queue = q;
    return new Promise((resolve, reject) => {
      queue.items.push({ op, opts, bytes: op.kind === 'put' ? op.data.byteLength : 0, resolve, reject });
      this.schedulePump(address, queue);
    });
  }

  /**
   * Sends at the end of this event-loop turn, not at once: every forward the current request
   * (a whole client batch) produces joins the same replicate batch. Not a timer: nothing waits
   * longer than the turn that queued it.
   */
  private schedulePump(address: string, q: ForwardQueue): void {
    if (q.flushQueued) return;
    q.flushQueued = true;
    setImmediate(() => { q.flushQueued = false; this.pump(address); });
  }

  private readonly roomWaiters = new Map<string, (() => void)[]>();

  /** Resolves when the forward queue to `address` is below its bound. */
  async waitForRoom(address: string): Promise<void> {
    const q = this.queues.get(address);
    if (q === undefined || q.items.length < maxQueuedReplicateOps) return;
    await new Promise<void>((resolve) => {
      const list = this.roomWaiters.get(address) ?? [];
      list.push(resolve);
      this.roomWaiters.set(address, list);
    });
  }

  private pump(address: string): void {
    const q = this.queues.get(address);
    if (q === undefined) return;
    if (this.closed) {
      // Queued before close() and not yet sent: never open a new connection for them.
      for (const item of q.items.splice(0)) item.reject(new GalleonError('UNAVAILABLE', `forward to ${address} dropped: the node is shutting down`));
      this.releaseRoom(address, 0);
      return;
    }
    this.releaseRoom(address, q.items.length);
    while (q.inFlight < maxReplicateBatchesInFlight && q.items.length > 0) {
      let n = 0;
      let bytes = 0;
      while (n < q.items.length && n < maxReplicateBatchEntries) {
        const b = q.items[n]?.bytes ?? 0;
        if (n > 0 && bytes + b > maxReplicateBatchBytes) break;
        bytes += b;
        n++;
      }
      if (q.inFlight > 0 && bytes < bulkBatchBytes) break;
      const batch = q.items.splice(0, n);
      this.releaseRoom(address, q.items.length);
      q.inFlight++;
      void this.sendBatch(address, batch).finally(() => { q.inFlight--; this.schedulePump(address, q); });
    }
  }

  private releaseRoom(address: string, queued: number): void {
    if (queued >= maxQueuedReplicateOps) return;
    const waiters = this.roomWaiters.get(address);
    if (waiters === undefined) return;
    this.roomWaiters.delete(address);
    for (const w of waiters) w();
  }

  private async sendBatch(address: string, batch: QueuedOp[]): Promise<void> {
    const { chunks, length } = encodeReplicateBatch(batch.map(({ op, opts }) => {
      const meta: ReplicateFrameMeta = {
        volumeId: op.address.volumeId, inode: op.address.inode, blockNo: op.address.blockNo, pg: op.pg, seq: op.seq, epoch: op.epoch,
        op: op.kind === 'put' ? 'put' : 'delete', sync: opts.sync, primary: opts.primary, trim: opts.trimSeq,
      };
      return { meta, data: op.kind === 'put' ? op.data : undefined };
    }));
    try {
      // Small ops share one buffer; big bodies are streamed chunk by chunk, never copied (a
      // fresh stream per attempt: a retry must not reuse a consumed one).
      const single = chunks.length === 1 ? chunks[0] : undefined;
      const res = await this.requestWithRetry(address, {
        method: 'POST', path: '/v1/replicate-batch', headers: { 'content-type': 'application/octet-stream', 'content-length': String(length) },
      }, () => single ?? Readable.from(chunks));
      const results = decodeReplicateAnswers(Buffer.from(await res.body.arrayBuffer()));
      batch.forEach((item, i) => {
        const r = results[i];
        if (r === undefined) item.reject(new GalleonError('INTERNAL', `replica ${address} answered ${results.length} results for ${batch.length} ops`));
        else if ('error' in r) item.reject(GalleonError.fromJSON(r.error));
        else item.resolve(r);
      });
    } catch (err) {
      for (const item of batch) item.reject(err);
    }
  }

  async fetchJournal(address: string, volumeId: string, pg: number, fromSeq: number, epoch: number, maxBytes: number): Promise<{ meta: JournalFrameMeta; data: Buffer }[]> {
    const res = await this.requestWithRetry(address, {
      method: 'GET',
      path: `/v1/journal/${encodeURIComponent(volumeId)}/${pg}?from=${fromSeq}&epoch=${epoch}&maxBytes=${maxBytes}`,
    });
    return decodeJournalFrames(Buffer.from(await res.body.arrayBuffer()));
  }

  /**
   * Peering: installs `epoch` on a replica (from then on it refuses older primaries) and returns
   * its progress on the PG. Bounded by `timeoutMs`: a frozen replica must not hold a new primary.
   */
  async peer(address: string, volumeId: string, pg: number, epoch: number, from: string, timeoutMs: number): Promise<{ appliedSeq: number; highestSeq: number; epoch: number }> {
    const res = await this.requestWithRetry(address, {
      method: 'POST', path: `/v1/peer/${encodeURIComponent(volumeId)}/${pg}?epoch=${epoch}&from=${encodeURIComponent(from)}`, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    });
    return (await res.body.json()) as { appliedSeq: number; highestSeq: number; epoch: number };
  }

  /**
   * Asks a replica to pull what it lacks from the journal of `from`, the PG's primary (it answers
   * once caught up). The replica connects to the address the metadata service has for `from`,
   * never to one named in the request.
   */
  async requestCatchUp(address: string, volumeId: string, pg: number, from: string, epoch: number): Promise<{ appliedSeq: number }> {
    const res = await this.requestWithRetry(address, { method: 'POST', path: `/v1/catchup/${encodeURIComponent(volumeId)}/${pg}?from=${encodeURIComponent(from)}&epoch=${epoch}`, bodyTimeout: 0 });
    return (await res.body.json()) as { appliedSeq: number };
  }

  /** The (epoch, seq) of a node's copy of a block, or null when it has none. */
  async blockVersion(address: string, a: { volumeId: string; inode: number; blockNo: number }): Promise<{ epoch: number; seq: number } | null> {
    try {
      const res = await this.requestWithRetry(address, { method: 'GET', path: blockPath(a) });
      await res.body.dump();
      return { epoch: Number(res.headers[Header.epoch]), seq: Number(res.headers[Header.seq]) };
    } catch (err) {
      if (isGalleonError(err, 'BLOCK_NOT_FOUND')) return null;
      throw err;
    }
  }

  /** A client write to `address` (the PG's primary) at `epoch`. */
  async writeAsClient(address: string, a: { volumeId: string; inode: number; blockNo: number }, data: Uint8Array, epoch: number, concern: string): Promise<void> {
    const res = await this.requestWithRetry(address, {
      method: 'PUT', path: `${blockPath(a)}?epoch=${epoch}&concern=${concern}`, body: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    });
    await res.body.dump();
  }

  async handBackBlock(address: string, a: { volumeId: string; inode: number; blockNo: number }, data: Uint8Array, epoch: number, concern: string, version: { epoch: number; seq: number }): Promise<boolean> {
    const res = await this.requestWithRetry(address, {
      method: 'PUT', path: `${blockPath(a)}?epoch=${epoch}&concern=${concern}&handBack=${version.epoch}.${version.seq}`, body: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    });
    await res.body.dump();
    return res.headers[Header.handBack] === 'taken';
  }

  /** Every live block of a PG from `address`, streamed; `appliedSeq` is the sender's watermark before it began. */
  async fetchPgBlocks(address: string, volumeId: string, pg: number, epoch: number): Promise<{ appliedSeq: number; frames: AsyncGenerator<{ meta: JournalFrameMeta; data: Buffer }> }> {
    const res = await this.requestWithRetry(address, { method: 'GET', path: `/v1/pg-blocks/${encodeURIComponent(volumeId)}/${pg}?epoch=${epoch}`, bodyTimeout: 0 });
    return { appliedSeq: Number(res.headers[Header.appliedSeq]), frames: streamJournalFrames(res.body) };
  }

  private async requestWithRetry(address: string, req: Dispatcher.RequestOptions, body?: () => Buffer | Readable): Promise<Dispatcher.ResponseData> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.pool(address).request(body === undefined ? req : { ...req, body: body() });
        if (res.statusCode >= 200 && res.statusCode < 300) return res;
        throw await errorFromResponse(res);
      } catch (err) {
        if (isGalleonError(err)) throw err;
        if (attempt >= replicateAttempts) {
          throw new GalleonError('UNAVAILABLE', `data node ${address} is unreachable`, { hint: 'the node may be down; the metadata service will replace it', cause: err });
        }
        await this.pause(replicateRetryDelayMs * attempt);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => { this.clock.setTimeout(resolve, ms); });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}
