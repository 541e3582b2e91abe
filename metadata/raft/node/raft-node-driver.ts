/**
 * The loop around the pure Raft core: a timer drives tick(); received messages, proposals and
 * reads are queued and fed to the core between Readys, so the core is only touched by this loop
 * and everything that arrives while one Ready is being persisted goes into the next one (group
 * commit: one fsync per Ready, however many proposals it carries).
 *
 * Per Ready: send messagesBeforePersist → persist (one synced batch) → send messages → restore
 * a received snapshot → apply committed entries → resolve proposers and readers → advance().
 * After apply, a local snapshot is taken and the log compacted past named thresholds.
 *
 * A proposer waits for the entry at (index, term) it was given. If another entry lands at that
 * index (a new leader overwrote it) the proposer gets PROPOSAL_DROPPED and retries with the
 * same (clientId, seq), which the state machine applies at most once.
 */
import type { Logger } from 'pino';
import type { ConfChange, ConfState, Entry, Message, NodeId, RaftCore, RaftStatus, Ready, SnapshotMeta, SoftState } from '../core/types.js';
import type { AppliedRecord, Command, CommandResult, SnapshotStream, StateMachine } from '../../state/contract.js';
import { ErrorCode, GalleonError, invariant, isGalleonError } from '../../../proto/errors.js';
import type { LogStore } from './log-store.js';
import type { MemberMetrics } from './metrics.js';
import { applyConfChange, decodeConfChangeData } from './conf-change.js';

export interface DriverTiming {
  tickIntervalMs: number;
  /** Take a snapshot and compact once this many entries were applied since the last one. */
  snapshotEveryEntries: number;
  /** ... or once roughly this many bytes of entries were applied since the last one. */
  snapshotEveryBytes: number;
  proposalTimeoutMs: number;
  readTimeoutMs: number;
  /** Size of one chunk of a streamed snapshot (one LevelDB batch on the follower). */
  snapshotChunkBytes: number;
  /** Upper bound on the send rate of one snapshot transfer; 0 = unlimited. */
  snapshotSendBytesPerSec: number;
}

export const driverDefaults: DriverTiming = {
  tickIntervalMs: 100,
  snapshotEveryEntries: 10_000,
  snapshotEveryBytes: 64 * 1024 * 1024,
  proposalTimeoutMs: 5_000,
  readTimeoutMs: 5_000,
  snapshotChunkBytes: 1024 * 1024,
  snapshotSendBytesPerSec: 0,
};

/** Ships streamed snapshots to peers (snapshot-transfer.ts; a test may stand in). */
export interface SnapshotShipper {
  busy(peer: NodeId): boolean;
  start(peer: NodeId, term: number, meta: SnapshotMeta, source: SnapshotStream): void;
  cancelAll(): void;
}

/** Upper bound on queued proposals + reads + messages between two Readys (back-pressure). */
export const maxInboxItems = 50_000;

export interface DriverOptions {
  id: NodeId;
  core: RaftCore;
  logStore: LogStore;
  stateMachine: StateMachine;
  logger: Logger;
  metrics: MemberMetrics;
  timing: DriverTiming;
  /** Conf and term as of the state machine's applied index at start. */
  appliedConf: ConfState;
  appliedTerm: number;
  /** Sends messages to peers (the transport); set before start(). Snap messages go to `snapshots` instead. */
  send: (messages: Message[]) => void;
  snapshots: SnapshotShipper;
  /** Called after records were applied (e.g. to learn member addresses). */
  onApplied?: (records: AppliedRecord[]) => void;
  /** Called after a received snapshot replaced the state machine. */
  onRestored?: () => void;
  onSoftState?: (state: SoftState) => void;
  /** A persist or apply failed beyond retry: the member must stop. */
  onFatal: (err: unknown) => void;
}

interface Waiter {
  index: number;
  term: number;
  deadlineMs: number;
  startedMs: number;
  /** Stage stamps on the monotonic clock (ms), for the write trace (see traceWrite). */
  queuedAt: number;
  proposedAt: number;
  persistedAt: number;
  committedAt: number;
  resolve: (r: CommandResult) => void;
  reject: (e: GalleonError) => void;
}

interface ReadGroup {
  context: string;
  index: number | null;
  deadlineMs: number;
  waiters: { resolve: () => void; reject: (e: GalleonError) => void }[];
}

type PendingWaiter = Pick<Waiter, 'deadlineMs' | 'startedMs' | 'queuedAt' | 'resolve' | 'reject'>;
type ProposalRequest = { kind: 'normal'; data: Uint8Array; waiter: PendingWaiter }
  | { kind: 'conf'; change: ConfChange; waiter: PendingWaiter };

const encoder = new TextEncoder();
/** What the core and the log store keep as a snapshot's data: the state lives in the state machine. */
const noSnapshotData = new Uint8Array(0);
const decoder = new TextDecoder();

export class RaftNodeDriver {
  private readonly o: DriverOptions;
  private readonly core: RaftCore;
  private inbox: (() => void)[] = [];
  private proposals: ProposalRequest[] = [];
  private readRequests: ReadGroup['waiters'] = [];
  /** Deadline of the oldest read in `readRequests` (the group's deadline). */
  private pendingReadDeadline = 0;
  private pendingTicks = 0;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private stopping = false;
  private fatal: unknown = null;

  private readonly waiters = new Map<number, Waiter>();
  private readonly readGroups = new Map<string, ReadGroup>();
  private readSeq = 0;

  private appliedIndex: number;
  private appliedTerm: number;
  private appliedConf: ConfState;
  private snapshotIndex: number;
  private bytesSinceSnapshot = 0;
  private soft: SoftState = { leader: null, role: 'follower' };
  private cachedStatus: RaftStatus;
  private appliedListeners: (() => void)[] = [];
  private pendingCompaction: { index: number; term: number; conf: ConfState } | null = null;
  /** Snap messages of the core waiting for a quiet point of the loop to open a state stream. */
  private snapRequests = new Map<NodeId, Message>();
  /** Entries persisted here and not yet applied, contiguous (see scheduleCommittedMidPersist). */
  private durableTail: Entry[] = [];
  /** Highest index handed to the apply chain; `applying` is the chain's tail. */
  private scheduledApplyIndex: number;
  private applying: Promise<void> = Promise.resolve();
  private afterAdvance: (() => void)[] = [];
  /** Debug-level per-write stage trace (cheap check once, not per write). */
  private readonly traceWrites: boolean;

  constructor(options: DriverOptions) {
    this.o = options;
    this.core = options.core;
    const st = this.core.status();
    this.appliedIndex = st.applied;
    this.scheduledApplyIndex = st.applied;
    this.appliedTerm = options.appliedTerm;
    this.appliedConf = options.appliedConf;
    this.snapshotIndex = options.logStore.currentSnapshotMeta().index;
    this.cachedStatus = st;
    this.traceWrites = options.logger.isLevelEnabled('debug');
  }

  start(): void {
    invariant(this.loopDone === null, 'driver started twice');
    this.ticker = setInterval(() => {
      this.pendingTicks++;
      this.kick();
    }, this.o.timing.tickIntervalMs);
    this.loopDone = this.loop();
  }

  /** Stops after the Ready in progress (if any) is persisted and applied. */
  async stop(): Promise<void> {
    if (this.stopping) return this.loopDone ?? undefined;
    this.stopping = true;
    if (this.ticker !== null) clearInterval(this.ticker);
    this.o.snapshots.cancelAll();
    this.kick();
    await this.loopDone;
    const err = new GalleonError(ErrorCode.UNAVAILABLE, 'metadata member is stopping', { hint: 'retry against another member' });
    this.failAll(err);
  }

  // ---- inputs -------------------------------------------------------------------------------

  receive(messages: Message[]): void {
    if (this.stopping) return;
    this.enqueue(() => {
      for (const m of messages) {
        try {
          this.core.step(m);
        } catch (err) {
          if (isGalleonError(err, ErrorCode.INVARIANT_VIOLATION)) throw err;
          this.o.logger.warn({ err, from: m.from, type: m.type }, 'raft core rejected a message');
        }
      }
    });
  }

  reportUnreachable(peer: NodeId): void {
    this.enqueue(() => this.core.reportUnreachable(peer));
  }

  reportSnapshotFailure(peer: NodeId): void {
    this.enqueue(() => this.core.reportSnapshotFailure(peer));
  }

  transferLeader(target: NodeId): void {
    this.enqueue(() => this.core.transferLeader(target));
  }

  campaign(): void {
    this.enqueue(() => this.core.campaign());
  }

  /** Proposes a command; resolves with its result once its entry is applied here. */
  propose(command: Command, timeoutMs = this.o.timing.proposalTimeoutMs): Promise<CommandResult> {
    return this.submit({ kind: 'normal', data: encoder.encode(JSON.stringify(command)) }, timeoutMs);
  }

  /** Proposes a membership change; resolves once its entry is applied here. */
  proposeConfChange(change: ConfChange, timeoutMs = this.o.timing.proposalTimeoutMs): Promise<CommandResult> {
    return this.submit({ kind: 'conf', change }, timeoutMs);
  }

  /** Resolves once this member's state machine reflects every write committed before the call. */
  readIndex(timeoutMs = this.o.timing.readTimeoutMs): Promise<void> {
    this.checkUsable();
    return new Promise<void>((resolve, reject) => {
      if (this.proposals.length + this.readRequests.length + this.inbox.length >= maxInboxItems) {
        reject(overloaded());
        return;
      }
      // All reads queued before the next drain share one ReadIndex round.
      this.readRequests.push({ resolve, reject });
      const deadline = Date.now() + timeoutMs;
      if (this.readRequests.length === 1) this.pendingReadDeadline = deadline;
      this.kick();
    });
  }

  /** Resolves once applied index ≥ index (or rejects at the deadline). */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    const deadline = Date.now() + timeoutMs;
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.appliedIndex >= index) { resolve(); return; }
        if (Date.now() > deadline || this.stopping) {
          reject(new GalleonError(ErrorCode.TIMEOUT, `member did not apply index ${index} within ${timeoutMs} ms`, { hint: 'the member is behind; retry later' }));
          return;
        }
        this.appliedListeners.push(check);
      };
      check();
    });
  }

  // ---- views --------------------------------------------------------------------------------

  /** The core's status as of the last handled Ready (cheap: no core call). */
  status(): RaftStatus {
    return this.cachedStatus;
  }

  softState(): SoftState {
    return this.soft;
  }

  applied(): number {
    return this.appliedIndex;
  }

  confAtApplied(): ConfState {
    return this.appliedConf;
  }

  // ---- the loop -----------------------------------------------------------------------------

  private submit(req: { kind: 'normal'; data: Uint8Array } | { kind: 'conf'; change: ConfChange }, timeoutMs: number): Promise<CommandResult> {
    this.checkUsable();
    return new Promise<CommandResult>((resolve, reject) => {
      if (this.proposals.length + this.readRequests.length + this.inbox.length >= maxInboxItems) {
        reject(overloaded());
        return;
      }
      const now = Date.now();
      const waiter: PendingWaiter = { deadlineMs: now + timeoutMs, startedMs: now, queuedAt: performance.now(), resolve, reject };
      this.proposals.push(req.kind === 'normal' ? { kind: 'normal', data: req.data, waiter } : { kind: 'conf', change: req.change, waiter });
      this.kick();
    });
  }

  private checkUsable(): void {
    if (this.stopping) throw new GalleonError(ErrorCode.UNAVAILABLE, 'metadata member is stopping', { hint: 'retry against another member' });
    if (this.fatal !== null) throw new GalleonError(ErrorCode.UNAVAILABLE, 'metadata member failed and is stopping', { hint: 'retry against another member' });
  }

  private enqueue(fn: () => void): void {
    if (this.stopping) return;
    this.inbox.push(fn);
    this.kick();
  }

  private kick(): void {
    const w = this.wake;
    if (w !== null) {
      this.wake = null;
      w();
    }
  }

  private hasInput(): boolean {
    return this.inbox.length > 0 || this.proposals.length > 0 || this.readRequests.length > 0 || this.pendingTicks > 0;
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopping) {
        this.drainInputs();
        if (this.core.hasReady()) {
          await this.handleReady(this.core.ready());
          continue;
        }
        this.cachedStatus = this.core.status();
        if (!this.hasInput() && !this.stopping) await new Promise<void>((resolve) => { this.wake = resolve; });
      }
    } catch (err) {
      this.fatal = err;
      this.stopping = true;
      if (this.ticker !== null) clearInterval(this.ticker);
      this.failAll(new GalleonError(ErrorCode.UNAVAILABLE, 'metadata member failed and is stopping', { hint: 'retry against another member', cause: err }));
      this.o.onFatal(err);
    }
  }

  private drainInputs(): void {
    const ticks = this.pendingTicks;
    this.pendingTicks = 0;
    for (let i = 0; i < ticks; i++) this.core.tick();
    if (ticks > 0) this.expire();

    const inbox = this.inbox;
    this.inbox = [];
    for (const fn of inbox) fn();

    if (this.proposals.length > 0) this.drainProposals();

    if (this.readRequests.length > 0) {
      const context = `r${++this.readSeq}`;
      this.readGroups.set(context, { context, index: null, deadlineMs: this.pendingReadDeadline, waiters: this.readRequests });
      this.readRequests = [];
      this.core.readIndex(context);
    }
  }

  private drainProposals(): void {
    const batch = this.proposals;
    this.proposals = [];
    const before = this.core.status();
    let lastIndex = before.lastIndex;
    const term = before.term;
    const accepted: Waiter[] = [];
    const proposedAt = performance.now();
    for (const p of batch) {
      const ok = p.kind === 'normal' ? this.core.propose(p.data) : this.core.proposeConfChange(p.change);
      if (!ok) {
        this.o.metrics.proposals.inc({ outcome: 'dropped' });
        p.waiter.reject(dropped(this.soft.role === 'leader'
          ? 'the leader refused the proposal (leadership transfer, a pending membership change, or too many uncommitted bytes)'
          : 'this member is not the leader', this.soft.role === 'leader' ? ErrorCode.PROPOSAL_DROPPED : ErrorCode.NOT_LEADER));
        continue;
      }
      lastIndex++;
      const w: Waiter = { ...p.waiter, index: lastIndex, term, proposedAt, persistedAt: 0, committedAt: 0 };
      accepted.push(w);
    }
    if (accepted.length === 0) return;
    const after = this.core.status();
    if (after.lastIndex !== lastIndex || after.term !== term) {
      // The core did not append exactly one entry per accepted proposal in this term: we cannot
      // tell which index is whose, so fail them all (clients retry; (clientId, seq) dedups).
      this.o.logger.error({ expected: lastIndex, actual: after.lastIndex }, 'proposal indexes did not line up; failing the batch');
      for (const w of accepted) w.reject(dropped('proposal outcome unknown', ErrorCode.PROPOSAL_DROPPED));
      return;
    }
    for (const w of accepted) {
      const old = this.waiters.get(w.index);
      if (old !== undefined) old.reject(dropped('another entry replaced this proposal', ErrorCode.PROPOSAL_DROPPED));
      this.waiters.set(w.index, w);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.o.metrics.readyBatches.inc();
    if (rd.softState !== null) this.onSoftState(rd.softState);
    if (rd.messagesBeforePersist.length > 0) this.send(rd.messagesBeforePersist);

    // Term, vote, entries and snapshots must be durable before anyone hears of them. A Ready
    // that only advances the commit index writes nothing: commit is volatile in Raft, the state
    // machine keeps its own applied index, and the next synced write carries the new commit.
    const persisted = this.o.logStore.hardState();
    const durableChange = rd.snapshot !== null || rd.entries.length > 0
      || (rd.hardState !== null && (rd.hardState.term !== persisted.term || rd.hardState.vote !== persisted.vote));
    if (durableChange) {
      // Committed entries that an earlier Ready already made durable here (on a leader: all of
      // them, since it counts itself toward commit only up to what advance() reported durable)
      // are applied WHILE this Ready's entries sync: the two writes go to different databases.
      // Without this a batch committed during one fsync waited for the next fsync before its
      // proposers heard back (README, "where the time goes").
      const limit = this.durableLimit(rd);
      if (rd.snapshot === null) this.scheduleApply(rd.committedEntries, limit);
      // Only a node that leads throughout (same term) never rewrites its log mid-fsync, so only
      // there is every committed entry at or below `limit` the one stored here.
      const st = this.core.status();
      const leaderTerm = rd.snapshot === null && st.role === 'leader' ? st.term : null;
      const t0 = performance.now();
      let persistDone = false;
      const persist = this.o.logStore.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot })
        .then(() => this.o.metrics.persistLatency.observe((performance.now() - t0) / 1000))
        .finally(() => { persistDone = true; this.kick(); });
      // While the fsync runs the core may keep stepping (core README): acks that arrive now move
      // the leader's commit index, and what they commit among entries already durable here is
      // applied and answered at once instead of after this fsync.
      let watched: Promise<void> | null = null;
      while (!persistDone) {
        if (!this.hasInput()) await new Promise<void>((resolve) => { this.wake = resolve; });
        if (persistDone) break;
        this.drainInputs();
        if (leaderTerm !== null) {
          this.scheduleCommittedMidPersist(limit, leaderTerm);
          // Look again once the apply in flight is done: acks may have committed more meanwhile.
          const running = this.applying;
          if (this.scheduledApplyIndex > this.appliedIndex && watched !== running) {
            watched = running;
            void running.then(() => this.kick(), () => this.kick());
          }
        }
      }
      const [p, a] = await Promise.allSettled([persist, this.applying]);
      if (p.status === 'rejected') throw p.reason;
      if (a.status === 'rejected') throw a.reason;
      this.rememberDurable(rd);
      if (this.traceWrites) this.stamp(rd.entries, 'persistedAt', performance.now());
    }
    for (const e of rd.entries) {
      const w = this.waiters.get(e.index);
      if (w !== undefined && w.term !== e.term) {
        this.waiters.delete(e.index);
        w.reject(dropped('a new leader replaced the entry of this proposal', ErrorCode.PROPOSAL_DROPPED));
      }
    }
    if (rd.messages.length > 0) this.send(rd.messages);

    if (rd.snapshot !== null) await this.restoreSnapshot(rd);
    // Skips whatever was applied above.
    if (rd.committedEntries.length > 0) {
      this.scheduleApply(rd.committedEntries, Number.MAX_SAFE_INTEGER);
      await this.applying;
    }

    for (const rs of rd.readStates) {
      const g = this.readGroups.get(rs.context);
      if (g !== undefined) g.index = rs.index;
    }
    this.releaseReads();

    this.core.advance(rd);
    this.cachedStatus = this.core.status();
    const resolvers = this.afterAdvance;
    this.afterAdvance = [];
    for (const r of resolvers) r();
    if (rd.hardState !== null) {
      this.o.metrics.term.set(rd.hardState.term);
      this.o.metrics.commitIndex.set(rd.hardState.commit);
    }
    await this.startSnapshotSends();
    await this.maybeSnapshot();
    const listeners = this.appliedListeners;
    this.appliedListeners = [];
    for (const l of listeners) l();
  }

  /** Snap messages carry no state: they become streamed transfers (snapshot-transfer.ts). */
  private send(messages: Message[]): void {
    if (!messages.some((m) => m.type === 'snap')) {
      this.o.send(messages);
      return;
    }
    const rest: Message[] = [];
    for (const m of messages) {
      if (m.type !== 'snap') rest.push(m);
      else if (!this.o.snapshots.busy(m.to)) this.snapRequests.set(m.to, m);
    }
    if (rest.length > 0) this.o.send(rest);
  }

  /**
   * Here, between Readys and with every scheduled entry applied, the state machine is exactly
   * at `appliedIndex` with `appliedTerm`/`appliedConf`: a stream opened now is a snapshot at that
   * index (>= the core's snapshot index, so the follower's log starts where its state does).
   */
  private async startSnapshotSends(): Promise<void> {
    if (this.snapRequests.size === 0) return;
    const requests = [...this.snapRequests.values()];
    this.snapRequests.clear();
    if (this.soft.role !== 'leader') return;
    for (const m of requests) {
      if (this.o.snapshots.busy(m.to)) continue;
      const source = await this.o.stateMachine.openSnapshotStream(this.o.timing.snapshotChunkBytes);
      invariant(source.index === this.appliedIndex, `state stream at ${source.index} but applied ${this.appliedIndex}`);
      invariant(source.index >= this.snapshotIndex, `state stream at ${source.index} below the log's snapshot ${this.snapshotIndex}`);
      const meta: SnapshotMeta = { index: source.index, term: this.appliedTerm, conf: { voters: [...this.appliedConf.voters], learners: [...this.appliedConf.learners] } };
      this.o.snapshots.start(m.to, m.term, meta, source);
      this.o.logger.info({ peer: m.to, index: meta.index, term: meta.term }, 'streaming a snapshot to a follower');
    }
  }

  private onSoftState(s: SoftState): void {
    if (s.role !== 'leader' && this.soft.role === 'leader') this.o.snapshots.cancelAll();
    if (s.leader !== this.soft.leader) this.o.metrics.leaderChanges.inc();
    this.soft = { ...s };
    this.o.metrics.isLeader.set(s.role === 'leader' ? 1 : 0);
    this.o.onSoftState?.(this.soft);
  }

  /** Highest index durable here before `rd` is persisted and not rewritten by it. */
  private durableLimit(rd: Ready): number {
    const firstNew = rd.entries[0];
    return firstNew === undefined ? this.o.logStore.lastIndex() : Math.min(this.o.logStore.lastIndex(), firstNew.index - 1);
  }

  /**
   * Queues the entries at or below `limit` (and after what is already queued) for apply, in
   * order, one state-machine call at a time. A failure is rethrown by `await this.applying`.
   */
  private scheduleApply(entries: Entry[], limit: number): void {
    let lo = 0;
    while (lo < entries.length && entries[lo]!.index <= this.scheduledApplyIndex) lo++;
    let hi = lo;
    while (hi < entries.length && entries[hi]!.index <= limit) hi++;
    if (hi === lo) return;
    const batch = lo === 0 && hi === entries.length ? entries : entries.slice(lo, hi);
    this.scheduledApplyIndex = batch[batch.length - 1]!.index;
    if (this.traceWrites) this.stamp(batch, 'committedAt', performance.now());
    const run = this.applying.then(() => this.applyEntries(batch));
    // Keep the chain rejected on failure so every later await sees it; mark it handled here.
    run.catch(() => undefined);
    this.applying = run;
  }

  /**
   * On a leader in the middle of a fsync: applies the normal entries the core now knows are
   * committed, up to `limit` (durable here before this Ready) and before any conf change
   * (those take effect only through advance()).
   */
  private scheduleCommittedMidPersist(limit: number, leaderTerm: number): void {
    // While a state-machine call runs, acks pile up and are applied together after it: one call
    // per ack would cost more CPU than it saves latency under load.
    if (this.scheduledApplyIndex > this.appliedIndex) return;
    const st = this.core.status();
    if (st.role !== 'leader' || st.term !== leaderTerm) return;
    const commit = Math.min(st.commit, limit);
    if (commit <= this.scheduledApplyIndex) return;
    const tail = this.durableTail;
    let lo = 0;
    while (lo < tail.length && tail[lo]!.index <= this.scheduledApplyIndex) lo++;
    if (lo >= tail.length || tail[lo]!.index !== this.scheduledApplyIndex + 1) return;
    let hi = lo;
    while (hi < tail.length && tail[hi]!.index <= commit && tail[hi]!.type !== 'conf-change') hi++;
    if (hi > lo) this.scheduleApply(tail.slice(lo, hi), commit);
  }

  /** Keeps the entries just persisted (and not yet applied) for scheduleCommittedMidPersist. */
  private rememberDurable(rd: Ready): void {
    let tail = rd.snapshot !== null ? [] : this.durableTail;
    const first = rd.entries[0];
    if (first !== undefined) {
      tail = tail.filter((e) => e.index < first.index);
      for (const e of rd.entries) tail.push(e);
    }
    const applied = Math.max(this.appliedIndex, this.scheduledApplyIndex);
    let drop = 0;
    while (drop < tail.length && tail[drop]!.index <= applied) drop++;
    this.durableTail = drop === 0 ? tail : tail.slice(drop);
  }

  private stamp(entries: Entry[], stage: 'persistedAt' | 'committedAt', at: number): void {
    for (const e of entries) {
      const w = this.waiters.get(e.index);
      if (w !== undefined && w[stage] === 0) w[stage] = at;
    }
  }

  private async restoreSnapshot(rd: Ready): Promise<void> {
    const snap = rd.snapshot!;
    // The state came in chunks beforehand (snapshot-transfer.ts) and waits staged; a snapshot
    // with data is the one-buffer form of older members.
    if (snap.data.byteLength > 0) await this.o.stateMachine.restore(snap.meta.index, snap.data);
    else await this.o.stateMachine.installRestored(snap.meta.index);
    this.o.metrics.snapshotsRestored.inc();
    this.appliedIndex = snap.meta.index;
    this.scheduledApplyIndex = snap.meta.index;
    this.durableTail = [];
    this.appliedTerm = snap.meta.term;
    this.appliedConf = { voters: [...snap.meta.conf.voters], learners: [...snap.meta.conf.learners] };
    this.snapshotIndex = snap.meta.index;
    this.bytesSinceSnapshot = 0;
    for (const [index, w] of this.waiters) {
      if (index <= snap.meta.index) {
        this.waiters.delete(index);
        w.reject(dropped('a snapshot replaced the log before this proposal was seen applied', ErrorCode.PROPOSAL_DROPPED));
      }
    }
    this.o.metrics.appliedIndex.set(this.appliedIndex);
    this.o.logger.info({ index: snap.meta.index, term: snap.meta.term }, 'restored a snapshot from the leader');
    this.o.onRestored?.();
  }

  private async applyEntries(entries: Entry[]): Promise<void> {
    const records: AppliedRecord[] = [];
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue;
      invariant(e.index === this.appliedIndex + 1 + records.length, `committed entry ${e.index} does not follow applied ${this.appliedIndex}`);
      records.push(this.toRecord(e));
      this.bytesSinceSnapshot += e.data.byteLength + 32;
    }
    if (records.length === 0) return;
    const applyStart = performance.now();
    const results = await this.o.stateMachine.apply(records);
    const appliedAt = performance.now();
    this.o.metrics.applyLatency.observe((appliedAt - applyStart) / 1000);
    invariant(results.length === records.length, 'state machine returned one result per record');
    const now = Date.now();
    for (let i = 0; i < records.length; i++) {
      const e = entries[entries.length - records.length + i]!;
      const w = this.waiters.get(e.index);
      if (w === undefined) continue;
      this.waiters.delete(e.index);
      if (w.term === e.term) {
        this.o.metrics.proposals.inc({ outcome: 'applied' });
        this.o.metrics.proposalLatency.observe((now - w.startedMs) / 1000);
        if (this.traceWrites) this.traceWrite(w, appliedAt);
        const result = results[i]!;
        // A membership change takes effect at advance(): its proposer hears back after that,
        // so what it reads from status() already shows the new configuration.
        if (e.type === 'conf-change') this.afterAdvance.push(() => w.resolve(result));
        else w.resolve(result);
      } else {
        this.o.metrics.proposals.inc({ outcome: 'dropped' });
        w.reject(dropped('a new leader replaced the entry of this proposal', ErrorCode.PROPOSAL_DROPPED));
      }
    }
    const last = entries[entries.length - 1]!;
    this.appliedIndex = last.index;
    this.appliedTerm = last.term;
    this.o.metrics.appliedIndex.set(this.appliedIndex);
    this.o.onApplied?.(records);
  }

  /**
   * One debug line per write answered by this leader, with the time spent in each stage (ms):
   * queued (waiting for the loop to feed it to the core), persist (until the leader's own
   * fsync of its entry ended), commit (until a Ready carried it as committed: the followers'
   * fsync and acks), apply (until the state machine answered). `test/bench/write-trace.ts`
   * aggregates these lines.
   */
  private traceWrite(w: Waiter, appliedAt: number): void {
    const persistedAt = w.persistedAt === 0 ? w.proposedAt : w.persistedAt;
    const committedAt = w.committedAt === 0 ? persistedAt : w.committedAt;
    this.o.logger.debug({
      trace: 'write', index: w.index,
      queuedMs: round(w.proposedAt - w.queuedAt),
      persistMs: round(persistedAt - w.proposedAt),
      commitMs: round(committedAt - persistedAt),
      applyMs: round(appliedAt - committedAt),
      totalMs: round(appliedAt - w.queuedAt),
    }, 'write stages');
  }

  private toRecord(e: Entry): AppliedRecord {
    if (e.type === 'conf-change') {
      const change = decodeConfChangeData(e.data);
      this.appliedConf = applyConfChange(this.appliedConf, change);
      let address: string | null = null;
      let adminAddress: string | null = null;
      if (change.context !== undefined && change.context !== '') {
        try {
          const ctx = JSON.parse(change.context) as { address?: unknown; adminAddress?: unknown };
          if (typeof ctx.address === 'string') address = ctx.address;
          if (typeof ctx.adminAddress === 'string') adminAddress = ctx.adminAddress;
        } catch {
          address = change.context;
        }
      }
      return { index: e.index, kind: 'member', change: change.type, memberId: change.node, address, adminAddress };
    }
    if (e.data.byteLength === 0) return { index: e.index, kind: 'noop' };
    let command: Command;
    try {
      command = JSON.parse(decoder.decode(e.data)) as Command;
    } catch (err) {
      invariant(false, `committed entry ${e.index} is not a JSON command: ${String(err)}`);
    }
    return { index: e.index, kind: 'command', command };
  }

  /**
   * Past a threshold, makes the state machine durable at the applied index (a checkpoint: the
   * database is the snapshot, streamed only when a follower needs it); compacts the log to it
   * once every live follower holds that index (so a follower a few entries behind is not sent a
   * whole snapshot), or anyway after another threshold's worth of entries.
   */
  private async maybeSnapshot(): Promise<void> {
    const t = this.o.timing;
    if (this.pendingCompaction === null) {
      const entriesSince = this.appliedIndex - this.snapshotIndex;
      if (entriesSince <= 0) return;
      if (entriesSince < t.snapshotEveryEntries && this.bytesSinceSnapshot < t.snapshotEveryBytes) return;
      const index = await this.o.stateMachine.checkpoint();
      invariant(index === this.appliedIndex, `state machine checkpoint at ${index} but applied ${this.appliedIndex}`);
      this.pendingCompaction = { index, term: this.appliedTerm, conf: this.appliedConf };
      this.bytesSinceSnapshot = 0;
    }
    const p = this.pendingCompaction;
    if (p.index <= this.snapshotIndex) {
      this.pendingCompaction = null;
      return;
    }
    // Entries applied in the middle of a fsync are applied in the core only from its next advance().
    if (p.index > this.cachedStatus.applied) return;
    if (!this.liveFollowersHave(p.index) && this.appliedIndex - p.index < t.snapshotEveryEntries) return;
    this.pendingCompaction = null;
    this.core.compact(p.index, noSnapshotData);
    await this.o.logStore.compact({ index: p.index, term: p.term, conf: p.conf }, noSnapshotData);
    this.snapshotIndex = p.index;
    this.o.metrics.snapshotsTaken.inc();
    this.o.logger.info({ index: p.index }, 'checkpointed the state and compacted the raft log');
  }

  private liveFollowersHave(index: number): boolean {
    if (this.soft.role !== 'leader') return true;
    for (const [id, pr] of Object.entries(this.cachedStatus.progress)) {
      if (id !== this.o.id && pr.recentActive && pr.match < index) return false;
    }
    return true;
  }

  private releaseReads(): void {
    for (const [ctx, g] of this.readGroups) {
      if (g.index !== null && g.index <= this.appliedIndex) {
        this.readGroups.delete(ctx);
        for (const w of g.waiters) w.resolve();
      }
    }
  }

  /** Fails proposals and reads past their deadline (checked once per tick). */
  private expire(): void {
    const now = Date.now();
    for (const [index, w] of this.waiters) {
      if (w.deadlineMs < now) {
        this.waiters.delete(index);
        this.o.metrics.proposals.inc({ outcome: 'timeout' });
        w.reject(new GalleonError(ErrorCode.TIMEOUT, `proposal at index ${index} was not applied in time`, {
          hint: 'the cluster may have lost its quorum or leader; retry (a retried command is applied once)',
        }));
      }
    }
    for (const [ctx, g] of this.readGroups) {
      if (g.deadlineMs < now) {
        this.readGroups.delete(ctx);
        const err = new GalleonError(ErrorCode.TIMEOUT, 'linearizable read was not confirmed in time', {
          hint: 'the leader could not reach a quorum; retry, or read with stale: true',
        });
        for (const w of g.waiters) w.reject(err);
      }
    }
  }

  private failAll(err: GalleonError): void {
    // Applied membership changes: their proposers get the result, not the failure.
    const resolvers = this.afterAdvance;
    this.afterAdvance = [];
    for (const r of resolvers) r();
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
    for (const p of this.proposals) p.waiter.reject(err);
    this.proposals = [];
    for (const g of this.readGroups.values()) for (const w of g.waiters) w.reject(err);
    this.readGroups.clear();
    for (const w of this.readRequests) w.reject(err);
    this.readRequests = [];
    const listeners = this.appliedListeners;
    this.appliedListeners = [];
    for (const l of listeners) l();
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function dropped(message: string, code: ErrorCode): GalleonError {
  return new GalleonError(code, message, { hint: 'retry the same call; it is applied at most once' });
}

function overloaded(): GalleonError {
  return new GalleonError(ErrorCode.UNAVAILABLE, 'metadata member has too many requests queued', { hint: 'slow down and retry' });
}
