/**
 * The deterministic simulator: whole Raft clusters of the real core in one process, driven by
 * one seed. A simulated network (drops, delays, reordering, duplicates, symmetric and
 * asymmetric partitions), simulated disks (writes are durable only when the sync completes; a
 * crash loses everything not yet synced; disks can be slow), crashes and restarts, membership
 * changes, leader transfers, aggressive compaction, client writes and ReadIndex reads.
 *
 * Safety is checked after every event (see `checkNode` and the Ready hooks); liveness after the
 * faults heal. Any violation throws SimFailure with a message naming the broken property.
 */
import {
  RaftNode, MessageType, Role, EntryType, ConfChangeType, decodeConfChange,
  type ConfChange, type Entry, type HardState, type Message, type NodeId, type RaftConfig, type Ready, type Snapshot,
} from '../../metadata/raft/core/index.js';
import { EventHeap } from './heap.js';
import { Prng } from './prng.js';

export class SimFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimFailure';
  }
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new SimFailure(message);
}

export interface SimOptions {
  seed: number;
  nodes: 3 | 5;
  /** Events in the fault phase; then everything heals and liveness is checked. */
  steps: number;
  /** false: check only the symptoms (double votes, lost commits...), not the rules that prevent them. */
  directChecks?: boolean;
  /** Keep a human-readable event log (slow; for replaying one seed). */
  verbose?: boolean;
}

export interface SimStats {
  events: number;
  elections: number;
  commits: number;
  writesAcked: number;
  readsServed: number;
  snapshotsInstalled: number;
  confChanges: number;
  transfers: number;
  crashes: number;
  livenessMs: number;
}

/** Simulated time is in ms; a Raft tick is `tickMs`. */
const tickMs = 10;
const electionTicks = 10;
const heartbeatTicks = 2;
/** After the faults heal, a leader must commit a new proposal within this much simulated time. */
export const livenessBoundMs = 30 * electionTicks * tickMs;

interface Durable {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
  /** The application's state, persisted atomically with each apply. */
  applied: number;
  hash: number;
}

interface SimNode {
  id: NodeId;
  num: number;
  raft: RaftNode | null;
  incarnation: number;
  disk: Durable;
  /** The Ready being persisted (its sync is scheduled). */
  pending: Ready | null;
  diskSlowUntil: number;
  random: Prng;
  compactEvery: number;
  /** Highest term this node has promised in a message sent after persisting. */
  promisedTerm: number;
  /** Voters at the previous Ready: a commit decided just before a conf change took effect counts under them. */
  prevVoters: NodeId[];
}

type SimEvent =
  | { at: number; seq: number; kind: 'tick'; node: SimNode; inc: number }
  | { at: number; seq: number; kind: 'deliver'; msg: Message; sender: SimNode; senderInc: number; lostIfSenderCrashes: boolean }
  | { at: number; seq: number; kind: 'sync'; node: SimNode; inc: number }
  | { at: number; seq: number; kind: 'chaos' }
  | { at: number; seq: number; kind: 'crash'; node: SimNode; inc: number }
  | { at: number; seq: number; kind: 'client' };

const typeCode: Record<string, number> = Object.fromEntries(Object.values(MessageType).map((t, i) => [t, i + 1]));

function fnv(h: number, x: number): number {
  return Math.imul(h ^ (x | 0), 16777619) >>> 0;
}

function hashBytes(h: number, data: Uint8Array): number {
  let out = h;
  for (const b of data) out = fnv(out, b);
  return out;
}

function encodeState(applied: number, hash: number): Uint8Array {
  return new TextEncoder().encode(`${applied}:${hash}`);
}

function decodeState(data: Uint8Array): { applied: number; hash: number } {
  const [a, h] = new TextDecoder().decode(data).split(':');
  return { applied: Number(a), hash: Number(h) };
}

export class World {
  readonly rng: Prng;
  private readonly netRng: Prng;
  private readonly nodes: SimNode[] = [];
  private readonly byId = new Map<NodeId, SimNode>();
  private readonly queue = new EventHeap<SimEvent>();
  private seq = 0;
  now = 0;
  traceHash = 2166136261;
  readonly log: string[] = [];
  readonly stats: SimStats = { events: 0, elections: 0, commits: 0, writesAcked: 0, readsServed: 0, snapshotsInstalled: 0, confChanges: 0, transfers: 0, crashes: 0, livenessMs: 0 };

  // network faults
  private readonly blocked = new Set<string>();
  private dropRate = 0;
  private dupRate = 0;
  /** Chance that a leader crashes right after it advances its commit or wins an election: the moments where commit-rule bugs show. */
  private readonly crashAtEdgeRate: number;
  /** How often faults strike: from a storm to a drizzle, by seed. */
  private readonly chaosGapMs: readonly [number, number];
  private maxDelayMs = 5;
  private faultsOn = true;

  // global knowledge for the checks
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly commitTerm: number[] = [0];
  private globalCommit = 0;
  /** Application hash after applying index i (state-machine safety). */
  private readonly hashAt = new Map<number, number>([[0, 2166136261]]);
  /** "index:term" -> prevTerm and payload hash (log matching). */
  private readonly entryFacts = new Map<string, { prevTerm: number; payload: number }>();
  private readonly votesGranted = new Map<string, NodeId>();
  private readonly writes = new Map<string, { node: SimNode; inc: number }>();
  private ackedMaxIndex = 0;
  private readonly reads = new Map<string, { node: SimNode; inc: number; required: number }>();
  private nextClientId = 0;

  constructor(readonly opts: SimOptions) {
    this.rng = new Prng(opts.seed);
    this.netRng = this.rng.fork();
    this.crashAtEdgeRate = this.rng.pick([0, 0.01, 0.05]);
    this.chaosGapMs = this.rng.pick([[5, 40], [10, 120], [50, 300]] as const);
    this.limits = {
      heartbeatTicks: this.rng.pick([1, heartbeatTicks, 3]),
      // Production runs both; seeds without them exercise the plain-Raft paths too.
      preVote: this.rng.chance(0.8),
      checkQuorum: this.rng.chance(0.8),
      maxInflightMessages: this.rng.pick([1, 2, 4, 64]),
      maxInflightBytes: this.rng.pick([0, 64, 256]),
      maxMessageBytes: this.rng.pick([1, 16, 64, 1024]),
      maxUncommittedBytes: this.rng.pick([0, 256, 4096]),
    };
    const universe = opts.nodes + 1; // one spare, outside the configuration at first
    const ids = Array.from({ length: universe }, (_, i) => `n${i + 1}`);
    const voters = ids.slice(0, opts.nodes);
    for (let i = 0; i < universe; i++) {
      const id = ids[i] as string;
      const node: SimNode = {
        id, num: i + 1, raft: null, incarnation: 0, pending: null, diskSlowUntil: 0,
        random: this.rng.fork(),
        compactEvery: this.rng.between(3, 40),
        promisedTerm: 0,
        prevVoters: voters,
        disk: {
          hardState: { term: 0, vote: null, commit: 0 },
          snapshot: { meta: { index: 0, term: 0, conf: { voters, learners: [] } }, data: encodeState(0, 2166136261) },
          entries: [],
          applied: 0,
          hash: 2166136261,
        },
      };
      this.nodes.push(node);
      this.byId.set(id, node);
      this.boot(node);
    }
    this.schedule({ at: this.rng.between(20, 80), seq: 0, kind: 'chaos' });
    this.schedule({ at: this.rng.between(1, 10), seq: 0, kind: 'client' });
  }

  // ------------------------------------------------------------------ event loop

  private schedule(e: SimEvent): void {
    e.seq = this.seq++;
    this.queue.push(e);
  }

  /** Processes one event; returns false when nothing is left. */
  stepOnce(): boolean {
    const e = this.queue.pop();
    if (e === undefined) return false;
    check(e.at >= this.now, 'time never goes backwards');
    this.now = e.at;
    this.stats.events++;
    this.traceHash = fnv(fnv(this.traceHash, e.at), e.kind.length);
    switch (e.kind) {
      case 'tick': this.onTick(e.node, e.inc); break;
      case 'deliver':
        // A crash loses what was still in the sender's socket buffers.
        if (e.lostIfSenderCrashes && e.sender.incarnation !== e.senderInc) this.onDeliver(e.msg, true);
        else this.onDeliver(e.msg, false);
        break;
      case 'sync': this.onSync(e.node, e.inc); break;
      case 'chaos': this.onChaos(); break;
      case 'crash': if (this.faultsOn && e.inc === e.node.incarnation) this.crash(e.node); break;
      case 'client': this.onClient(); break;
    }
    return true;
  }

  runFaultPhase(): void {
    for (let i = 0; i < this.opts.steps; i++) if (!this.stepOnce()) break;
  }

  /** Heals every fault, then requires a leader to commit a fresh proposal within the bound. */
  runLiveness(): void {
    this.faultsOn = false;
    this.blocked.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.maxDelayMs = 5;
    for (const n of this.nodes) {
      n.diskSlowUntil = 0;
      if (n.raft === null) this.restart(n);
    }
    const healedAt = this.now;
    const deadline = healedAt + livenessBoundMs;
    const marker = `live-${this.opts.seed}`;
    let proposedAt = -1;
    let proposer: SimNode | null = null;
    while (this.now < deadline) {
      if (proposer !== null && proposer.raft !== null && this.markerApplied(proposer, marker)) {
        this.stats.livenessMs = this.now - healedAt;
        return;
      }
      if (proposer === null || this.now - proposedAt > 4 * electionTicks * tickMs) {
        // The leader of the highest term: a removed node may still believe it leads an old one.
        const leader = this.leader();
        if (leader?.raft?.propose(new TextEncoder().encode(marker)) === true) {
          proposer = leader;
          proposedAt = this.now;
          this.pump(leader);
        }
      }
      const before = this.now;
      while (this.now === before && this.stepOnce()) { /* process all events of this instant */ }
      if (this.queue.size === 0) break;
    }
    throw new SimFailure(`liveness: no new proposal committed within ${livenessBoundMs} ms after the faults healed`);
  }

  private liveMarkers = new Map<NodeId, Set<string>>();

  private markerApplied(n: SimNode, marker: string): boolean {
    return this.liveMarkers.get(n.id)?.has(marker) === true;
  }

  // ------------------------------------------------------------------ nodes

  private config(n: SimNode): RaftConfig {
    return { ...this.limits, id: n.id, electionTicks, random: n.random };
  }

  /** Flow-control limits vary by seed: one entry per App (maxMessageBytes 1) exposes other interleavings than big batches. */
  private readonly limits: Omit<RaftConfig, 'id' | 'random' | 'electionTicks'>;

  private boot(n: SimNode): void {
    const d = n.disk;
    n.raft = new RaftNode(this.config(n), {
      hardState: { ...d.hardState },
      snapshotMeta: d.snapshot.meta,
      entries: d.entries.slice(),
      applied: d.applied,
    });
    if (d.snapshot.meta.index > 0) n.raft.compact(d.snapshot.meta.index, d.snapshot.data);
    n.incarnation++;
    n.pending = null;
    const st = n.raft.status();
    check(st.term >= n.promisedTerm, `${n.id} restarted with term ${st.term} below the term ${n.promisedTerm} it had promised`);
    this.schedule({ at: this.now + this.rng.between(1, tickMs), seq: 0, kind: 'tick', node: n, inc: n.incarnation });
  }

  private crash(n: SimNode): void {
    if (n.raft === null) return;
    n.raft = null;
    n.pending = null; // unsynced writes are lost
    this.stats.crashes++;
    this.note(`crash ${n.id}`);
  }

  private restart(n: SimNode): void {
    if (n.raft !== null) return;
    n.random = this.rng.fork();
    this.boot(n);
    this.note(`restart ${n.id}`);
  }

  private onTick(n: SimNode, inc: number): void {
    if (n.raft === null || inc !== n.incarnation) return;
    n.raft.tick();
    this.pump(n);
    this.checkNode(n);
    this.schedule({ at: this.now + tickMs, seq: 0, kind: 'tick', node: n, inc });
  }

  private onDeliver(m: Message, senderCrashed: boolean): void {
    const to = this.byId.get(m.to);
    const from = this.byId.get(m.from);
    const lost = senderCrashed || to === undefined || to.raft === null || this.blocked.has(`${m.from}>${m.to}`)
      || (this.faultsOn && this.netRng.chance(this.dropRate));
    this.traceHash = fnv(fnv(fnv(fnv(this.traceHash, typeCode[m.type] ?? 0), m.term), m.index), lost ? 1 : 0);
    if (lost) {
      // A real transport learns that a snapshot stream failed.
      if (m.type === MessageType.Snap && from?.raft !== null && from !== undefined) {
        from.raft?.reportSnapshotFailure(m.to);
        this.pump(from);
      }
      return;
    }
    if (this.opts.verbose === true) this.note(`deliver ${m.type} ${m.from}->${m.to} t${m.term} i${m.index} lt${m.logTerm} c${m.commit} n${m.entries.length}${m.reject ? ' reject' : ''}`);
    to.raft?.step(m);
    this.pump(to);
    this.checkNode(to);
  }

  private send(from: SimNode, m: Message): void {
    const copies = this.faultsOn && this.netRng.chance(this.dupRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = this.now + this.netRng.between(1, this.maxDelayMs);
      this.schedule({ at, seq: 0, kind: 'deliver', msg: m, sender: from, senderInc: from.incarnation, lostIfSenderCrashes: this.netRng.chance(0.5) });
    }
  }

  /** Hands Readies to the simulated disk and network until the node has nothing more to do. */
  private pump(n: SimNode): void {
    while (n.raft !== null && n.pending === null && n.raft.hasReady()) {
      const rd = n.raft.ready();
      this.onReady(n, rd);
      for (const m of rd.messagesBeforePersist) {
        this.checkOutgoing(n, m);
        this.send(n, m);
      }
      if (rd.mustSync) {
        n.pending = rd;
        const slow = this.now < n.diskSlowUntil;
        const latency = slow ? this.rng.between(20, 120) : this.rng.between(0, 4);
        this.schedule({ at: this.now + latency, seq: 0, kind: 'sync', node: n, inc: n.incarnation });
        return;
      }
      this.complete(n, rd);
    }
  }

  private onSync(n: SimNode, inc: number): void {
    if (n.raft === null || inc !== n.incarnation || n.pending === null) return;
    const rd = n.pending;
    n.pending = null;
    this.complete(n, rd);
    this.pump(n);
    this.checkNode(n);
  }

  /** The Ready is durable: write it to disk, send its messages, apply, advance. */
  private complete(n: SimNode, rd: Ready): void {
    const raft = n.raft;
    check(raft !== null, 'complete on a live node');
    this.persist(n, rd);
    for (const m of rd.messages) {
      this.checkOutgoing(n, m);
      this.send(n, m);
    }
    this.apply(n, rd);
    raft.advance(rd);
    this.maybeCompact(n);
  }

  /**
   * What a message promises must already be on disk: its term (and, for a granted vote, the
   * vote). The double-vote check alone is the emergent symptom; `directChecks: false` keeps only
   * the symptoms, to measure how the simulator finds a bug without being told where to look.
   */
  private checkOutgoing(n: SimNode, m: Message): void {
    const direct = this.opts.directChecks !== false;
    if (m.type !== MessageType.PreVote && m.type !== MessageType.PreVoteResp) {
      if (direct) check(m.term <= n.disk.hardState.term, `${n.id} sent ${m.type} in term ${m.term} before that term was durable (disk has ${n.disk.hardState.term})`);
      if (m.term > n.promisedTerm) n.promisedTerm = m.term;
    }
    if (m.type === MessageType.VoteResp && !m.reject) {
      const key = `${n.id}@${m.term}`;
      const prev = this.votesGranted.get(key);
      check(prev === undefined || prev === m.to, `${n.id} voted twice in term ${m.term}: for ${prev} and ${m.to}`);
      // Durable means: this vote is on disk, or a later term is (which forbids voting in this one again).
      const hs = n.disk.hardState;
      if (direct) check(hs.term > m.term || (hs.term === m.term && hs.vote === m.to), `${n.id} granted a vote in term ${m.term} that is not durable`);
      this.votesGranted.set(key, m.to);
    }
  }

  private persist(n: SimNode, rd: Ready): void {
    const d = n.disk;
    if (rd.snapshot !== null) {
      check(rd.snapshot.meta.index > d.snapshot.meta.index || d.snapshot.meta.index === 0, `${n.id} persisted snapshot ${rd.snapshot.meta.index} behind its disk snapshot ${d.snapshot.meta.index}`);
      d.snapshot = rd.snapshot;
      d.entries = [];
    }
    if (rd.entries.length > 0) {
      const first = (rd.entries[0] as Entry).index;
      const keep = first - d.snapshot.meta.index - 1;
      check(keep >= 0 && keep <= d.entries.length, `${n.id} persisted entries from ${first} leaving a gap after disk (snap ${d.snapshot.meta.index}, ${d.entries.length} entries)`);
      for (let k = keep; k < d.entries.length; k++) {
        const old = d.entries[k] as Entry;
        const committedHere = old.index <= this.globalCommit && this.commitTerm[old.index] === old.term;
        check(!committedHere || old.term === rd.entries[k - keep]?.term, `${n.id} overwrote committed entry ${old.index} on disk`);
      }
      d.entries.length = keep;
      for (const e of rd.entries) d.entries.push(e);
    }
    if (rd.hardState !== null) {
      const old = d.hardState;
      const hs = rd.hardState;
      check(hs.term >= old.term, `${n.id} durable term went back ${old.term} -> ${hs.term}`);
      check(hs.term !== old.term || old.vote === null || hs.vote === old.vote, `${n.id} changed its durable vote in term ${hs.term}: ${old.vote} -> ${hs.vote}`);
      check(hs.commit >= old.commit, `${n.id} durable commit went back ${old.commit} -> ${hs.commit}`);
      d.hardState = hs;
    }
  }

  private apply(n: SimNode, rd: Ready): void {
    const d = n.disk;
    if (rd.snapshot !== null) {
      const s = decodeState(rd.snapshot.data);
      check(s.applied === rd.snapshot.meta.index, 'snapshot data matches its index');
      const known = this.hashAt.get(s.applied);
      check(known === undefined || known === s.hash, `state-machine safety: snapshot at ${s.applied} differs from what others applied`);
      d.applied = s.applied;
      d.hash = s.hash;
      this.stats.snapshotsInstalled++;
    }
    for (const e of rd.committedEntries) {
      if (e.index <= d.applied) continue;
      check(e.index === d.applied + 1, `${n.id} applies ${e.index} after ${d.applied}: a gap`);
      check(e.index <= this.globalCommit, `${n.id} applies ${e.index} which no leader committed (global commit ${this.globalCommit})`);
      check(this.commitTerm[e.index] === e.term, `state-machine safety: ${n.id} applies entry ${e.index} of term ${e.term}, committed was term ${this.commitTerm[e.index]}`);
      let h = fnv(fnv(d.hash, e.index), e.term);
      h = hashBytes(h, e.data);
      const known = this.hashAt.get(e.index);
      check(known === undefined || known === h, `state-machine safety: ${n.id} applied a different entry at ${e.index}`);
      this.hashAt.set(e.index, h);
      d.hash = h;
      d.applied = e.index;
      if (e.type === EntryType.ConfChange) this.stats.confChanges += 0;
      if (e.type === EntryType.Normal && e.data.byteLength > 0) {
        const key = new TextDecoder().decode(e.data);
        if (key.startsWith('live-')) {
          let set = this.liveMarkers.get(n.id);
          if (set === undefined) this.liveMarkers.set(n.id, (set = new Set()));
          set.add(key);
        }
        const w = this.writes.get(key);
        if (w !== undefined && w.node === n && w.inc === n.incarnation) {
          this.writes.delete(key);
          if (e.index > this.ackedMaxIndex) this.ackedMaxIndex = e.index;
          this.stats.writesAcked++;
        }
      }
    }
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.context);
      if (r === undefined || r.node !== n || r.inc !== n.incarnation) continue;
      this.reads.delete(rs.context);
      check(rs.index >= r.required, `linearizability: read ${rs.context} at index ${rs.index} misses a write acknowledged at ${r.required} before it started`);
      check(rs.index <= this.globalCommit, `read ${rs.context} at ${rs.index} beyond anything committed (${this.globalCommit})`);
      this.stats.readsServed++;
    }
  }

  private maybeCompact(n: SimNode): void {
    const raft = n.raft;
    if (raft === null) return;
    const meta = raft.snapshotMeta();
    const applied = n.disk.applied;
    if (applied - meta.index < n.compactEvery) return;
    const data = encodeState(applied, n.disk.hash);
    raft.compact(applied, data);
    const after = raft.snapshotMeta();
    check(after.index === applied, 'compaction moved the snapshot point');
    const d = n.disk;
    check(applied >= d.snapshot.meta.index, 'compaction goes forward');
    const drop = applied - d.snapshot.meta.index;
    check(drop <= d.entries.length, `${n.id} compacts at ${applied} past its durable log`);
    d.entries = d.entries.slice(drop);
    d.snapshot = { meta: after, data };
  }

  // ------------------------------------------------------------------ checks

  /** Called for every Ready as it is produced. */
  private onReady(n: SimNode, rd: Ready): void {
    const raft = n.raft as RaftNode;
    if (rd.softState?.role === Role.Leader) {
      this.stats.elections++;
      this.checkLeaderCompleteness(n);
      this.maybeCrashAtEdge(n);
    }
    const nodeCommit = rd.entries.length > 0 ? raft.status().commit : 0;
    for (const e of rd.entries) {
      const prevTerm = e.index - 1 === raft.snapshotMeta().index ? raft.snapshotMeta().term : (raft.entryAt(e.index - 1)?.term ?? -1);
      const key = `${e.index}:${e.term}`;
      const payload = hashBytes(fnv(2166136261, e.type === EntryType.ConfChange ? 1 : 0), e.data);
      const fact = this.entryFacts.get(key);
      if (fact === undefined) {
        this.entryFacts.set(key, { prevTerm, payload });
      } else {
        check(fact.payload === payload, `log matching: two different entries at index ${e.index} term ${e.term}`);
        check(prevTerm === -1 || fact.prevTerm === -1 || fact.prevTerm === prevTerm, `log matching: entry ${e.index}/${e.term} follows term ${prevTerm} on ${n.id} but ${fact.prevTerm} elsewhere`);
      }
      // A stale leader may append at an index others committed; a node may not hold a wrong
      // entry at an index it itself considers committed.
      if (e.index <= nodeCommit) check(this.commitTerm[e.index] === e.term, `${n.id} holds entry ${e.index}/${e.term} it considers committed, but ${this.commitTerm[e.index]} was committed`);
    }
    if (rd.hardState !== null && rd.hardState.commit > this.globalCommit) {
      const st = raft.status();
      const c = rd.hardState.commit;
      for (let i = this.globalCommit + 1; i <= c; i++) {
        const e = raft.entryAt(i);
        const t = e?.term ?? (i === raft.snapshotMeta().index ? raft.snapshotMeta().term : undefined);
        check(t !== undefined, `${n.id} commits ${i} which it does not hold`);
        this.commitTerm[i] = t;
      }
      this.globalCommit = c;
      this.stats.commits++;
      if (st.role === Role.Leader) this.maybeCrashAtEdge(n);
      // §5.4.2: a leader moves its commit index only onto an entry of its own term.
      if (st.role === Role.Leader && this.opts.directChecks !== false) check(this.commitTerm[c] === st.term, `${n.id} (term ${st.term}) committed index ${c} of term ${this.commitTerm[c]} by counting replicas`);
      if (st.role === Role.Leader) this.checkDurableQuorum(n, c, this.commitTerm[c] as number, st.conf.voters, n.prevVoters);
    }
    n.prevVoters = raft.status().conf.voters;
  }

  private maybeCrashAtEdge(n: SimNode): void {
    if (this.faultsOn && this.crashAtEdgeRate > 0 && this.rng.chance(this.crashAtEdgeRate)) {
      this.schedule({ at: this.now + this.rng.between(0, 3), seq: 0, kind: 'crash', node: n, inc: n.incarnation });
    }
  }

  private checkDurableQuorum(leader: SimNode, index: number, term: number, voters: NodeId[], prevVoters: NodeId[]): void {
    if (this.durableCount(index, term, prevVoters) >= Math.floor(prevVoters.length / 2) + 1) return;
    const durable = this.durableCount(index, term, voters);
    check(durable >= Math.floor(voters.length / 2) + 1, `${leader.id} committed ${index} while only ${durable} of ${voters.length} voters hold it durably`);
  }

  private durableCount(index: number, term: number, voters: NodeId[]): number {
    let durable = 0;
    for (const v of voters) {
      const d = this.byId.get(v)?.disk;
      if (d === undefined) continue;
      if (d.snapshot.meta.index >= index) { durable++; continue; }
      const e = d.entries[index - d.snapshot.meta.index - 1];
      if (e !== undefined && e.term === term) durable++;
    }
    return durable;
  }

  private checkLeaderCompleteness(n: SimNode): void {
    const raft = n.raft as RaftNode;
    const snap = raft.snapshotMeta();
    for (let i = snap.index + 1; i <= this.globalCommit; i++) {
      check(raft.entryAt(i)?.term === this.commitTerm[i], `leader completeness: new leader ${n.id} (term ${raft.status().term}) lacks committed entry ${i}`);
    }
  }

  /** Cheap per-event checks on the node an event touched. */
  private checkNode(n: SimNode): void {
    const raft = n.raft;
    if (raft === null) return;
    const st = raft.status();
    check(st.applied <= st.commit && st.commit <= st.lastIndex, `${n.id}: applied ${st.applied} <= commit ${st.commit} <= last ${st.lastIndex}`);
    if (st.role === Role.Leader) {
      const other = this.leaderOfTerm.get(st.term);
      check(other === undefined || other === n.id, `two leaders in term ${st.term}: ${other} and ${n.id}`);
      this.leaderOfTerm.set(st.term, n.id);
    }
  }

  // ------------------------------------------------------------------ faults and clients

  private live(): SimNode[] {
    return this.nodes.filter((n) => n.raft !== null);
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes) {
      const st = n.raft?.status();
      if (st?.role === Role.Leader && (best === undefined || st.term > (best.raft?.status().term ?? 0))) best = n;
    }
    return best;
  }

  private onChaos(): void {
    if (!this.faultsOn) return;
    const r = this.rng;
    const action = r.nextInt(100);
    const ids = this.nodes.map((n) => n.id);
    if (action < 12) {
      // symmetric partition: split into two random groups
      this.blocked.clear();
      const side = new Set(ids.filter(() => r.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}>${b}`);
      this.note(`partition {${[...side].join(',')}}`);
    } else if (action < 20) {
      // asymmetric: one direction of a few links
      for (let i = 0; i < r.between(1, 3); i++) this.blocked.add(`${r.pick(ids)}>${r.pick(ids)}`);
      this.note('asymmetric cuts');
    } else if (action < 27) {
      const l = this.leader();
      if (l !== undefined) {
        for (const b of ids) if (b !== l.id) { this.blocked.add(`${l.id}>${b}`); this.blocked.add(`${b}>${l.id}`); }
        this.note(`isolate leader ${l.id}`);
      }
    } else if (action < 40) {
      this.blocked.clear();
      this.note('heal network');
    } else if (action < 50) {
      const up = this.live();
      const l = this.leader();
      if (l !== undefined && r.chance(0.5)) this.crash(l);
      else if (up.length > 1) this.crash(r.pick(up));
    } else if (action < 62) {
      const down = this.nodes.filter((n) => n.raft === null);
      if (down.length > 0) this.restart(r.pick(down));
    } else if (action < 67) {
      const n = r.pick(this.nodes);
      n.diskSlowUntil = this.now + r.between(50, 500);
      this.note(`slow disk ${n.id}`);
    } else if (action < 72) {
      this.dropRate = r.pick([0, 0, 0.02, 0.1, 0.3]);
      this.dupRate = r.pick([0, 0.02, 0.1]);
      this.maxDelayMs = r.pick([2, 5, 10, 30]);
      this.note(`network drop ${this.dropRate} dup ${this.dupRate} delay<=${this.maxDelayMs}`);
    } else if (action < 85) {
      this.changeMembership();
    } else if (action < 93) {
      const l = this.leader();
      const target = r.pick(this.nodes);
      const via = r.chance(0.5) ? l : r.pick(this.nodes);
      if (via?.raft !== null && via !== undefined) {
        via.raft?.transferLeader(target.id);
        this.stats.transfers++;
        this.note(`transfer leader to ${target.id} via ${via.id}`);
        this.pump(via);
      }
    } else if (this.live().length > 0) {
      const n = r.pick(this.live());
      n.raft?.campaign();
      this.pump(n);
    }
    this.schedule({ at: this.now + r.between(this.chaosGapMs[0], this.chaosGapMs[1]), seq: 0, kind: 'chaos' });
  }

  private changeMembership(): void {
    const l = this.leader();
    if (l?.raft === null || l === undefined) return;
    const conf = l.raft.status().conf;
    const r = this.rng;
    const members = new Set([...conf.voters, ...conf.learners]);
    const outside = this.nodes.filter((n) => !members.has(n.id)).map((n) => n.id);
    let change: ConfChange;
    const roll = r.nextInt(4);
    if (outside.length > 0 && roll < 2) {
      change = { type: r.chance(0.7) ? ConfChangeType.AddLearner : ConfChangeType.AddVoter, node: r.pick(outside) };
    } else if (conf.learners.length > 0 && roll < 3) {
      change = { type: ConfChangeType.PromoteLearner, node: r.pick(conf.learners) };
    } else if (conf.voters.length > 2 || conf.learners.length > 0) {
      const pool = conf.voters.length > 2 ? [...conf.voters, ...conf.learners] : conf.learners;
      change = { type: ConfChangeType.RemoveNode, node: r.pick(pool) };
    } else {
      return;
    }
    if (l.raft.proposeConfChange(change)) {
      this.stats.confChanges++;
      this.note(`propose ${change.type} ${change.node} at ${l.id}`);
      this.pump(l);
    }
  }

  private onClient(): void {
    if (!this.faultsOn) return;
    const r = this.rng;
    const up = this.live();
    if (up.length > 0) {
      const n = r.chance(0.7) ? (this.leader() ?? r.pick(up)) : r.pick(up);
      const id = `w${this.nextClientId++}`;
      if (r.chance(0.3)) {
        this.reads.set(id, { node: n, inc: n.incarnation, required: this.ackedMaxIndex });
        n.raft?.readIndex(id);
      } else if (n.raft?.propose(new TextEncoder().encode(id)) === true) {
        this.writes.set(id, { node: n, inc: n.incarnation });
      }
      this.pump(n);
    }
    this.schedule({ at: this.now + r.between(1, 15), seq: 0, kind: 'client' });
  }

  /** One line per node: what it believes (for replaying a failing seed). */
  dump(): string[] {
    return [`limits ${JSON.stringify(this.limits)} chaos gap ${this.chaosGapMs.join('-')} ms, crash-at-edge ${this.crashAtEdgeRate}`, ...this.nodes.map((n) => {
      if (n.raft === null) return `${n.id}: down`;
      const st = n.raft.status();
      const prs = Object.entries(st.progress).map(([id, p]) => `${id}:${p.state}/m${p.match}/n${p.next}${p.recentActive ? '' : '/idle'}`).join(' ');
      return `${n.id}: ${st.role} t${st.term} vote ${st.vote} lead ${st.leader} commit ${st.commit} applied ${st.applied} log [${st.firstIndex}..${st.lastIndex}] voters ${st.conf.voters.join(',')} learners ${st.conf.learners.join(',')} pending ${n.pending !== null} ${prs}`;
    })];
  }

  private note(s: string): void {
    if (this.opts.verbose === true) this.log.push(`${this.now}ms ${s}`);
  }
}

export function describeConfEntry(e: Entry): string {
  return e.type === EntryType.ConfChange ? JSON.stringify(decodeConfChange(e.data)) : 'normal';
}
