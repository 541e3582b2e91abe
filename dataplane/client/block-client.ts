/**
 * The data-plane client: routes `(volume, inode, blockNo)` to its PG and the PG's primary,
 * sends the placement epoch with every request, refreshes the placement on STALE_EPOCH or
 * NOT_PRIMARY (typed retry sets below) and retries with a bound. One keep-alive undici
 * Pool per node, pipelining idempotent reads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import { GalleonError, isGalleonError, type ErrorCode } from '../../proto/errors.js';
import { httpUrl, undiciConnectOptions, type TlsMaterial } from '../../proto/tls.js';
import { writeConcernOrder } from '../../proto/metadata-types.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import { pgOf } from '../logic/routing.js';
import { groupOf, nodeOf } from '../placement.js';
import type { PlacementSource, VolumePlacement } from '../placement.js';
import type { BlockAddress } from '../store/types.js';
import { blockPath, decodeBlockBatchAnswers, encodeBlockBatch, errorFromResponse, Header } from '../wire.js';
import type { BlockBatchFrameMeta } from '../wire.js';

export interface BlockClientOptions {
  placement: PlacementSource;
  /** Connections per data node. */
  connectionsPerNode?: number;
  /** Requests in flight per connection for reads (writes are never pipelined). */
  pipelining?: number;
  maxAttempts?: number;
  retryBaseDelayMs?: number;
  requestTimeoutMs?: number;
  /** Upper bound of concurrent requests of one writeBlocks/readBlocks call. */
  maxInFlight?: number;
  /** Coalesce small concurrent writes to one primary into batch requests (default true). */
  coalesceWrites?: boolean;
  /**
   * Batch requests on the wire per primary. One (the default) lets writes pile up into big
   * batches while the previous one is out: a request costs far more CPU than a small write.
   */
  writeBatchesInFlight?: number;
  /** Mutual TLS with the data nodes (proto/tls.ts); null/absent: plaintext. */
  tls?: TlsMaterial | null;
}

export interface WriteAck {
  pg: number;
  seq: number;
  epoch: number;
  concern: WriteConcern;
}

export interface ReadResult {
  data: Buffer;
  seq: number;
  epoch: number;
}

export const defaultConnectionsPerNode = 32;
export const defaultPipelining = 4;
export const defaultMaxAttempts = 4;
export const defaultRetryBaseDelayMs = 20;
export const defaultRequestTimeoutMs = 30_000;
export const defaultMaxInFlight = 64;
/** Backoff between retries grows up to this. */
export const maxRetryDelayMs = 500;

/** Codes that mean the client's placement is out of date: read it again, then retry at once. */
export const refreshCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['STALE_EPOCH', 'NOT_PRIMARY', 'NODE_NOT_FOUND']);
/** Codes after which a retry can succeed: the placement moved, or a node was briefly away (after a backoff). */
export const retryCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([...refreshCodes, 'UNAVAILABLE', 'TIMEOUT']);

/** Writes up to this size are coalesced into batch requests; larger ones stream on their own. */
export const coalesceBelowBytes = 64 * 1024;
export const defaultWriteBatchesInFlight = 1;
export const maxWriteBatchEntries = 256;
/** Bodies per batch request: well under what a primary accepts in one batch (block-server.ts). */
export const maxWriteBatchBytes = 8 * 1024 * 1024;

interface WriteQueue {
  items: QueuedWrite[];
  inFlight: number;
  /** A pump is scheduled for the end of this event-loop turn. */
  flushQueued: boolean;
}

interface QueuedWrite {
  meta: BlockBatchFrameMeta;
  data: Uint8Array | undefined;
  resolve: (a: WriteAck) => void;
  reject: (e: unknown) => void;
}

export class BlockClient {
  private readonly pools = new Map<string, Pool>();
  private readonly writeQueues = new Map<string, WriteQueue>();
  private closed = false;
  private readonly o: Required<Omit<BlockClientOptions, 'placement'>>;

  constructor(private readonly opts: BlockClientOptions) {
    this.o = {
      connectionsPerNode: opts.connectionsPerNode ?? defaultConnectionsPerNode,
      pipelining: opts.pipelining ?? defaultPipelining,
      maxAttempts: opts.maxAttempts ?? defaultMaxAttempts,
      retryBaseDelayMs: opts.retryBaseDelayMs ?? defaultRetryBaseDelayMs,
      requestTimeoutMs: opts.requestTimeoutMs ?? defaultRequestTimeoutMs,
      maxInFlight: opts.maxInFlight ?? defaultMaxInFlight,
      coalesceWrites: opts.coalesceWrites ?? true,
      writeBatchesInFlight: opts.writeBatchesInFlight ?? defaultWriteBatchesInFlight,
      tls: opts.tls ?? null,
    };
  }

  private pool(address: string): Pool {
    let p = this.pools.get(address);
    if (p === undefined) {
      const connect = undiciConnectOptions(this.o.tls);
      p = new Pool(httpUrl(address, this.o.tls), {
        ...(connect === undefined ? {} : { connect }),
        connections: this.o.connectionsPerNode, pipelining: this.o.pipelining, keepAliveTimeout: 60_000,
        headersTimeout: this.o.requestTimeoutMs, bodyTimeout: this.o.requestTimeoutMs,
      });
      this.pools.set(address, p);
    }
    return p;
  }

  /** The PG and primary a block routes to under a placement. */
  route(p: VolumePlacement, a: BlockAddress): { pg: number; epoch: number; address: string } {
    const pg = pgOf(a.inode, a.blockNo, p.pgCount);
    const g = groupOf(p, pg);
    return { pg, epoch: g.epoch, address: nodeOf(p, g.primary).address };
  }

  async writeBlock(volumeId: string, inode: number, blockNo: number, data: Uint8Array, concern: WriteConcern): Promise<WriteAck> {
    return this.primaryWrite('PUT', { volumeId, inode, blockNo }, data, concern);
  }

  async deleteBlock(volumeId: string, inode: number, blockNo: number, concern: WriteConcern): Promise<WriteAck> {
    return this.primaryWrite('DELETE', { volumeId, inode, blockNo }, undefined, concern);
  }

  /** Writes many blocks with at most `maxInFlight` outstanding; resolves when all are acknowledged. */
  async writeBlocks(volumeId: string, blocks: readonly { inode: number; blockNo: number; data: Uint8Array }[], concern: WriteConcern): Promise<WriteAck[]> {
    return this.mapBounded(blocks, (b) => this.writeBlock(volumeId, b.inode, b.blockNo, b.data, concern));
  }

  async readBlocks(volumeId: string, blocks: readonly { inode: number; blockNo: number }[]): Promise<ReadResult[]> {
    return this.mapBounded(blocks, (b) => this.readBlock(volumeId, b.inode, b.blockNo));
  }

  /** Reads from the PG's primary, which has every acknowledged write. */
  async readBlock(volumeId: string, inode: number, blockNo: number): Promise<ReadResult> {
    const a = { volumeId, inode, blockNo };
    return this.withRetry(volumeId, async (p) => {
      const r = this.route(p, a);
      const res = await this.pool(r.address).request({ method: 'GET', path: `${blockPath(a)}?epoch=${r.epoch}`, idempotent: true });
      if (res.statusCode !== 200) throw await errorFromResponse(res);
      const data = Buffer.from(await res.body.arrayBuffer());
      return { data, seq: Number(res.headers[Header.seq]), epoch: Number(res.headers[Header.epoch]) };
    });
  }

  private async primaryWrite(method: 'PUT' | 'DELETE', a: BlockAddress, data: Uint8Array | undefined, concern: WriteConcern): Promise<WriteAck> {
    if (!writeConcernOrder.includes(concern)) {
      throw new GalleonError('INVALID_ARGUMENT', `unknown write concern ${JSON.stringify(concern)}`, { hint: `use one of ${writeConcernOrder.join(', ')}` });
    }
    return this.withRetry(a.volumeId, async (p) => {
      const r = this.route(p, a);
      if (this.o.coalesceWrites && (data === undefined || data.byteLength <= coalesceBelowBytes)) {
        return this.enqueueWrite(r.address, { volumeId: a.volumeId, inode: a.inode, blockNo: a.blockNo, epoch: r.epoch, op: method === 'PUT' ? 'put' : 'delete', concern }, data);
      }
      const res = await this.pool(r.address).request({
        method, path: `${blockPath(a)}?epoch=${r.epoch}&concern=${concern}`,
        headers: { 'content-type': 'application/octet-stream' },
        body: data === undefined ? null : data,
        // Never pipelined: a broken pipeline must not replay a write behind a later one.
        idempotent: false,
      });
      if (res.statusCode !== 200) throw await errorFromResponse(res);
      return (await res.body.json()) as WriteAck;
    });
  }

  /**
   * Small writes to one primary are coalesced: writes queued during one turn of the event loop
   * leave together at its end, and while `writeBatchesInFlight` batch requests are out, new
   * writes wait for the next free slot (no timer: a batch goes as soon as a slot is free). Each
   * write keeps its own epoch, concern and result; the primary handles them as independent
   * writes.
   */
  private enqueueWrite(address: string, meta: BlockBatchFrameMeta, data: Uint8Array | undefined): Promise<WriteAck> {
    let q = this.writeQueues.get(address);
    if (q === undefined) { q = { items: [], inFlight: 0, flushQueued: false }; this.writeQueues.set(address, q); }
    const queue = q;
    return new Promise<WriteAck>((resolve, reject) => {
      queue.items.push({ meta, data, resolve, reject });
      this.schedulePump(address, queue);
    });
  }

  private schedulePump(address: string, q: WriteQueue): void {
    if (q.flushQueued) return;
    q.flushQueued = true;
    setImmediate(() => { q.flushQueued = false; this.pumpWrites(address, q); });
  }

  private pumpWrites(address: string, q: WriteQueue): void {
    if (this.closed) {
      // Queued before close() and not yet sent: never open a new connection for them.
      for (const w of q.items.splice(0)) w.reject(new GalleonError('UNAVAILABLE', 'the block client was closed before the write was sent', { hint: 'retry with an open client' }));
      return;
    }
    while (q.inFlight < this.o.writeBatchesInFlight && q.items.length > 0) {
      let n = 0;
      let bytes = 0;
      while (n < q.items.length && n < maxWriteBatchEntries) {
        const b = q.items[n]?.data?.byteLength ?? 0;
        if (n > 0 && bytes + b > maxWriteBatchBytes) break;
        bytes += b;
        n++;
      }
      const batch = q.items.splice(0, n);
      q.inFlight++;
      void this.sendWriteBatch(address, batch).finally(() => { q.inFlight--; this.schedulePump(address, q); });
    }
  }

  private async sendWriteBatch(address: string, batch: QueuedWrite[]): Promise<void> {
    const { chunks, length } = encodeBlockBatch(batch);
    try {
      const res = await this.pool(address).request({
        method: 'POST', path: '/v1/blocks-batch', body: chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, length),
        headers: { 'content-type': 'application/octet-stream' }, idempotent: false,
      });
      if (res.statusCode !== 200) throw await errorFromResponse(res);
      const results = decodeBlockBatchAnswers(Buffer.from(await res.body.arrayBuffer()));
      batch.forEach((w, i) => {
        const r = results[i];
        if (r === undefined) w.reject(new GalleonError('INTERNAL', `primary ${address} answered ${results.length} results for ${batch.length} writes`));
        else if ('error' in r) w.reject(GalleonError.fromJSON(r.error));
        else w.resolve(r);
      });
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }

  private async withRetry<T>(volumeId: string, fn: (p: VolumePlacement) => Promise<T>): Promise<T> {
    let placement = await this.opts.placement.getPlacement(volumeId);
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(placement);
      } catch (raw) {
        const err = isGalleonError(raw) ? raw : new GalleonError('UNAVAILABLE', 'data node unreachable', { cause: raw, hint: 'the node may be down; retry or check the cluster status' });
        if (!retryCodes.has(err.code) || attempt >= this.o.maxAttempts) throw err;
        if (refreshCodes.has(err.code)) {
          placement = await this.opts.placement.refresh(volumeId);
        } else {
          await sleep(Math.min(maxRetryDelayMs, this.o.retryBaseDelayMs * 2 ** (attempt - 1)));
          // An unreachable or refusing primary may have been replaced meanwhile: ask again.
          placement = await this.opts.placement.refresh(volumeId).catch(() => placement);
        }
      }
    }
  }

  private async mapBounded<I, O>(items: readonly I[], fn: (i: I) => Promise<O>): Promise<O[]> {
    const out = new Array<O>(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const i = next++;
        const item = items[i] as I;
        out[i] = await fn(item);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.maxInFlight, items.length) }, worker));
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}

