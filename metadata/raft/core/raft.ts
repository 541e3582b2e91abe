/**
 * RaftNode: the pure Raft state machine (election, replication, commit, ReadIndex, leader
 * transfer, membership, snapshots). Everything comes in through tick/step/propose/...; what must
 * be persisted, sent and applied goes out through ready()/advance(). See README.md for the
 * decisions (when membership changes take effect, which messages wait for fsync).
 */
import { invariant } from '../../../proto/errors.js';
import { applyChange, cloneConf, decodeConfChange, encodeConfChange, isEffective } from './confchange.js';
import { entryBytes, maxSafeIndex, RaftLog } from './log.js';
import { Progress, ProgressState } from './progress.js';
import { ReadOnlyQueue } from './readonly.js';
import {
  EntryType, MessageType, Role,
  type ConfChange, type ConfState, type Entry, type HardState, type Message, type NodeId,
  type RaftConfig, type RaftCore, type RaftInitialState, type RaftStatus, type ReadState, type Ready,
  type Snapshot, type SnapshotMeta, type SoftState,
} from './types.js';

/** Context of a Vote sent because of TimeoutNow: peers grant it even inside a leader lease. */
export const transferContext = 'galleon:transfer';

const noEntries: Entry[] = [];
const emptyData = new Uint8Array(0);

interface ConfPoint {
  index: number;
  conf: ConfState;
}

export class RaftNode implements RaftCore {
  private readonly id: NodeId;
  private readonly cfg: RaftConfig;

  private term: number;
  private vote: NodeId | null;
  private lead: NodeId | null = null;
  private role: Role = Role.Follower;
  private readonly log: RaftLog;

  /** Configuration in force (changes take effect when their entry is applied). */
  private conf: ConfState;
  /** Configurations in force after snapIndex, by the index of the entry that made them. */
  private confHistory: ConfPoint[] = [];
  private snapConf: ConfState;
  /** Data of the snapshot at log.snapIndex, for lagging followers (null until known). */
  private snapshotData: Uint8Array | null = null;
  /** A received snapshot not yet handed to a Ready. */
  private pendingSnapshot: Snapshot | null = null;

  private readonly prs = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout: number;
  private leadTransferee: NodeId | null = null;
  /** Leader: index of the last conf change proposed; no new one until it is applied. */
  private pendingConfIndex = 0;
  private uncommittedBytes = 0;
  private readonly readOnly = new ReadOnlyQueue();
  /** Leader: reads waiting for the first commit of an entry of this term. */
  private pendingReads: { context: string; from: NodeId }[] = [];
  private readStates: ReadState[] = [];

  private msgsBeforePersist: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  /** Leader: new entries or commit index wait to be broadcast at the next ready(). */
  private needBroadcast = false;
  /** Leader: ReadIndex requests arrived; one heartbeat round at the next ready() confirms them all. */
  private needReadHeartbeat = false;

  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | null = null;
  private readonly quorumScratch: number[] = [];

  constructor(config: RaftConfig, initial: RaftInitialState) {
    invariant(config.id !== '', 'node id is not empty');
    invariant(config.electionTicks > config.heartbeatTicks && config.heartbeatTicks >= 1, 'electionTicks > heartbeatTicks >= 1');
    invariant(config.maxInflightMessages >= 1, 'maxInflightMessages >= 1');
    this.id = config.id;
    this.cfg = config;
    const hs = initial.hardState;
    const sm = initial.snapshotMeta;
    invariant(hs.term <= maxSafeIndex && hs.commit <= maxSafeIndex, 'recovered term and commit below 2^53');
    this.term = hs.term;
    this.vote = hs.vote;
    this.log = new RaftLog(sm.index, sm.term, initial.entries, hs.commit, initial.applied);
    invariant(this.log.lastTerm() <= this.term || initial.entries.length === 0, 'recovered log terms do not exceed the recovered term');
    this.snapConf = cloneConf(sm.conf);
    this.conf = this.snapConf;
    // Replay the membership changes the application has already applied.
    for (let i = sm.index + 1; i <= initial.applied; i++) {
      const e = this.log.entryAt(i) as Entry;
      if (e.type === EntryType.ConfChange) this.applyConfEntry(e);
    }
    this.randomizedElectionTimeout = this.nextElectionTimeout();
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.prevSoft = { leader: null, role: Role.Follower };
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------- public surface

  tick(): void {
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  step(m: Message): void {
    invariant(m.term <= maxSafeIndex && m.index <= maxSafeIndex && m.commit <= maxSafeIndex, 'message term/index/commit below 2^53');
    if (m.from === this.id) return;
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = m.context === transferContext;
        const inLease = this.cfg.checkQuorum && this.lead !== null && this.electionElapsed < this.cfg.electionTicks;
        // A live leader was heard from recently: a disrupting candidate is ignored (lease).
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote || (m.type === MessageType.PreVoteResp && !m.reject)) {
        // A pre-vote never changes our term: the candidate has not won anything yet.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
        // A stale leader learns our term from this answer and steps down.
        this.send(this.msg(MessageType.AppResp, m.from));
      } else if (m.type === MessageType.PreVote) {
        this.send({ ...this.msg(MessageType.PreVoteResp, m.from), reject: true });
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.Leader: this.stepLeader(m); break;
      case Role.Candidate:
      case Role.PreCandidate: this.stepCandidate(m); break;
      case Role.Follower: this.stepFollower(m); break;
    }
  }

  propose(data: Uint8Array): boolean {
    return this.appendProposal(EntryType.Normal, data);
  }

  proposeConfChange(change: ConfChange): boolean {
    if (this.role !== Role.Leader) return false;
    if (this.pendingConfIndex > this.log.applied) return false;
    if (!isEffective(this.conf, change)) return false;
    if (!this.appendProposal(EntryType.ConfChange, encodeConfChange(change))) return false;
    this.pendingConfIndex = this.log.lastIndex();
    return true;
  }

  readIndex(context: string): void {
    if (this.role === Role.Leader) {
      this.handleReadIndex(context, this.id);
    } else if (this.lead !== null) {
      this.send({ ...this.msg(MessageType.ReadIndex, this.lead), context });
    }
    // No known leader: the read is dropped; the caller times out and retries.
  }

  transferLeader(target: NodeId): void {
    if (this.role === Role.Leader) {
      this.handleTransferLeader(target);
    } else if (this.lead !== null && target !== this.lead) {
      this.send({ ...this.msg(MessageType.TransferLeader, this.lead), context: target });
    }
  }

  campaign(): void {
    if (this.role === Role.Leader) return;
    this.startElection(this.cfg.preVote ? 'pre' : 'vote', false);
  }

  compact(index: number, data: Uint8Array): void {
    if (index < this.log.snapIndex) return;
    if (index === this.log.snapIndex) {
      // Hands back the data of the snapshot we restarted from.
      this.snapshotData = data;
      return;
    }
    const conf = this.confAt(index);
    this.log.compact(index);
    this.snapConf = conf;
    this.confHistory = this.confHistory.filter((p) => p.index > index);
    this.snapshotData = data;
  }

  reportSnapshotFailure(to: NodeId): void {
    const pr = this.prs.get(to);
    if (this.role !== Role.Leader || pr === undefined || pr.state !== ProgressState.Snapshot) return;
    pr.pendingSnapshot = 0;
    pr.becomeProbe();
  }

  reportUnreachable(to: NodeId): void {
    const pr = this.prs.get(to);
    if (this.role === Role.Leader && pr !== undefined && pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    if (this.needBroadcast || this.needReadHeartbeat) return true;
    if (this.prevSoft.leader !== this.lead || this.prevSoft.role !== this.role) return true;
    const h = this.prevHard;
    if (h.term !== this.term || h.vote !== this.vote || h.commit !== this.log.committed) return true;
    return this.pendingSnapshot !== null || this.log.hasUnstable() || this.log.hasNextCommitted()
      || this.msgsBeforePersist.length > 0 || this.msgsAfterPersist.length > 0 || this.readStates.length > 0;
  }

  ready(): Ready {
    invariant(this.outstanding === null, 'ready() is called again only after advance()');
    this.flushBroadcast();
    let softState: SoftState | null = null;
    if (this.prevSoft.leader !== this.lead || this.prevSoft.role !== this.role) {
      softState = { leader: this.lead, role: this.role };
      this.prevSoft = softState;
    }
    let hardState: HardState | null = null;
    const h = this.prevHard;
    if (h.term !== this.term || h.vote !== this.vote || h.commit !== this.log.committed) {
      invariant(this.term >= h.term, 'term never decreases');
      invariant(this.log.committed >= h.commit, 'commit never decreases');
      invariant(this.term !== h.term || h.vote === null || this.vote === h.vote, 'at most one vote per term');
      hardState = { term: this.term, vote: this.vote, commit: this.log.committed };
      this.prevHard = hardState;
    }
    const snapshot = this.pendingSnapshot;
    this.pendingSnapshot = null;
    const entries = this.log.takeUnstable();
    const committedEntries = this.log.takeCommitted(0);
    const rd: Ready = {
      softState,
      hardState,
      entries,
      snapshot,
      committedEntries,
      messagesBeforePersist: this.msgsBeforePersist,
      messages: this.msgsAfterPersist,
      readStates: this.readStates,
      mustSync: hardState !== null || entries.length > 0 || snapshot !== null,
    };
    this.msgsBeforePersist = [];
    this.msgsAfterPersist = [];
    this.readStates = [];
    this.outstanding = rd;
    return rd;
  }

  advance(rd: Ready): void {
    invariant(this.outstanding === rd, 'advance() gets the Ready last returned by ready()');
    this.outstanding = null;
    if (rd.snapshot !== null) {
      this.log.markSnapshotStable(rd.snapshot.meta.index);
      this.log.appliedTo(Math.min(rd.snapshot.meta.index, this.log.committed));
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) this.log.markStable(lastEntry.index);
    for (const e of rd.committedEntries) {
      if (e.index <= this.log.applied) continue;
      this.log.appliedTo(e.index);
      if (e.type === EntryType.ConfChange) this.applyConfEntry(e);
    }
    invariant(this.log.applied <= this.log.committed && this.log.committed <= this.log.lastIndex(), 'applied <= commit <= last index');
    if (this.role === Role.Leader) {
      const self = this.prs.get(this.id);
      if (self !== undefined && self.maybeUpdate(this.log.stableTo)) this.maybeCommit();
    }
  }

  status(): RaftStatus {
    const progress: RaftStatus['progress'] = {};
    if (this.role === Role.Leader) {
      for (const [id, pr] of this.prs) progress[id] = { match: pr.match, next: pr.next, recentActive: pr.recentActive, state: pr.state };
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leader: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: cloneConf(this.conf),
      progress,
      leadTransferee: this.leadTransferee,
    };
  }

  /** Test and simulator support: the entry at `index` in memory, if any. */
  entryAt(index: number): Entry | undefined {
    return this.log.entryAt(index);
  }

  /** Test and simulator support: the snapshot point of the in-memory log. */
  snapshotMeta(): SnapshotMeta {
    return { index: this.log.snapIndex, term: this.log.snapTerm, conf: cloneConf(this.snapConf) };
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (term !== this.term) {
      invariant(term > this.term, `term moves forward (${this.term} -> ${term})`);
      invariant(term <= maxSafeIndex, 'term below 2^53');
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.nextElectionTimeout();
    this.leadTransferee = null;
    this.votes.clear();
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.pendingReads = [];
    this.needBroadcast = false;
    this.needReadHeartbeat = false;
    this.prs.clear();
  }

  private becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.role = Role.Follower;
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    invariant(this.role !== Role.Leader, 'a leader does not pre-campaign');
    // Term and vote stay: a pre-election changes nothing that must be persisted.
    this.votes.clear();
    this.lead = null;
    this.role = Role.PreCandidate;
    this.electionElapsed = 0;
    this.randomizedElectionTimeout = this.nextElectionTimeout();
  }

  private becomeCandidate(): void {
    invariant(this.role !== Role.Leader, 'a leader does not campaign');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    invariant(this.role === Role.Candidate, 'only a candidate becomes leader');
    invariant(this.vote === this.id, 'a leader voted for itself in its term');
    this.reset(this.term);
    this.role = Role.Leader;
    this.lead = this.id;
    const next = this.log.lastIndex() + 1;
    for (const v of this.conf.voters) this.prs.set(v, this.newProgress(next, false));
    for (const l of this.conf.learners) this.prs.set(l, this.newProgress(next, true));
    const self = this.prs.get(this.id) as Progress;
    self.match = this.log.stableTo;
    self.becomeReplicate();
    self.recentActive = true;
    // §5.4.2: an entry of this term lets earlier-term entries commit (and gates ReadIndex).
    this.log.appendLocal({ term: this.term, index: next, type: EntryType.Normal, data: emptyData });
    this.pendingConfIndex = this.log.lastIndex();
    this.needBroadcast = true;
  }

  private newProgress(next: number, isLearner: boolean): Progress {
    return new Progress(next, isLearner, this.cfg.maxInflightMessages, this.cfg.maxInflightBytes);
  }

  private nextElectionTimeout(): number {
    const r = this.cfg.random.nextInt(this.cfg.electionTicks);
    invariant(Number.isInteger(r) && r >= 0 && r < this.cfg.electionTicks, 'random source returns an integer in range');
    return this.cfg.electionTicks + r;
  }

  private promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  private quorum(): number {
    return Math.floor(this.conf.voters.length / 2) + 1;
  }

  // ---------------------------------------------------------------- ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.startElection(this.cfg.preVote ? 'pre' : 'vote', false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, null);
        return;
      }
      // A transfer that has not finished within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.leadTransferee = null;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.readOnly.lastContext());
    }
  }

  /** CheckQuorum: has a quorum of voters been heard from since the last round? Resets the marks. */
  private quorumActive(): boolean {
    let active = 0;
    for (const v of this.conf.voters) {
      const pr = this.prs.get(v);
      if (v === this.id || pr?.recentActive === true) active++;
    }
    for (const [id, pr] of this.prs) pr.recentActive = id === this.id;
    return active >= this.quorum();
  }

  // ---------------------------------------------------------------- elections

  private startElection(kind: 'pre' | 'vote', transfer: boolean): void {
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChange()) return;
    if (kind === 'pre') {
      this.becomePreCandidate();
    } else {
      this.becomeCandidate();
    }
    const voteTerm = kind === 'pre' ? this.term + 1 : this.term;
    const type = kind === 'pre' ? MessageType.PreVote : MessageType.Vote;
    this.votes.set(this.id, true);
    if (this.tally() === 'won') {
      this.wonElection(kind);
      return;
    }
    for (const v of this.conf.voters) {
      if (v === this.id) continue;
      const m: Message = { ...this.msg(type, v), term: voteTerm, index: this.log.lastIndex(), logTerm: this.log.lastTerm() };
      if (transfer) m.context = transferContext;
      this.send(m);
    }
  }

  private hasUnappliedConfChange(): boolean {
    for (let i = this.log.applied + 1; i <= this.log.committed; i++) {
      const e = this.log.entryAt(i);
      if (e !== undefined && e.type === EntryType.ConfChange) return true;
    }
    return false;
  }

  private tally(): 'won' | 'lost' | 'pending' {
    let granted = 0;
    let rejected = 0;
    for (const v of this.conf.voters) {
      const g = this.votes.get(v);
      if (g === true) granted++;
      else if (g === false) rejected++;
    }
    const q = this.quorum();
    if (granted >= q) return 'won';
    if (rejected >= q) return 'lost';
    return 'pending';
  }

  private wonElection(kind: 'pre' | 'vote'): void {
    if (kind === 'pre') this.startElection('vote', false);
    else this.becomeLeader();
  }

  private handleVoteRequest(m: Message): void {
    const pre = m.type === MessageType.PreVote;
    const respType = pre ? MessageType.PreVoteResp : MessageType.VoteResp;
    const canVote = this.vote === m.from
      || (this.vote === null && this.lead === null)
      || (pre && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers in the candidate's future term; a real vote is in ours.
      this.send({ ...this.msg(respType, m.from), term: m.term });
      if (!pre) {
        invariant(this.vote === null || this.vote === m.from, 'at most one vote per term');
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ ...this.msg(respType, m.from), reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.PreVoteResp:
      case MessageType.VoteResp: {
        if (m.type !== myResp) return;
        if (!this.conf.voters.includes(m.from)) return;
        this.votes.set(m.from, !m.reject);
        const result = this.tally();
        if (result === 'won') this.wonElection(this.role === Role.PreCandidate ? 'pre' : 'vote');
        else if (result === 'lost') this.becomeFollower(this.term, null);
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // The leader hands over: campaign at once, skipping PreVote and the peers' leases.
        this.startElection('vote', true);
        return;
      case MessageType.TransferLeader:
        if (this.lead !== null) this.send({ ...this.msg(MessageType.TransferLeader, this.lead), context: m.context ?? m.from });
        return;
      case MessageType.ReadIndex:
        if (this.lead !== null) this.send({ ...this.msg(MessageType.ReadIndex, this.lead), context: m.context ?? '' });
        return;
      case MessageType.ReadIndexResp:
        if (m.context !== undefined) this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ ...this.msg(MessageType.AppResp, m.from), index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      const lastNew = this.log.appendAfter(m.index, m.entries);
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.send({ ...this.msg(MessageType.AppResp, m.from), index: lastNew });
      return;
    }
    // Fast back-off: point the leader at the last index that could match, by term.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({
      ...this.msg(MessageType.AppResp, m.from),
      index: m.index,
      reject: true,
      rejectHint: hint,
      rejectHintTerm: this.log.term(hint) ?? 0,
    });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    const resp = this.msg(MessageType.HeartbeatResp, m.from);
    if (m.context !== undefined) resp.context = m.context;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    invariant(s !== undefined, 'a Snap message carries a snapshot');
    const { index, term } = s.meta;
    if (index <= this.log.committed) {
      this.send({ ...this.msg(MessageType.AppResp, m.from), index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(index, term)) {
      // We already hold the snapshot's entries: just learn that they are committed.
      this.log.commitTo(index);
      this.send({ ...this.msg(MessageType.AppResp, m.from), index: this.log.committed });
      return;
    }
    this.log.restore(index, term);
    this.pendingSnapshot = s;
    this.snapshotData = s.data;
    this.snapConf = cloneConf(s.meta.conf);
    this.conf = this.snapConf;
    this.confHistory = [];
    this.send({ ...this.msg(MessageType.AppResp, m.from), index });
  }

  // ---------------------------------------------------------------- leader

  private appendProposal(type: EntryType, data: Uint8Array): boolean {
    if (this.role !== Role.Leader || this.leadTransferee !== null) return false;
    const size = data.byteLength;
    const cap = this.cfg.maxUncommittedBytes;
    if (cap > 0 && this.uncommittedBytes > 0 && this.uncommittedBytes + size > cap) return false;
    this.uncommittedBytes += size;
    this.log.appendLocal({ term: this.term, index: this.log.lastIndex() + 1, type, data });
    this.needBroadcast = true;
    return true;
  }

  private flushBroadcast(): void {
    if (this.role !== Role.Leader) {
      this.needBroadcast = false;
      this.needReadHeartbeat = false;
      return;
    }
    if (this.needReadHeartbeat) {
      this.needReadHeartbeat = false;
      this.broadcastHeartbeat(this.readOnly.lastContext());
    }
    if (this.needBroadcast) {
      this.needBroadcast = false;
      for (const id of this.prs.keys()) {
        if (id === this.id) continue;
        this.sendAppend(id, true);
      }
    }
  }

  /** Sends as many Apps to `to` as flow control allows (at least an empty one if `sendIfEmpty`). */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): void {
    let allowEmpty = sendIfEmpty;
    while (this.maybeSendAppend(to, allowEmpty)) allowEmpty = false;
  }

  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) {
      this.sendSnapshot(to, pr);
      return false;
    }
    const last = this.log.lastIndex();
    let entries = noEntries;
    let bytes = 0;
    if (pr.next <= last) {
      entries = this.log.slice(pr.next, last, this.cfg.maxMessageBytes);
      for (const e of entries) bytes += entryBytes(e);
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ ...this.msg(MessageType.App, to), index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentEntries(entries.length, prevIndex + entries.length, bytes);
    return entries.length > 0 && pr.state === ProgressState.Replicate;
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    if (!pr.recentActive) return; // do not ship a snapshot to a peer that seems down
    invariant(this.snapshotData !== null, 'the application handed back the snapshot data (compact(meta.index, data) after restart)');
    const meta: SnapshotMeta = { index: this.log.snapIndex, term: this.log.snapTerm, conf: cloneConf(this.snapConf) };
    this.send({ ...this.msg(MessageType.Snap, to), snapshot: { meta, data: this.snapshotData } });
    pr.becomeSnapshot(meta.index);
  }

  private sendHeartbeat(to: NodeId, context: string | undefined): void {
    const pr = this.prs.get(to);
    const m = this.msg(MessageType.Heartbeat, to);
    // Never tell a follower to commit beyond what it is known to hold.
    m.commit = Math.min(pr?.match ?? 0, this.log.committed);
    if (context !== undefined) m.context = context;
    this.send(m);
  }

  private broadcastHeartbeat(context: string | undefined): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendHeartbeat(id, context);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        invariant(false, `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        return;
      case MessageType.AppResp:
        this.handleAppendResponse(m);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m);
        return;
      case MessageType.ReadIndex:
        if (m.context !== undefined) this.handleReadIndex(m.context, m.from);
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m.context ?? m.from);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if ((m.rejectHintTerm ?? 0) > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.rejectHintTerm ?? 0);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const updated = pr.maybeUpdate(m.index);
    if (updated || (pr.match === m.index && pr.state === ProgressState.Probe)) {
      if (pr.state === ProgressState.Probe) {
        pr.becomeReplicate();
      } else if (pr.state === ProgressState.Snapshot) {
        if (pr.match + 1 >= this.log.firstIndex()) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
      } else {
        pr.inflights.freeLE(m.index);
      }
      // A commit sets needBroadcast: the next ready() tells every follower at once.
      if (!this.maybeCommit() && (wasPaused || updated)) this.sendAppend(m.from, false);
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
        this.send(this.msg(MessageType.TimeoutNow, m.from));
      }
    }
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    // A lost App would otherwise stall the peer: an empty App re-synchronises it.
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (m.context === undefined || this.conf.learners.includes(m.from)) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    let voters = 0;
    for (const v of this.conf.voters) if (acks.has(v)) voters++;
    if (voters < this.quorum()) return;
    for (const req of this.readOnly.release(m.context)) this.answerRead(req.context, req.index, req.from);
  }

  private handleReadIndex(context: string, from: NodeId): void {
    if (!this.committedInCurrentTerm()) {
      // §6.4: the leader's commit index is only known to be current once an entry of its term commits.
      this.pendingReads.push({ context, from });
      return;
    }
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      this.answerRead(context, this.log.committed, from);
      return;
    }
    if (this.readOnly.add(context, this.log.committed, from, this.id)) this.needReadHeartbeat = true;
  }

  private answerRead(context: string, index: number, from: NodeId): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ ...this.msg(MessageType.ReadIndexResp, from), index, context });
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private handleTransferLeader(target: NodeId): void {
    const pr = this.prs.get(target);
    if (pr === undefined || pr.isLearner || target === this.id) return;
    if (this.leadTransferee === target) return;
    this.leadTransferee = target;
    // The transfer must finish within one election timeout, counted from now.
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.send(this.msg(MessageType.TimeoutNow, target));
    else this.sendAppend(target, true);
  }

  /** Commits the highest index a quorum of voters holds durably, if it is of this term (§5.4.2). */
  private maybeCommit(): boolean {
    const matches = this.quorumScratch;
    matches.length = 0;
    for (const v of this.conf.voters) matches.push(this.prs.get(v)?.match ?? 0);
    matches.sort((a, b) => b - a);
    const candidate = matches[this.quorum() - 1] ?? 0;
    if (candidate <= this.log.committed || this.log.term(candidate) !== this.term) return false;
    const before = this.log.committed;
    this.log.commitTo(candidate);
    for (let i = before + 1; i <= candidate; i++) this.uncommittedBytes -= entryBytes(this.log.entryAt(i) as Entry);
    if (this.uncommittedBytes < 0) this.uncommittedBytes = 0;
    if (this.term === this.log.term(candidate) && this.pendingReads.length > 0) {
      const waiting = this.pendingReads;
      this.pendingReads = [];
      for (const r of waiting) this.handleReadIndex(r.context, r.from);
    }
    this.needBroadcast = true;
    return true;
  }

  // ---------------------------------------------------------------- membership

  private applyConfEntry(e: Entry): void {
    const change = decodeConfChange(e.data);
    this.conf = applyChange(this.conf, change);
    this.confHistory.push({ index: e.index, conf: this.conf });
    if (this.role !== Role.Leader) return;
    if (!this.conf.voters.includes(this.id)) {
      // A removed (or demoted) leader steps down; the rest elect a new one.
      this.becomeFollower(this.term, null);
      return;
    }
    this.syncProgress();
    if (this.leadTransferee !== null && !this.conf.voters.includes(this.leadTransferee)) this.leadTransferee = null;
    this.maybeCommit();
    this.needBroadcast = true;
  }

  /** Makes the leader's progress map match the configuration in force. */
  private syncProgress(): void {
    const members = new Set([...this.conf.voters, ...this.conf.learners]);
    for (const id of [...this.prs.keys()]) if (!members.has(id)) this.prs.delete(id);
    const next = this.log.lastIndex() + 1;
    for (const v of this.conf.voters) {
      const pr = this.prs.get(v);
      if (pr === undefined) this.prs.set(v, this.newProgress(next, false));
      else pr.isLearner = false;
    }
    for (const l of this.conf.learners) {
      const pr = this.prs.get(l);
      if (pr === undefined) this.prs.set(l, this.newProgress(next, true));
      else pr.isLearner = true;
    }
  }

  private confAt(index: number): ConfState {
    let conf = this.snapConf;
    for (const p of this.confHistory) {
      if (p.index > index) break;
      conf = p.conf;
    }
    return conf;
  }

  // ---------------------------------------------------------------- messages

  private msg(type: MessageType, to: NodeId): Message {
    return { type, from: this.id, to, term: this.term, logTerm: 0, index: 0, entries: noEntries, commit: 0, reject: false, rejectHint: 0 };
  }

  /**
   * The leader's replication traffic may leave before its own log is durable (§10.2.1 of the
   * thesis); everything else — votes, acknowledgements, campaign requests — promises durable
   * state and waits for the Ready's persist step.
   */
  private send(m: Message): void {
    const early = this.role === Role.Leader
      && (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap
        || m.type === MessageType.TimeoutNow || m.type === MessageType.ReadIndexResp);
    if (early) this.msgsBeforePersist.push(m);
    else this.msgsAfterPersist.push(m);
  }
}
