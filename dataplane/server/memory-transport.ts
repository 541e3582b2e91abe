/**
 * `MemoryTransport`: the `PeerTransport` between data nodes of one process, for tests and
 * in-process simulations. A `MemoryNetwork` maps node addresses to what each node serves to its
 * peers (`PeerEndpoint`: its `Replicator` and store, the parts the HTTP routes of block-server.ts
 * call); a call goes straight to the target's handler, answers and errors cross as the wire would
 * carry them (errors as `GalleonError` JSON, bodies copied). An address that is not attached, or
 * is cut off (`setReachable`), fails UNAVAILABLE as an unreachable node does over HTTP. One
 * conformance suite (test/dataplane/conformance/transport.conformance.ts) runs against this and
 * against `Peers` over real block servers. A simulator may set `LinkFaults` (`setFaults`): each
 * call waits on (or is failed by) its link before it reaches the target and again before its
 * answer comes back, so delays, reordering, drops of a request or of its answer, and partitions
 * of one link are the simulator's to choose.
 */
import { GalleonError, isGalleonError } from '../../proto/errors.js';
import { writeConcernOrder, type WriteConcern } from '../../proto/metadata-types.js';
import { hostOf } from '../logic/membership.js';
import type { BlockAddress, BlockOp, BlockStore } from '../store/types.js';
import type { JournalFrameMeta } from '../wire.js';
import { pgBlockFrames } from './repair-source.js';
import type { PeerTransport, ReplicateOptions } from './peers.js';
import type { Replicator } from './replication.js';

/** What a node serves to its peers (the handlers behind the HTTP routes). */
export interface PeerEndpoint {
  replicator: Replicator;
  store: BlockStore;
}

/**
 * What a simulator does to the calls on one link (`from` the caller's address, `to` the target's).
 * Each hook resolves when the call may go on (a delay: a timer of the simulator's clock) or
 * rejects (a drop: the caller sees the rejection as the wire's error). `answer` runs after the
 * target handled the call: a drop there loses an answer to work that was done, as a timeout does.
 */
export interface LinkFaults {
  request(from: string, to: string): Promise<void>;
  answer(from: string, to: string): Promise<void>;
  /**
   * Rejects when the process at `to` dies while a call is in it (a reset connection): the call
   * fails then instead of waiting for a handler whose process is gone. Never settles otherwise.
   */
  broken(to: string): Promise<never>;
}

/** Journal entries per `fetchJournal` answer, as the block server bounds them. */
export const memoryMaxJournalEntries = 4096;

export class MemoryNetwork {
  private readonly endpoints = new Map<string, PeerEndpoint>();
  private readonly cut = new Set<string>();
  private linkFaults: LinkFaults | null = null;

  attach(address: string, endpoint: PeerEndpoint): void {
    this.endpoints.set(address, endpoint);
  }

  detach(address: string): void {
    this.endpoints.delete(address);
  }

  /** A node cut off (false) is unreachable from every other until reconnected. */
  setReachable(address: string, reachable: boolean): void {
    if (reachable) this.cut.delete(address); else this.cut.add(address);
  }

  /** Faults on every link from now on (null: none, every call goes through at once). */
  setFaults(faults: LinkFaults | null): void {
    this.linkFaults = faults;
  }

  get faults(): LinkFaults | null {
    return this.linkFaults;
  }

  /** The transport a node at `selfAddress` uses (its host is the remote address its peers see). */
  transport(selfAddress: string): MemoryTransport {
    return new MemoryTransport(this, selfAddress);
  }

  /** The endpoint at `address`, or UNAVAILABLE as Peers reports a node it cannot reach. */
  reach(from: string, address: string): PeerEndpoint {
    const e = this.endpoints.get(address);
    if (e === undefined || this.cut.has(address) || this.cut.has(from)) {
      throw new GalleonError('UNAVAILABLE', `data node ${address} is unreachable`, { hint: 'the node may be down; the metadata service will replace it' });
    }
    return e;
  }
}

/** An error as it arrives over the wire: a GalleonError rebuilt from its JSON, anything else INTERNAL. */
function overTheWire(err: unknown): GalleonError {
  if (isGalleonError(err)) return GalleonError.fromJSON(err.toJSON());
  return new GalleonError('INTERNAL', 'the peer failed to answer', { cause: err });
}

export class MemoryTransport implements PeerTransport {
  private readonly remote: string;

  constructor(private readonly network: MemoryNetwork, private readonly selfAddress: string) {
    this.remote = hostOf(selfAddress);
  }

  /** Runs `handler` against the endpoint at `address` on a later turn, as a request would. */
  private async call<T>(address: string, handler: (e: PeerEndpoint) => Promise<T>): Promise<T> {
    await Promise.resolve();
    const faults = this.network.faults;
    if (faults !== null) await faults.request(this.selfAddress, address).catch((err: unknown) => { throw overTheWire(err); });
    const e = this.network.reach(this.selfAddress, address);
    let answer: { ok: true; value: T } | { ok: false; err: GalleonError };
    try {
      answer = { ok: true, value: await (faults === null ? handler(e) : Promise.race([handler(e), faults.broken(address)])) };
    } catch (err) {
      answer = { ok: false, err: overTheWire(err) };
    }
    if (faults !== null) await faults.answer(this.selfAddress, address).catch((err: unknown) => { throw overTheWire(err); });
    if (!answer.ok) throw answer.err;
    return answer.value;
  }

  replicate(address: string, op: BlockOp, opts: ReplicateOptions): Promise<{ appliedSeq: number }> {
    const copy: BlockOp = op.kind === 'put' ? { ...op, data: Buffer.from(op.data) } : op;
    return this.call(address, async (e) => {
      const [r] = await e.replicator.replicaApplyBatch([{ op: copy, sync: opts.sync, primary: opts.primary, trimSeq: opts.trimSeq }], this.remote);
      if (r === undefined) throw new GalleonError('INTERNAL', `replica ${address} answered no result`);
      if ('error' in r) throw GalleonError.fromJSON(r.error);
      return r;
    });
  }

  /** No queue to bound: a forward is handed over at once. */
  waitForRoom(): Promise<void> {
    return Promise.resolve();
  }

  fetchJournal(address: string, volumeId: string, pg: number, fromSeq: number, epoch: number, maxBytes: number): Promise<{ meta: JournalFrameMeta; data: Buffer }[]> {
    return this.call(address, async (e) => {
      await e.replicator.admitRead(volumeId, pg, epoch);
      // A copy being replaced holds nothing for anyone (as the block server's journal route).
      const entries = e.replicator.isRejoining(volumeId, pg) ? [] : await e.store.readJournal(volumeId, pg, fromSeq, { maxEntries: memoryMaxJournalEntries, maxBytes });
      const st = await e.store.pgState(volumeId, pg);
      return entries.map((j) => ({
        meta: { seq: j.seq, kind: j.kind, inode: j.address.inode, blockNo: j.address.blockNo, epoch: j.block?.epoch ?? j.epoch ?? st.epoch },
        data: j.block === undefined ? Buffer.alloc(0) : Buffer.from(j.block.data),
      }));
    });
  }

  peer(address: string, volumeId: string, pg: number, epoch: number, from: string): Promise<{ appliedSeq: number; highestSeq: number; epoch: number }> {
    return this.call(address, (e) => e.replicator.acceptPeering(volumeId, pg, epoch, from, this.remote));
  }

  requestCatchUp(address: string, volumeId: string, pg: number, from: string, epoch: number): Promise<{ appliedSeq: number }> {
    return this.call(address, async (e) => ({ appliedSeq: await e.replicator.catchUpRequested(volumeId, pg, epoch, from, null, this.remote) }));
  }

  async blockVersion(address: string, a: BlockAddress): Promise<{ epoch: number; seq: number } | null> {
    try {
      const b = await this.call(address, (e) => e.store.read(a));
      return { epoch: b.epoch, seq: b.seq };
    } catch (err) {
      if (isGalleonError(err, 'BLOCK_NOT_FOUND')) return null;
      throw err;
    }
  }

  async writeAsClient(address: string, a: BlockAddress, data: Uint8Array, epoch: number, concern: string): Promise<void> {
    const body = Buffer.from(data);
    await this.call(address, (e) => e.replicator.primaryWrite(a, body, epoch, concernOf(concern)));
  }

  async handBackBlock(address: string, a: BlockAddress, data: Uint8Array, epoch: number, concern: string, version: { epoch: number; seq: number }): Promise<boolean> {
    const body = Buffer.from(data);
    return (await this.call(address, (e) => e.replicator.handBackWrite(a, body, epoch, concernOf(concern), version))) !== null;
  }

  fetchPgBlocks(address: string, volumeId: string, pg: number, epoch: number): Promise<{ appliedSeq: number; frames: AsyncGenerator<{ meta: JournalFrameMeta; data: Buffer }> }> {
    return this.call(address, async (e) => {
      await e.replicator.admitRead(volumeId, pg, epoch);
      // The watermark is read first: every write up to it is in the blocks iterated after.
      const st = await e.store.pgState(volumeId, pg);
      const store = e.store;
      async function* frames(): AsyncGenerator<{ meta: JournalFrameMeta; data: Buffer }> {
        for await (const { meta, data } of pgBlockFrames(store, volumeId, pg)) yield { meta, data: Buffer.from(data ?? new Uint8Array(0)) };
      }
      return { appliedSeq: st.appliedSeq, frames: frames() };
    });
  }
}

function concernOf(raw: string): WriteConcern {
  const c = writeConcernOrder.find((w) => w === raw);
  if (c !== undefined) return c;
  throw new GalleonError('INVALID_ARGUMENT', `unknown write concern ${JSON.stringify(raw)}`, { hint: 'use acknowledged, durable, replicated or distributed' });
}
