/**
 * The data-plane client: routes `(volume, inode, blockNo)` to its PG and the PG's primary,
 * sends the placement epoch with every request, refreshes the placement on STALE_EPOCH or
 * NOT_PRIMARY (typed retry sets below) and retries with a bound. One keep-alive undici
 * Pool per node, pipelining idempotent reads.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { withNodeCredential } from '../credential.js';
import { GalleonError, invariant, isGalleonError, type ErrorCode } from '../../proto/errors.js';
import { httpUrl, undiciConnect, type TlsMaterial } from '../../proto/tls.js';
import { writeConcernOrder } from '../../proto/metadata-types.js';
import type { PlacementGroup, WriteConcern } from '../../proto/metadata-types.js';
import { pgOf } from '../logic/routing.js';
import { groupOf, nodeOf } from '../placement.js';
import type { PlacementSource, VolumePlacement } from '../placement.js';
import type { BlockAddress } from '../store/types.js';
import type { VolumeView } from '../logic/snapshot-versions.js';
import { blockPath, decodeBlockBatchAnswers, decodeRangeAnswer, encodeBlockBatch, errorFromResponse, Header, intParam, maxRangeReadBlocks } from '../wire.js';
import type { BlockBatchFrameMeta, RangeEntry } from '../wire.js';
import { blocksPerObject } from '../logic/routing.js';
import { generationOf, sealOverheadBytes } from './block-cipher.js';
import { dropsKey, type VolumeCipher, type VolumeKeyring } from './keyring.js';
import { defaultFreshnessMode, judgeNotFound, judgeServedBody, judgeWitnesses, type FreshnessMode, type NotFoundClaim, type ReplicaHead } from '../logic/freshness.js';
import {
  defaultHeadTimeoutMs, freshnessRetryBaseMs, HeadBatcher, maxFreshnessRounds, notFoundClaimOf, provesOtherWrite, staleReadError, uncheckedReadError, type NodeGet, type StaleReadEvent, type StaleReadSink,
} from './freshness.js';

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
  /** Sent as `authorization: Bearer <token>` on every request (issue #12): the node credential or a user's token. */
  token?: string;
  /**
   * Batch requests on the wire per primary. One (the default) lets writes pile up into big
   * batches while the previous one is out: a request costs far more CPU than a small write.
   */
  writeBatchesInFlight?: number;
  /**
   * Seals the blocks of encrypted volumes (AES-256-GCM, README "Encryption"). Without one, the
   * client writes bodies as given: only for tests and tools on plain volumes.
   */
  keyring?: VolumeKeyring;
  /** Mutual TLS with the data nodes (proto/tls.ts); null/absent: plaintext. */
  tls?: TlsMaterial | null;
  /**
   * Encrypted reads ask the PG's other in-sync replicas for their block head and refuse a body
   * they contradict (README "Rollback"). Default true; false only to measure what it costs.
   */
  checkFreshness?: boolean;
  /** How long a replica's head answer may take (`defaultHeadTimeoutMs`). */
  headTimeoutMs?: number;
  /** Where a contradicted read is reported (the daemon: log, metric, audit). Absent: only the error. */
  staleReads?: StaleReadSink;
  /**
   * A checked read that no other in-sync replica answered in time (README "No witness"):
   * `best-effort` (default) serves it and counts it; `strict` refuses it with FAILED_PRECONDITION.
   */
  freshness?: FreshnessMode;
  /** Blocks per `POST /v1/block-range` of `readBlockRange` (1..`maxRangeReadBlocks`; `defaultRangeRequestBlocks`). */
  rangeRequestBlocks?: number;
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

/** A block that does not exist reads as null in a range (a hole); any other error stands. */
function nullIfNotFound(err: unknown): null {
  if (isGalleonError(err, 'BLOCK_NOT_FOUND')) return null;
  throw err;
}

/** A clone of a clone of … deeper than this is refused (each level is one more read on a miss). */
export const maxCloneDepth = 64;

export type VersionRead = { kind: 'block'; block: ReadResult } | { kind: 'absent' } | { kind: 'deleted'; epoch: number };

/** What a PG's primary answered a checked read: a body, or "not found" (what it said of it, and what the read returns if no replica contradicts it). */
type PrimaryAnswer<T> = { headers: IncomingHttpHeaders; body: Buffer } | { notFound: NotFoundClaim; missing: T };

/** What `contradiction` found: the event (null: nothing contradicts), and the heads left once unproven claims were set aside. */
interface Contradiction {
  event: StaleReadEvent | null;
  left: ReplicaHead[];
}

/** A cut at or above this is the live state (snapshot-reads.ts `liveBelow`): checked with the live heads, no version reads. */
const liveCut = 2 ** 48 - 1;

const versionHeader = 'x-galleon-version';
const versionPath = (a: BlockAddress): string => `/v1/versions/${encodeURIComponent(a.volumeId)}/${a.inode}/${a.blockNo}`;

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
/**
 * Blocks per range request (2 MiB at 128 KiB blocks): smaller than an object, so a read-ahead
 * window's requests run side by side and its first blocks arrive before its last are read (a
 * mount's reads waited on a fetch in flight 3× less often than with one 64-block request per
 * object: test/bench/README.md, "range reads").
 */
export const defaultRangeRequestBlocks = 16;
/** The largest body `writeBlocks(…, { batch: true })` sends in a batch request; larger ones go alone. */
export const maxBatchedBlockBytes = 1024 * 1024 + sealOverheadBytes;
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
  private readonly pools = new Map<string, Dispatcher>();
  private readonly writeQueues = new Map<string, WriteQueue>();
  private closed = false;
  private readonly o: Required<Omit<BlockClientOptions, 'placement' | 'keyring' | 'token' | 'staleReads'>>;

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
      checkFreshness: opts.checkFreshness ?? true,
      headTimeoutMs: opts.headTimeoutMs ?? defaultHeadTimeoutMs,
      freshness: opts.freshness ?? defaultFreshnessMode,
      rangeRequestBlocks: opts.rangeRequestBlocks ?? defaultRangeRequestBlocks,
    };
    invariant(Number.isInteger(this.o.rangeRequestBlocks) && this.o.rangeRequestBlocks >= 1 && this.o.rangeRequestBlocks <= maxRangeReadBlocks, `rangeRequestBlocks ${this.o.rangeRequestBlocks}`);
    this.heads = new HeadBatcher((address, path, body, timeoutMs) => this.nodePost(address, path, body, timeoutMs), this.o.headTimeoutMs);
  }

  private pool(address: string): Dispatcher {
    let p = this.pools.get(address);
    if (p === undefined) {
      const connect = undiciConnect(this.o.tls);
      p = withNodeCredential(new Pool(httpUrl(address, this.o.tls), {
        ...(connect === undefined ? {} : { connect }),
        connections: this.o.connectionsPerNode, pipelining: this.o.pipelining, keepAliveTimeout: 60_000,
        headersTimeout: this.o.requestTimeoutMs, bodyTimeout: this.o.requestTimeoutMs,
      }), this.opts.token);
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

  async writeBlock(volumeId: string, inode: number, blockNo: number, data: Uint8Array, concern: WriteConcern, batch = false): Promise<WriteAck> {
    const a = { volumeId, inode, blockNo };
    // Sealed once: a retry resends the same ciphertext (same nonce, same bytes), never re-seals.
    const body = await this.withKey(volumeId, async (c) => (c === null ? data : c.seal(a, data)));
    return this.primaryWrite('PUT', a, body, concern, batch).catch((err: unknown) => { this.dropKeyOn(volumeId, err); throw err; });
  }

  /**
   * Whether the volume is encrypted; throws KEY_UNAVAILABLE when it is and its data key cannot
   * be unwrapped here (a mount checks this first, so a wrong key fails the mount, not a later read).
   */
  async checkKey(volumeId: string): Promise<boolean> {
    return this.withKey(volumeId, (c) => c !== null);
  }

  /** Runs `fn` with the volume's cipher (null: plain volume); a deleted volume's key is dropped. */
  private async withKey<T>(volumeId: string, fn: (c: Awaited<ReturnType<VolumeKeyring['cipherFor']>>) => T | Promise<T>): Promise<T> {
    const k = this.opts.keyring;
    if (k === undefined) return fn(null);
    try {
      return await fn(await k.cipherFor(volumeId));
    } catch (err) {
      this.dropKeyOn(volumeId, err);
      throw err;
    }
  }

  async deleteBlock(volumeId: string, inode: number, blockNo: number, concern: WriteConcern): Promise<WriteAck> {
    return this.primaryWrite('DELETE', { volumeId, inode, blockNo }, undefined, concern);
  }

  /**
   * Writes many blocks with at most `maxInFlight` outstanding; resolves when all are acknowledged.
   * With `batch` (a mount's flush, issue #14), blocks of any size up to `maxBatchedBlockBytes`
   * leave in `POST /v1/blocks-batch` requests per primary (as coalesced small writes do, bounded by
   * `maxWriteBatchEntries` / `maxWriteBatchBytes`), even from a client that does not coalesce:
   * a flush of 16 MiB is a few requests instead of one PUT per block.
   */
  async writeBlocks(volumeId: string, blocks: readonly { inode: number; blockNo: number; data: Uint8Array }[], concern: WriteConcern, opts: { batch?: boolean } = {}): Promise<WriteAck[]> {
    const batch = opts.batch === true;
    return this.mapBounded(blocks, (b) => this.writeBlock(volumeId, b.inode, b.blockNo, b.data, concern, batch));
  }

  async readBlocks(volumeId: string, blocks: readonly { inode: number; blockNo: number }[]): Promise<ReadResult[]> {
    return this.mapBounded(blocks, (b) => this.readBlock(volumeId, b.inode, b.blockNo));
  }

  /**
   * Blocks [from, from + count) of one inode, in order: each its ReadResult, or null where the
   * block does not exist (a hole, read as zeros by a mount). One `POST /v1/block-range` per
   * `rangeRequestBlocks` inside an object (`blocksPerObject` blocks: one PG) instead of one GET per
   * block; the requests of a range run in parallel. An encrypted volume's blocks are each
   * checked against the other in-sync replicas' heads as `readBlock` checks one (asked in the same
   * turn, so one heads request per replica per range); a block the heads contradict is read again
   * alone, through the single read's rounds, which refuse it if the contradiction stays. Bodies of
   * a plain volume are views into the answer: whoever keeps one keeps that answer alive.
   */
  async readBlockRange(volumeId: string, inode: number, from: number, count: number): Promise<(ReadResult | null)[]> {
    invariant(Number.isSafeInteger(inode) && inode >= 0 && Number.isSafeInteger(from) && from >= 0 && Number.isSafeInteger(count) && count >= 0, `range ${inode}/${from}+${count}`);
    const cipher = await this.withKey(volumeId, (c) => c);
    const chunks: Promise<(ReadResult | null)[]>[] = [];
    for (let at = from; at < from + count;) {
      const n = Math.min(from + count - at, this.o.rangeRequestBlocks, blocksPerObject - (at % blocksPerObject));
      chunks.push(this.readObjectRange(volumeId, inode, at, n, cipher));
      at += n;
    }
    try {
      return (await Promise.all(chunks)).flat();
    } catch (err) {
      this.dropKeyOn(volumeId, err);
      throw err;
    }
  }

  /** A range inside one object: one request, or more when the primary stops at its byte limit. */
  private async readObjectRange(volumeId: string, inode: number, from: number, count: number, cipher: VolumeCipher | null): Promise<(ReadResult | null)[]> {
    const out: (ReadResult | null)[] = [];
    while (out.length < count) {
      const at = from + out.length;
      out.push(...await this.withRetry(volumeId, (p) => this.rangeRequest(p, { volumeId, inode, blockNo: at }, count - out.length, cipher)));
    }
    return out;
  }

  private async rangeRequest(p: VolumePlacement, a0: BlockAddress, count: number, cipher: VolumeCipher | null): Promise<(ReadResult | null)[]> {
    const at = (i: number): BlockAddress => ({ volumeId: a0.volumeId, inode: a0.inode, blockNo: a0.blockNo + i });
    // A clone or restored volume reads through its view, block by block (snapshot-reads.ts).
    if (p.view !== undefined) return Promise.all(Array.from({ length: count }, (_, i) => this.readThroughView(a0.volumeId, a0.inode, a0.blockNo + i).catch(nullIfNotFound)));
    const r = this.route(p, a0);
    const g = groupOf(p, r.pg);
    const others = cipher !== null && this.o.checkFreshness ? g.inSync.filter((id) => id !== g.primary && p.nodes[id] !== undefined) : null;
    // Asked before the body, in this turn: the heads of the whole range leave in one request per replica.
    const heads = others === null ? null : Array.from({ length: count }, (_, i) => Promise.all(others.map((id) => this.heads.head(id, nodeOf(p, id).address, at(i)))));
    const res = await this.pool(r.address).request({
      method: 'POST', path: `/v1/block-range/${encodeURIComponent(a0.volumeId)}`, idempotent: true,
      body: JSON.stringify({ inode: a0.inode, from: a0.blockNo, count, epoch: r.epoch }), headers: { 'content-type': 'application/json' },
      headersTimeout: this.o.requestTimeoutMs, bodyTimeout: this.o.requestTimeoutMs,
    });
    if (res.statusCode !== 200) throw await errorFromResponse(res);
    const entries = decodeRangeAnswer(Buffer.from(await res.body.arrayBuffer()));
    if (entries.length < 1 || entries.length > count) throw new GalleonError('INTERNAL', `data node ${g.primary} answered ${entries.length} blocks for a range of ${count}`);
    const checked = others === null ? null : { pg: r.pg, primary: g.primary, others };
    return Promise.all(entries.map((e, i) => this.rangeEntry(p, at(i), checked, e, cipher, heads?.[i] ?? null)));
  }

  /** One block of a range answer, opened and checked as `readBlock` would (`checked` null: no check). */
  private async rangeEntry(p: VolumePlacement, a: BlockAddress, checked: { pg: number; primary: string; others: string[] } | null, e: RangeEntry, cipher: VolumeCipher | null, heads: Promise<ReplicaHead[]> | null): Promise<ReadResult | null> {
    if (cipher === null) return e.kind === 'block' ? { data: e.data, seq: e.seq, epoch: e.epoch } : null;
    const read = e.kind === 'block' ? { data: await cipher.open(a, e.data), seq: e.seq, epoch: e.epoch } : null;
    if (checked === null || heads === null) return read;
    const served: StaleReadEvent['served'] = e.kind === 'block' ? { gen: generationOf(a, e.data), seq: e.seq } : { notFound: { deletedSeq: e.deletedSeq, appliedSeq: e.appliedSeq } };
    const found = await this.contradiction(p, a, checked.primary, served, await heads, cipher, null);
    const servedSeq = e.kind === 'block' ? e.seq : e.deletedSeq;
    if (found.event === null && this.noteWitnesses(a, checked.pg, checked.primary, checked.others, found.left, servedSeq, false)) return read;
    // Contradicted, or no replica has reached the served seq yet: the single read's rounds decide
    // (a write in flight settles; a rollback is refused there).
    return this.readChecked(p, a, cipher).catch(nullIfNotFound);
  }

  /**
   * Reads from the PG's primary, which has every acknowledged write. A clone or a restored volume
   * (its placement carries a view) is read through the view: BLOCK_NOT_FOUND when it holds nothing there.
   */
  async readBlock(volumeId: string, inode: number, blockNo: number): Promise<ReadResult> {
    const placed = await this.opts.placement.getPlacement(volumeId);
    if (placed.view !== undefined) return this.readThroughView(volumeId, inode, blockNo);
    return this.readPlain(volumeId, inode, blockNo);
  }

  private async readThroughView(volumeId: string, inode: number, blockNo: number): Promise<ReadResult> {
    const { readBlockAt } = await import('./snapshot-reads.js');
    const r = await readBlockAt(this, await this.liveView(volumeId, 0), inode, blockNo);
    if (r === null) throw new GalleonError('BLOCK_NOT_FOUND', `block ${volumeId}/${inode}/${blockNo} does not exist`, { hint: 'a block that was never written reads as absent; the caller treats it as zeros', details: { volumeId, inode, blockNo } });
    return r;
  }

  /** The live view of a volume from the placements (cached like them), its clone parents included. */
  private async liveView(volumeId: string, depth: number): Promise<VolumeView> {
    if (depth > maxCloneDepth) throw new GalleonError('FAILED_PRECONDITION', `clone chain of ${volumeId} is deeper than ${maxCloneDepth}`);
    const p = await this.opts.placement.getPlacement(volumeId);
    const parent = p.view?.parent ?? null;
    return {
      volumeId, below: null, restores: p.view?.restores ?? [],
      parent: parent === null ? null : { ...(await this.liveView(parent.volumeId, depth + 1)), below: parent.cut },
    };
  }

  private async readPlain(volumeId: string, inode: number, blockNo: number): Promise<ReadResult> {
    const a = { volumeId, inode, blockNo };
    return this.readRaw(a).catch((err: unknown) => { this.dropKeyOn(volumeId, err); throw err; });
  }

  /** Opens a body read from `a`'s own volume with that volume's key (null: a plain volume). */
  private async opened(a: BlockAddress, data: Buffer): Promise<Buffer> {
    return this.withKey(a.volumeId, (c) => (c === null ? data : c.open(a, data)));
  }

  /** A volume the service no longer knows was deleted: its data key leaves this process's memory. */
  private dropKeyOn(volumeId: string, err: unknown): void {
    if (this.opts.keyring !== undefined && dropsKey(err)) this.opts.keyring.forget(volumeId);
  }

  private async readRaw(a: BlockAddress): Promise<ReadResult> {
    const cipher = this.o.checkFreshness ? await this.withKey(a.volumeId, (c) => c) : null;
    return this.withRetry(a.volumeId, async (p) => {
      // A refresh (after STALE_EPOCH) may show a restore or a parent this read did not know of.
      if (p.view !== undefined) return this.readThroughView(a.volumeId, a.inode, a.blockNo);
      if (cipher !== null) return this.readChecked(p, a, cipher);
      const r = this.route(p, a);
      const res = await this.pool(r.address).request({ method: 'GET', path: `${blockPath(a)}?epoch=${r.epoch}`, idempotent: true });
      if (res.statusCode !== 200) throw await errorFromResponse(res);
      const data = await this.opened(a, Buffer.from(await res.body.arrayBuffer()));
      return { data, seq: Number(res.headers[Header.seq]), epoch: Number(res.headers[Header.epoch]) };
    });
  }

  /** GET for the freshness check (freshness.ts): its own timeout, the errors of the block API. */
  private readonly nodeGet: NodeGet = async (address, path, timeoutMs) => {
    const res = await this.pool(address).request({ method: 'GET', path, idempotent: true, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    if (res.statusCode !== 200) throw await errorFromResponse(res);
    return { headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
  };

  /** Block heads of the rollback check, batched per replica and turn (freshness.ts). */
  private readonly heads: HeadBatcher;

  /**
   * An encrypted read that a stale primary cannot roll back nor hide (README "Rollback"): the body
   * (or BLOCK_NOT_FOUND) from the primary and, in parallel, the block heads of the PG's other
   * in-sync replicas. A contradiction that persists over `maxFreshnessRounds` (a write or delete in
   * flight settles in one or two) refuses the read with INTEGRITY_ERROR; a replica's claim of
   * another body counts only once that body is fetched and opened here, so a lying replica costs a
   * fetch, never other data.
   */
  private async readChecked(p: VolumePlacement, a: BlockAddress, cipher: VolumeCipher): Promise<ReadResult> {
    const out = await this.checkedRead(p, a, cipher, { below: null, sealed: false }, (address, epoch) => this.primaryAnswer(address, `${blockPath(a)}?epoch=${epoch}`));
    if ('missing' in out) throw out.missing;
    return out.read;
  }

  /**
   * The check's rounds for a live read (`below` null) or a read as of a cut (the heads and any
   * proof asked below the same cut): `fetch` asks the primary; `missing` is what its "not found"
   * becomes once no replica contradicts it. `sealed`: the body is authenticated here, judged, and
   * returned as stored (backups keep ciphertext only).
   */
  private async checkedRead<T>(p: VolumePlacement, a: BlockAddress, cipher: VolumeCipher, o: { below: number | null; sealed: boolean }, fetch: (address: string, epoch: number) => Promise<PrimaryAnswer<T>>): Promise<{ read: ReadResult } | { missing: T }> {
    const { below } = o;
    const r = this.route(p, a);
    const g = groupOf(p, r.pg);
    const others = g.inSync.filter((id) => id !== g.primary && p.nodes[id] !== undefined);
    for (let round = 1; ; round++) {
      const heads = Promise.all(others.map((id) => this.heads.head(id, nodeOf(p, id).address, a, below)));
      const answer = await fetch(r.address, r.epoch);
      let found: Contradiction;
      let read: ReadResult | null = null;
      if ('notFound' in answer) {
        found = await this.contradiction(p, a, g.primary, { notFound: answer.notFound }, await heads, cipher, below);
      } else {
        // The primary's body must authenticate at this address first: a forged one is refused as before.
        const data = await cipher.open(a, answer.body);
        // A primary that names no seq is judged as the oldest write: it cannot dodge the delete check that way.
        read = { data: o.sealed ? answer.body : data, seq: intParam(Header.seq, answer.headers[Header.seq], 0), epoch: Number(answer.headers[Header.epoch]) };
        found = await this.contradiction(p, a, g.primary, { gen: generationOf(a, answer.body), seq: read.seq }, await heads, cipher, below);
      }
      const event = found.event;
      const servedSeq = 'notFound' in answer ? answer.notFound.deletedSeq : read?.seq ?? null;
      if (event === null && this.noteWitnesses(a, r.pg, g.primary, others, found.left, servedSeq, round >= maxFreshnessRounds)) {
        if ('notFound' in answer) return { missing: answer.missing };
        invariant(read !== null, 'a found block was read');
        return { read };
      }
      if (event !== null && round >= maxFreshnessRounds) {
        this.opts.staleReads?.record(event);
        throw staleReadError(event);
      }
      // A write or delete in flight reaches the primary (or the replicas) within a round or two; a rollback stays.
      await sleep(freshnessRetryBaseMs * 2 ** (round - 1));
    }
  }

  /** The primary's body, or its BLOCK_NOT_FOUND with what the 404 said of the absence; any other error throws. */
  private async primaryAnswer(address: string, path: string): Promise<PrimaryAnswer<GalleonError>> {
    const res = await this.pool(address).request({ method: 'GET', path, idempotent: true, headersTimeout: this.o.requestTimeoutMs, bodyTimeout: this.o.requestTimeoutMs });
    if (res.statusCode === 200) return { headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    const error = await errorFromResponse(res);
    if (error.code !== 'BLOCK_NOT_FOUND') throw error;
    return { notFound: notFoundClaimOf(res.headers), missing: error };
  }

  /** The primary's version as of a cut, or its `absent` / `deleted` with what it said of them (a tombstone's seq, its watermark). */
  private async versionAnswer(address: string, path: string): Promise<PrimaryAnswer<Exclude<VersionRead, { kind: 'block' }>>> {
    const res = await this.pool(address).request({ method: 'GET', path, idempotent: true, headersTimeout: this.o.requestTimeoutMs, bodyTimeout: this.o.requestTimeoutMs });
    if (res.statusCode !== 200) throw await errorFromResponse(res);
    const body = Buffer.from(await res.body.arrayBuffer());
    const kind = res.headers[versionHeader];
    if (kind === 'absent') return { notFound: notFoundClaimOf(res.headers), missing: { kind } };
    if (kind === 'deleted') return { notFound: notFoundClaimOf(res.headers), missing: { kind, epoch: Number(res.headers[Header.epoch]) } };
    return { headers: res.headers, body };
  }

  /**
   * What contradicts the primary's answer (a body, or not found), or null. A replica's claim of
   * another write counts once its body is shown; a claim it cannot show is reported and set aside
   * (one it withdraws, answering not found for the body, is set aside unreported), and the others
   * judged again.
   */
  private async contradiction(p: VolumePlacement, a: BlockAddress, primary: string, served: StaleReadEvent['served'], heads: ReplicaHead[], cipher: VolumeCipher, below: number | null): Promise<Contradiction> {
    for (let left = heads; ;) {
      const v = 'gen' in served ? judgeServedBody(served, left) : judgeNotFound(served.notFound, left);
      if (v.kind === 'fresh' || v.kind === 'absent') return { event: null, left };
      if (v.kind === 'deleted-after') return { event: { address: a, reason: 'deleted-after', node: primary, witness: v.node, served, shown: { seq: v.seq } }, left };
      const shown = await provesOtherWrite(this.nodeGet, nodeOf(p, v.node).address, a, 'gen' in served ? served.gen : null, cipher, this.o.headTimeoutMs, below);
      if (shown !== null && shown !== 'withdrawn') return { event: { address: a, reason: 'gen' in served ? 'stale-body' : 'hidden-block', node: primary, witness: v.node, served, shown: { gen: shown, seq: v.seq } }, left };
      if (shown === null) this.opts.staleReads?.record({ address: a, reason: 'unproven-claim', node: v.node, witness: primary, served, shown: { gen: v.gen, seq: v.seq } });
      left = left.filter((h) => h.node !== v.node);
    }
  }

  /**
   * A read nobody contradicted: was anybody there to? With no other in-sync replica answering, or
   * none that has reached `servedSeq` by the `final` round (README "No witness"), best-effort
   * serves it and counts it; strict refuses it. False: replicas answered below the served seq,
   * ask again.
   */
  private noteWitnesses(a: BlockAddress, pg: number, primary: string, asked: string[], left: readonly ReplicaHead[], servedSeq: number | null = null, final = true): boolean {
    const w = judgeWitnesses(this.o.freshness, left, servedSeq, final);
    if (w.kind === 'checked') return true;
    if (w.kind === 'behind') return false;
    const e = { address: a, pg, primary, asked, outcome: w.action === 'serve' ? 'served' as const : 'refused' as const, why: w.why, servedSeq };
    this.opts.staleReads?.unchecked?.(e);
    if (w.action === 'refuse') throw uncheckedReadError(e, this.o.headTimeoutMs);
    return true;
  }

  /**
   * The block as of a cut (issue #11): the newest version written at an epoch below `below`, from
   * the PG's primary. `absent`: nothing below the cut; `deleted`: deleted as of the cut. Resolving a
   * snapshot, a clone or a restored volume into such reads is snapshot-reads.ts. With `sealed`, an
   * encrypted volume's body is returned as stored, not opened.
   */
  async readVersion(volumeId: string, inode: number, blockNo: number, below: number, opts: { sealed?: boolean } = {}): Promise<VersionRead> {
    const a = { volumeId, inode, blockNo };
    // Checked like a live read (README "Rollback check"): the heads and any proof below the same cut.
    // A sealed read (a backup) is checked too: the body is authenticated and judged here, and kept sealed.
    const cipher = this.o.checkFreshness ? await this.withKey(volumeId, (c) => c) : null;
    return this.withRetry(volumeId, async (p) => {
      if (cipher !== null) {
        const out = await this.checkedRead(p, a, cipher, { below: below >= liveCut ? null : below, sealed: opts.sealed === true }, (address, epoch) => this.versionAnswer(address, `${versionPath(a)}?below=${below}&epoch=${epoch}`));
        return 'missing' in out ? out.missing : { kind: 'block', block: out.read };
      }
      const r = this.route(p, a);
      const res = await this.pool(r.address).request({ method: 'GET', path: `${versionPath(a)}?below=${below}&epoch=${r.epoch}`, idempotent: true });
      if (res.statusCode !== 200) throw await errorFromResponse(res);
      const kind = res.headers[versionHeader];
      const data = Buffer.from(await res.body.arrayBuffer());
      if (kind === 'absent') return { kind };
      if (kind === 'deleted') return { kind, epoch: Number(res.headers[Header.epoch]) };
      // A version is sealed with the key of the volume that wrote it (a clone's parent: its own).
      // `sealed`: the body as the node holds it (backups store ciphertext only).
      return { kind: 'block', block: { data: opts.sealed === true ? data : await this.opened(a, data), seq: Number(res.headers[Header.seq]), epoch: Number(res.headers[Header.epoch]) } };
    });
  }

  /**
   * Every block address of the volume with a live entry or a kept version (a superset of what any
   * cut holds: readVersion says which exist there). Each PG's primary answers for its own PGs.
   */
  async listVolumeBlocks(volumeId: string): Promise<{ inode: number; blockNo: number }[]> {
    // An encrypted volume's list is the union with its other in-sync replicas' (README "Rollback
    // check", backups): a primary that dropped a block from its index does not list it, and the
    // checked read of that address is what names it. A replica that does not answer adds nothing.
    // (A key this node cannot open lists as before: the reads that follow say KEY_UNAVAILABLE; a reaper needs no key.)
    const witnessed = this.o.checkFreshness && await this.withKey(volumeId, (c) => c !== null).catch(() => false);
    // Retried like a read: a primary that just restarted, or moved, answers after a refresh or a backoff.
    return this.withRetry(volumeId, async (p) => {
      const seen = new Map<string, { inode: number; blockNo: number }>();
      const add = (nodeId: string, blocks: [number, number][], holds: (g: PlacementGroup) => boolean): void => {
        for (const [inode, blockNo] of blocks) if (holds(groupOf(p, pgOf(inode, blockNo, p.pgCount)))) seen.set(`${inode}/${blockNo}`, { inode, blockNo });
      };
      for (const nodeId of new Set(p.groups.map((g) => g.primary))) add(nodeId, await this.volumeBlocksOf(p, nodeId, volumeId), (g) => g.primary === nodeId);
      if (witnessed) {
        const others = [...new Set(p.groups.flatMap((g) => g.inSync.filter((id) => id !== g.primary && p.nodes[id] !== undefined)))];
        const lists = await Promise.all(others.map((id) => this.volumeBlocksOf(p, id, volumeId).catch(() => [])));
        others.forEach((id, i) => add(id, lists[i] ?? [], (g) => g.primary !== id && g.inSync.includes(id)));
      }
      return [...seen.values()].sort((x, y) => x.inode - y.inode || x.blockNo - y.blockNo);
    });
  }

  /** What one node lists of a volume (every PG of it that node holds); an entry that is not two block numbers is dropped. */
  private async volumeBlocksOf(p: VolumePlacement, nodeId: string, volumeId: string): Promise<[number, number][]> {
    const res = await this.pool(nodeOf(p, nodeId).address).request({ method: 'GET', path: `/v1/volume-blocks/${encodeURIComponent(volumeId)}`, idempotent: true });
    if (res.statusCode !== 200) throw await errorFromResponse(res);
    const blocks = ((await res.body.json()) as { blocks?: unknown } | null)?.blocks;
    if (!Array.isArray(blocks)) throw new GalleonError('UNAVAILABLE', `data node ${nodeId} answered volume-blocks without a block list`, { hint: 'check that node\'s version and log' });
    const isNo = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
    return blocks.filter((b): b is [number, number] => Array.isArray(b) && b.length === 2 && isNo(b[0]) && isNo(b[1]));
  }

  private async primaryWrite(method: 'PUT' | 'DELETE', a: BlockAddress, data: Uint8Array | undefined, concern: WriteConcern, batch = false): Promise<WriteAck> {
    if (!writeConcernOrder.includes(concern)) {
      throw new GalleonError('INVALID_ARGUMENT', `unknown write concern ${JSON.stringify(concern)}`, { hint: `use one of ${writeConcernOrder.join(', ')}` });
    }
    return this.withRetry(a.volumeId, async (p) => {
      const r = this.route(p, a);
      // A sealed body is its plaintext plus the seal: the same writes coalesce with or without encryption.
      const batchBelow = batch ? maxBatchedBlockBytes : this.o.coalesceWrites ? coalesceBelowBytes + sealOverheadBytes : -1;
      if (data === undefined ? batchBelow >= 0 : data.byteLength <= batchBelow) {
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

  /** A JSON POST to a data node's admin route (fence, prune), with this client's credential. */
  /** What one data node itself holds of a block: its newest entry below `below`, with no primary check (diagnostics, tests). */
  async heldOn(address: string, volumeId: string, inode: number, blockNo: number, below = 2 ** 48 - 1): Promise<'block' | 'deleted' | 'absent'> {
    const res = await this.pool(address).request({ method: 'GET', path: `/v1/versions/${encodeURIComponent(volumeId)}/${inode}/${blockNo}?below=${below}`, idempotent: true });
    if (res.statusCode !== 200) throw await errorFromResponse(res);
    await res.body.dump();
    const kind = res.headers['x-galleon-version'];
    invariant(kind === 'block' || kind === 'deleted' || kind === 'absent', `a version answer names its kind (${String(kind)})`);
    return kind;
  }

  /** A GET of JSON from a data node's block port (diagnostics, tests). */
  async nodeGetJson(address: string, path: string): Promise<unknown> {
    const res = await this.pool(address).request({ method: 'GET', path, idempotent: true });
    if (res.statusCode !== 200) throw await errorFromResponse(res);
    return res.body.json();
  }

  async nodePost(address: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const res = await this.pool(address).request({
      method: 'POST', path, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    if (res.statusCode !== 200) throw await errorFromResponse(res);
    return res.body.json();
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

