/**
 * A small synchronous cluster for scenario tests: every node's Ready is persisted to an
 * in-memory "disk" at once, its messages go into one queue, and `stabilize()` delivers until
 * nothing moves. Links can be cut per direction; nodes can crash (losing nothing, since every
 * Ready is persisted before its messages leave) and restart from their disk.
 */
import assert from 'node:assert/strict';
import type { MessageType} from '../../../metadata/raft/core/index.js';
import {
  RaftNode, Role,
  type ConfState, type Entry, type HardState, type Message, type NodeId, type RaftConfig, type RandomSource,
  type Ready, type SnapshotMeta, type ReadState,
} from '../../../metadata/raft/core/index.js';

export function seqRandom(seed = 1): RandomSource {
  let s = seed >>> 0 || 1;
  return {
    nextInt(max: number): number {
      s ^= s << 13; s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5; s >>>= 0;
      return s % max;
    },
  };
}

export interface Disk {
  hardState: HardState;
  snapshot: { meta: SnapshotMeta; data: Uint8Array };
  entries: Entry[];
  applied: number;
  /** The application's state: payloads applied, in order, as strings. */
  state: string[];
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function config(id: NodeId, overrides: Partial<RaftConfig> = {}, seed = 1): RaftConfig {
  return {
    id,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxInflightMessages: 256,
    maxInflightBytes: 0,
    maxMessageBytes: 1 << 20,
    maxUncommittedBytes: 0,
    random: seqRandom(seed + id.charCodeAt(id.length - 1)),
    ...overrides,
  };
}

export class Cluster {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly disks = new Map<NodeId, Disk>();
  readonly down = new Set<NodeId>();
  /** "a->b" links that drop everything. */
  readonly cut = new Set<string>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  /** Every message delivered, for scenario assertions. */
  readonly trace: Message[] = [];
  private queue: Message[] = [];

  constructor(readonly ids: NodeId[], private readonly overrides: Partial<RaftConfig> = {}, conf?: ConfState) {
    const c = conf ?? { voters: ids.slice(), learners: [] };
    for (const id of ids) {
      this.disks.set(id, {
        hardState: { term: 0, vote: null, commit: 0 },
        snapshot: { meta: { index: 0, term: 0, conf: c }, data: enc('') },
        entries: [],
        applied: 0,
        state: [],
      });
      this.start(id);
    }
  }

  node(id: NodeId): RaftNode {
    const n = this.nodes.get(id);
    assert.ok(n !== undefined, `node ${id} is up`);
    return n;
  }

  start(id: NodeId, overrides: Partial<RaftConfig> = {}): RaftNode {
    const d = this.disks.get(id);
    assert.ok(d);
    const n = new RaftNode(config(id, { ...this.overrides, ...overrides }), {
      hardState: { ...d.hardState },
      snapshotMeta: d.snapshot.meta,
      entries: d.entries.slice(),
      applied: d.applied,
    });
    if (d.snapshot.meta.index > 0) n.compact(d.snapshot.meta.index, d.snapshot.data);
    this.nodes.set(id, n);
    this.down.delete(id);
    return n;
  }

  addNode(id: NodeId, conf: ConfState = { voters: [], learners: [] }): RaftNode {
    this.disks.set(id, {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: { meta: { index: 0, term: 0, conf }, data: enc('') },
      entries: [],
      applied: 0,
      state: [],
    });
    return this.start(id);
  }

  crash(id: NodeId): void {
    this.nodes.delete(id);
    this.down.add(id);
  }

  isolate(id: NodeId): void {
    for (const other of this.disks.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Processes one Ready of `id`: persist, send, apply, advance. */
  processReady(id: NodeId): Ready {
    const n = this.node(id);
    const d = this.disks.get(id) as Disk;
    const rd = n.ready();
    this.queue.push(...rd.messagesBeforePersist);
    if (rd.snapshot !== null) {
      d.snapshot = { meta: rd.snapshot.meta, data: rd.snapshot.data };
      d.entries = [];
    }
    if (rd.entries.length > 0) {
      const first = (rd.entries[0] as Entry).index;
      const keep = first - d.snapshot.meta.index - 1;
      d.entries = d.entries.slice(0, Math.max(0, keep)).concat(rd.entries);
    }
    if (rd.hardState !== null) d.hardState = rd.hardState;
    this.queue.push(...rd.messages);
    if (rd.snapshot !== null) {
      d.state = dec(rd.snapshot.data) === '' ? [] : dec(rd.snapshot.data).split(',');
      d.applied = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.type === 'normal' && e.data.byteLength > 0) d.state.push(dec(e.data));
      d.applied = e.index;
    }
    if (rd.readStates.length > 0) {
      const list = this.readStates.get(id) ?? [];
      list.push(...rd.readStates);
      this.readStates.set(id, list);
    }
    n.advance(rd);
    return rd;
  }

  /** Delivers messages and processes Readies until the cluster is quiet. */
  stabilize(maxRounds = 10_000, afterEach?: () => void): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const [id, n] of this.nodes) {
        while (n.hasReady()) {
          this.processReady(id);
          moved = true;
        }
      }
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        moved = true;
        if (this.cut.has(`${m.from}->${m.to}`) || this.down.has(m.to)) continue;
        const target = this.nodes.get(m.to);
        if (target === undefined) continue;
        this.trace.push(m);
        target.step(m);
        afterEach?.();
      }
      if (!moved) return;
    }
    assert.fail('cluster did not stabilize');
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.node(id).tick();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.tick();
      this.stabilize();
    }
  }

  /** Campaigns on `id` and settles; asserts it won. */
  elect(id: NodeId): void {
    this.node(id).campaign();
    this.stabilize();
    assert.equal(this.node(id).status().role, Role.Leader, `${id} won the election`);
  }

  leader(): NodeId | null {
    let found: NodeId | null = null;
    for (const [id, n] of this.nodes) {
      if (n.status().role === Role.Leader && !this.isolatedFromMajority(id)) {
        found = id;
      }
    }
    return found;
  }

  private isolatedFromMajority(id: NodeId): boolean {
    let reach = 1;
    for (const other of this.nodes.keys()) if (other !== id && !this.cut.has(`${id}->${other}`)) reach++;
    return reach <= this.ids.length / 2;
  }

  propose(id: NodeId, data: string): boolean {
    const ok = this.node(id).propose(enc(data));
    this.stabilize();
    return ok;
  }

  state(id: NodeId): string[] {
    return (this.disks.get(id) as Disk).state;
  }

  messages(type: MessageType): Message[] {
    return this.trace.filter((m) => m.type === type);
  }
}
