/**
 * The contract of the Raft core: what goes in (messages, ticks, proposals) and what comes out
 * (a Ready: state to persist, messages to send, entries to apply). Shaped after etcd's raft.
 *
 * Node ids are strings (stable member ids). Terms and indexes are plain numbers; the core
 * asserts they stay below Number.MAX_SAFE_INTEGER (2^53 - 1), which at one entry per
 * microsecond lasts ~285 years.
 */

export type NodeId = string;

export const EntryType = { Normal: 'normal', ConfChange: 'conf-change' } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque to the core. Empty for the leader's no-op entry. For ConfChange: encodeConfChange(). */
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export const ConfChangeType = {
  /** Bootstrap-only convenience and for the simulator; operators go learner -> promote. */
  AddVoter: 'add-voter',
  AddLearner: 'add-learner',
  PromoteLearner: 'promote-learner',
  RemoveNode: 'remove-node',
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
  /** Opaque context carried to the application (e.g. the member's address). */
  context?: string;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  /** The application's state at meta.index, opaque to the core. */
  data: Uint8Array;
}

export const MessageType = {
  Vote: 'vote',
  VoteResp: 'vote-resp',
  PreVote: 'pre-vote',
  PreVoteResp: 'pre-vote-resp',
  App: 'app',
  AppResp: 'app-resp',
  Heartbeat: 'heartbeat',
  HeartbeatResp: 'heartbeat-resp',
  Snap: 'snap',
  /** Leader transfer: tells the target to campaign at once, skipping PreVote. */
  TimeoutNow: 'timeout-now',
  /** A follower asks the leader to transfer leadership to it (forwarded transferLeader()). */
  TransferLeader: 'transfer-leader',
  /** A follower forwards a ReadIndex request to the leader. */
  ReadIndex: 'read-index',
  ReadIndexResp: 'read-index-resp',
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry at `index` (the entry just before `entries`). Vote: candidate's last term. */
  logTerm: number;
  /** App: index of the entry before `entries`. AppResp: highest index the sender has (on success). Vote: candidate's last index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp rejection: the follower's hint for fast back-off (its last index or a conflict index). */
  rejectHint: number;
  /** AppResp rejection: the term at rejectHint on the follower (etcd's fast back-off by term). */
  rejectHintTerm?: number;
  snapshot?: Snapshot;
  /** ReadIndex request context, echoed back in heartbeats and ReadIndexResp. */
  context?: string;
}

export interface ReadState {
  /** Reads for `context` are linearizable once the state machine has applied `index`. */
  index: number;
  context: string;
}

export const Role = { Follower: 'follower', PreCandidate: 'pre-candidate', Candidate: 'candidate', Leader: 'leader' } as const;
export type Role = (typeof Role)[keyof typeof Role];

export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

/**
 * What the caller must do. Order of work for one Ready:
 *  1. `messagesBeforePersist` may be sent at once (the leader's appends and heartbeats: the
 *     leader may replicate in parallel with writing its own log).
 *  2. Persist, atomically and durably (fsync): `snapshot` (if any), then `entries` (replacing any
 *     persisted entries at or after entries[0].index), then `hardState` (if any).
 *  3. Only then send `messages` (votes, append acknowledgements: they promise durable state).
 *  4. Apply `snapshot` (if any) and then `committedEntries` to the state machine, in order.
 *  5. Call `advance(ready)`.
 */
export interface Ready {
  softState: SoftState | null;
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
  committedEntries: Entry[];
  messagesBeforePersist: Message[];
  messages: Message[];
  readStates: ReadState[];
  /** True when hardState/entries/snapshot must be fsync'd before `messages` go out. */
  mustSync: boolean;
}

/** Deterministic randomness, injected: the core never calls Math.random. */
export interface RandomSource {
  /** An integer in [0, maxExclusive). */
  nextInt(maxExclusive: number): number;
}

export interface RaftConfig {
  id: NodeId;
  /** Election timeout is randomized in [electionTicks, 2 * electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Flow control: at most this many App messages in flight to one follower. */
  maxInflightMessages: number;
  /** Flow control: at most this many bytes of entries in flight to one follower (0 = no limit). */
  maxInflightBytes: number;
  /** Batching: at most this many bytes of entries in one App message (at least one entry is sent). */
  maxMessageBytes: number;
  /** Proposals are dropped (return false) while more than this many bytes are uncommitted (0 = no limit). */
  maxUncommittedBytes: number;
  random: RandomSource;
}

/** What the caller recovered from stable storage at start. */
export interface RaftInitialState {
  hardState: HardState;
  /** Latest persisted snapshot's metadata (index 0 / term 0 / given conf for a new node). */
  snapshotMeta: SnapshotMeta;
  /** Persisted entries after snapshotMeta.index, in order. */
  entries: Entry[];
  /** Highest index already applied by the state machine (>= snapshotMeta.index). */
  applied: number;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  role: Role;
  leader: NodeId | null;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  conf: ConfState;
  /** Leader only: per peer match/next index and whether it was recently active. */
  progress: Record<NodeId, { match: number; next: number; recentActive: boolean; state: 'probe' | 'replicate' | 'snapshot' }>;
  leadTransferee: NodeId | null;
}

/**
 * The public surface of the core (implemented by RaftNode in raft.ts).
 *  - propose/proposeConfChange return false when the proposal is dropped (not leader, transfer in
 *    progress, a conf change already pending, uncommitted bytes over the cap); the caller retries
 *    elsewhere. Proposal ids are the caller's business: it sees the entry come back committed.
 *  - readIndex(context): leader confirms leadership with a heartbeat round, then a ReadState
 *    appears in a later Ready (never before an entry of its own term has committed).
 *  - compact(index, data): the application hands a snapshot of its state at `index` (<= applied);
 *    entries up to it are dropped from memory and the snapshot is used for lagging followers.
 */
export interface RaftCore {
  tick(): void;
  step(message: Message): void;
  propose(data: Uint8Array): boolean;
  proposeConfChange(change: ConfChange): boolean;
  readIndex(context: string): void;
  transferLeader(target: NodeId): void;
  campaign(): void;
  compact(index: number, data: Uint8Array): void;
  /** The follower `to` could not receive a snapshot: go back to probing it. */
  reportSnapshotFailure(to: NodeId): void;
  reportUnreachable(to: NodeId): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(ready: Ready): void;
  status(): RaftStatus;
}
