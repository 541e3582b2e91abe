/**
 * Typed client of the metadata API. Given some member addresses it finds the leader, follows
 * NOT_LEADER redirects, and retries UNAVAILABLE / NO_LEADER / PROPOSAL_DROPPED / TIMEOUT with
 * backoff until the call's deadline. Every mutating call carries this client's id and a
 * sequence number taken once per call, so all its retries are applied at most once.
 *
 * The state machine remembers the last `maxResultsPerClient` results of each client id; a retry
 * whose seq fell below that window cannot be told from an old duplicate and is refused. So a
 * client id never has calls in flight spread over more seqs than that window: past it, further
 * concurrent calls use another session id (`<clientId>.<n>`), each with its own seq counter.
 *
 * Calls are multiplexed on one long-lived gRPC stream per member (unary gRPC calls cost far more
 * per request here); `transport: 'unary'` falls back to one call per request.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { ErrorCode, GalleonError, type ErrorCode as Code } from '../../proto/errors.js';
import { grpcChannelOptions, serviceConstructor } from '../../proto/grpc-loader.js';
import { grpcChannelCredentials, type TlsMaterial } from '../../proto/tls.js';
import type {
  BackupPolicy, BackupPolicySpec, BackupTarget, BackupTargetSpec,
  ClusterStatus, DataNode, DataNodeRegistration, DataNodeRemoval, FsAttr, FsBlocksToFree, FsCaller, FsCloses, FsCreateOptions, FsEntryReply, FsFileType,
  FsBatchFile, FsDelegation, FsFlushState, FsInodeRange, FsReadOptions, FsReaddirPage, FsRenameReply, FsSetattr, FsStatfs, FsUnlinkReply, Lease, LeaseKind, Member, MetadataApi, PgReport,
  PlacementGroup, ReadOptions, Snapshot, SnapshotTreePage, StorageClass, StorageClassSpec, TenantScope, TimeNs, Volume, VolumeKeyRecord, VolumeSpec, WrappedDataKey,
} from '../../proto/metadata-types.js';
import type { CallReplyWire, CallRequestWire } from './grpc-server.js';
import { maxResultsPerClient } from '../state/logic/apply.js';
import { commandMethods } from '../state/contract.js';
import type { AuthApi, TokenSpec, UserSpec } from '../../proto/auth-api.js';
import type { PolicyEntry, TokenInfo, User } from '../../proto/auth.js';
import { authorizationHeader, bearer, type CredentialRecord } from '../../proto/auth-token.js';

/** Sessions one client opens at most; calls beyond their combined window wait. */
export const maxSessionsPerClient = 64;

/** One (clientId, seq counter) pair with the seqs it has in flight. */
class SeqSession {
  next = 1;
  readonly inFlight = new Set<number>();
  constructor(readonly id: string) {}

  /** Whether a new seq keeps every in-flight one inside the state machine's result window. */
  canIssue(): boolean {
    let oldest = this.next;
    for (const s of this.inFlight) if (s < oldest) oldest = s;
    return this.next - oldest < maxResultsPerClient;
  }
}

export interface MetadataClientOptions {
  /** gRPC addresses (host:port) of some members; the leader is found from them. */
  addresses: string[];
  /** Stable id for exactly-once retries; a random UUID by default. */
  clientId?: string;
  /** Total time one call may take, retries included. */
  callDeadlineMs?: number;
  /** Time one attempt may take before it is retried. */
  attemptTimeoutMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  transport?: 'stream' | 'unary';
  /**
   * How long an fs call that meets a directory delegated to another mount (DELEGATED) waits for
   * the holder to release it after the recall; longer than a mount lease's 15 s TTL, so a dead
   * holder's delegation has ended by then (metadata/state/logic/ns-delegation.ts).
   */
  recallWaitMs?: number;
  /**
   * The whole wait for a recalled directory when its holder is alive but slow (its flush keeps
   * failing or is large): past `recallWaitMs` the wait goes on while the holder's mount lease is
   * live (renewed), up to this in all; then the last DELEGATED goes to the caller.
   */
  maxRecallWaitMs?: number;
  /** Sent as gRPC metadata `authorization: Bearer <token>` (issue #12): a user's token or the node credential. */
  token?: string;
  /** Mutual TLS with the members (proto/tls.ts); null/absent: plaintext. */
  tls?: TlsMaterial | null;
}

export const clientDefaults = {
  callDeadlineMs: 15_000,
  attemptTimeoutMs: 2_000,
  backoffMinMs: 20,
  backoffMaxMs: 500,
  recallWaitMs: 20_000,
  maxRecallWaitMs: 120_000,
} as const;

/** Past `recallWaitMs`, how often the waiter asks again whether the holder's lease is live. */
const recallLivenessCheckMs = 5_000;

/** The trailing session argument of fsLookup/fsReaddir, when the caller reads as a mount session. */
function asSession(opts: FsReadOptions | undefined): string[] {
  return opts?.session === undefined ? [] : [opts.session];
}

/** One watch call while waiting for a recalled directory (the member's bound is 60 s). */
const maxRecallWatchMs = 60_000;

/** The delegation's own commands: never recalled (the holder's, or the recall itself). */
const delegationMethods = new Set(['fsDelegate', 'fsRecall', 'fsReleaseDelegation', 'fsCommitBatch', 'fsReserve']);

/** A watch call's attempt may take its own timeout plus this. */
const watchMarginMs = 5_000;

/** Redirects followed in a row without backoff (a leader change can take two hops). */
const maxFreeRedirects = 3;

const retryableCodes = new Set<Code>([ErrorCode.UNAVAILABLE, ErrorCode.NO_LEADER, ErrorCode.PROPOSAL_DROPPED, ErrorCode.TIMEOUT, ErrorCode.NOT_LEADER]);

/** One table of mutating methods for the whole service (metadata/state/contract.ts). */
const mutatingMethods = new Set<string>(commandMethods);

interface Pending { resolve: (r: CallReplyWire) => void; reject: (e: GalleonError) => void; timer: NodeJS.Timeout }

type RawClient = grpc.Client & {
  Call: (req: CallRequestWire, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: CallReplyWire) => void) => void;
  CallStream: (md: grpc.Metadata) => grpc.ClientDuplexStream<CallRequestWire, CallReplyWire>;
};

class MemberEndpoint {
  private readonly client: RawClient;
  private stream: grpc.ClientDuplexStream<CallRequestWire, CallReplyWire> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  private readonly md = new grpc.Metadata();

  constructor(readonly address: string, ctor: grpc.ServiceClientConstructor, private readonly mode: 'stream' | 'unary', tls: TlsMaterial | null, token: string | undefined) {
    this.client = new ctor(address, grpcChannelCredentials(tls), grpcChannelOptions) as unknown as RawClient;
    if (token !== undefined) this.md.set(authorizationHeader, bearer(token));
  }

  call(req: Omit<CallRequestWire, 'id'>, timeoutMs: number): Promise<CallReplyWire> {
    if (this.mode === 'unary') {
      return new Promise((resolve, reject) => {
        this.client.Call({ ...req, id: 0 }, this.md, { deadline: Date.now() + timeoutMs }, (err, reply) => {
          if (err !== null || reply === undefined) reject(transportError(this.address, err));
          else resolve(reply);
        });
      });
    }
    const stream = this.ensureStream();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new GalleonError(ErrorCode.TIMEOUT, `metadata member ${this.address} did not answer within ${timeoutMs} ms`, { hint: 'the member may be overloaded or partitioned' }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      stream.write({ ...req, id });
    });
  }

  private ensureStream(): grpc.ClientDuplexStream<CallRequestWire, CallReplyWire> {
    if (this.stream !== null) return this.stream;
    const stream = this.client.CallStream(this.md);
    stream.on('data', (reply: CallReplyWire) => {
      const p = this.pending.get(reply.id);
      if (p === undefined) return;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      p.resolve(reply);
    });
    const broken = (err: grpc.ServiceError | null): void => {
      if (this.stream !== stream) return;
      this.stream = null;
      const e = transportError(this.address, err);
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(e);
      }
      this.pending.clear();
    };
    stream.on('error', (err: grpc.ServiceError) => broken(err));
    stream.on('end', () => broken(null));
    this.stream = stream;
    return stream;
  }

  close(): void {
    const err = new GalleonError(ErrorCode.UNAVAILABLE, 'metadata client closed', { hint: 'create a new client' });
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    if (this.stream !== null) {
      const s = this.stream;
      this.stream = null;
      s.end();
      s.cancel();
    }
    this.client.close();
  }
}

function transportError(address: string, err: grpc.ServiceError | null): GalleonError {
  const what = err === null ? 'closed the stream' : `is unreachable (${grpc.status[err.code] ?? err.code}: ${err.details})`;
  return new GalleonError(ErrorCode.UNAVAILABLE, `metadata member ${address} ${what}`, { hint: 'check that the member runs; the client retries other members' });
}

export class MetadataClient implements MetadataApi, AuthApi {
  readonly clientId: string;
  private readonly sessions: SeqSession[] = [];
  private sessionWaiters: (() => void)[] = [];
  private readonly opts: Required<Omit<MetadataClientOptions, 'clientId' | 'token'>>;
  private readonly token: string | undefined;
  private readonly endpoints = new Map<string, MemberEndpoint>();
  private readonly ctor: grpc.ServiceClientConstructor;
  private leaderAddress: string | null = null;
  private rotation = 0;
  private closed = false;

  constructor(options: MetadataClientOptions) {
    if (options.addresses.length === 0) {
      throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'a metadata client needs at least one member address', { hint: 'pass the gRPC address (host:port) of a metadata member' });
    }
    this.clientId = options.clientId ?? randomUUID();
    this.token = options.token;
    this.sessions.push(new SeqSession(this.clientId));
    this.opts = {
      addresses: [...options.addresses],
      callDeadlineMs: options.callDeadlineMs ?? clientDefaults.callDeadlineMs,
      attemptTimeoutMs: options.attemptTimeoutMs ?? clientDefaults.attemptTimeoutMs,
      backoffMinMs: options.backoffMinMs ?? clientDefaults.backoffMinMs,
      backoffMaxMs: options.backoffMaxMs ?? clientDefaults.backoffMaxMs,
      transport: options.transport ?? 'stream',
      recallWaitMs: options.recallWaitMs ?? clientDefaults.recallWaitMs,
      maxRecallWaitMs: Math.max(options.maxRecallWaitMs ?? clientDefaults.maxRecallWaitMs, options.recallWaitMs ?? clientDefaults.recallWaitMs),
      tls: options.tls ?? null,
    };
    this.ctor = serviceConstructor('metadata.proto', 'metadata', 'Metadata');
  }

  /** The member this client currently believes leads (null until found). */
  currentLeader(): string | null {
    return this.leaderAddress;
  }

  close(): void {
    this.closed = true;
    for (const e of this.endpoints.values()) e.close();
    this.endpoints.clear();
    const waiters = this.sessionWaiters;
    this.sessionWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Sends one API call, retrying as described above. `seq` defaults to a fresh number for
   * mutating methods; pass one explicitly to replay a call (tests, tools).
   */
  async call(method: string, args: unknown[], opts: { stale?: boolean; seq?: number; deadlineMs?: number; attemptTimeoutMs?: number } = {}): Promise<unknown> {
    if (!mutatingMethods.has(method)) return this.attempt(method, args, '', 0, opts);
    if (opts.seq !== undefined) return this.attempt(method, args, this.clientId, opts.seq, opts);
    const session = await this.acquireSession();
    const seq = session.next++;
    session.inFlight.add(seq);
    try {
      return await this.attempt(method, args, session.id, seq, opts);
    } finally {
      session.inFlight.delete(seq);
      const waiters = this.sessionWaiters;
      this.sessionWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async acquireSession(): Promise<SeqSession> {
    for (;;) {
      if (this.closed) throw new GalleonError(ErrorCode.UNAVAILABLE, 'metadata client closed', { hint: 'create a new client' });
      for (const s of this.sessions) if (s.canIssue()) return s;
      if (this.sessions.length < maxSessionsPerClient) {
        const s = new SeqSession(`${this.clientId}.${this.sessions.length}`);
        this.sessions.push(s);
        return s;
      }
      await new Promise<void>((resolve) => { this.sessionWaiters.push(resolve); });
    }
  }

  private async attempt(method: string, args: unknown[], clientId: string, seq: number, opts: { stale?: boolean; deadlineMs?: number; attemptTimeoutMs?: number }): Promise<unknown> {
    const req: Omit<CallRequestWire, 'id'> = {
      method, args: JSON.stringify(args), client_id: clientId, seq, stale: opts.stale === true,
    };
    const deadline = Date.now() + (opts.deadlineMs ?? this.opts.callDeadlineMs);
    // Stale reads go to the first address (the local member for member.api) unless it fails.
    let target = opts.stale === true ? this.opts.addresses[0]! : this.leaderAddress ?? this.pickAny();
    let backoffMs = this.opts.backoffMinMs;
    let freeRedirects = maxFreeRedirects;
    let lastError: GalleonError | null = null;
    for (;;) {
      if (this.closed) throw new GalleonError(ErrorCode.UNAVAILABLE, 'metadata client closed', { hint: 'create a new client' });
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let err: GalleonError;
      try {
        const reply = await this.endpoint(target).call(req, Math.min(remaining, opts.attemptTimeoutMs ?? this.opts.attemptTimeoutMs));
        if (reply.error === '') {
          if (opts.stale !== true) this.leaderAddress = target;
          return reply.result === '' ? null : JSON.parse(reply.result);
        }
        err = GalleonError.fromJSON(JSON.parse(reply.error));
      } catch (e) {
        if (!(e instanceof GalleonError)) throw e;
        err = e;
      }
      lastError = err;
      if (!retryableCodes.has(err.code)) throw err;
      if (err.code === ErrorCode.NOT_LEADER) {
        const leaderAddress = err.details.leaderAddress;
        if (typeof leaderAddress === 'string' && leaderAddress !== '' && leaderAddress !== target && freeRedirects > 0) {
          freeRedirects--;
          target = leaderAddress;
          this.leaderAddress = leaderAddress;
          continue;
        }
      }
      if (this.leaderAddress === target) this.leaderAddress = null;
      target = this.pickAny();
      // Jitter keeps many clients from retrying in lockstep after a leader change.
      const sleepMs = backoffMs * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, Math.min(sleepMs, Math.max(0, deadline - Date.now()))));
      backoffMs = Math.min(backoffMs * 2, this.opts.backoffMaxMs);
      freeRedirects = maxFreeRedirects;
    }
    throw new GalleonError(lastError?.code === ErrorCode.NOT_LEADER ? ErrorCode.NO_LEADER : ErrorCode.TIMEOUT,
      `metadata call ${method} did not succeed within its deadline${lastError === null ? '' : `: ${lastError.message}`}`, {
        hint: 'check that a quorum of metadata members runs (galleon cluster status); a retried mutation is applied at most once',
        details: { lastCode: lastError?.code ?? null },
      });
  }

  private pickAny(): string {
    const list = this.opts.addresses;
    const a = list[this.rotation % list.length]!;
    this.rotation++;
    return a;
  }

  private endpoint(address: string): MemberEndpoint {
    let e = this.endpoints.get(address);
    if (e === undefined) {
      e = new MemberEndpoint(address, this.ctor, this.opts.transport, this.opts.tls, this.token);
      this.endpoints.set(address, e);
    }
    return e;
  }

  private read<T>(method: string, args: unknown[], opts?: ReadOptions): Promise<T> {
    return this.callRecalling(method, args, { stale: opts?.stale === true }) as Promise<T>;
  }

  private write<T>(method: string, args: unknown[]): Promise<T> {
    return this.callRecalling(method, args, {}) as Promise<T>;
  }

  /** `call`, and for an fs call refused with DELEGATED, the recall and the wait (`afterRecall`). */
  private async callRecalling(method: string, args: unknown[], opts: { stale?: boolean }): Promise<unknown> {
    if (!method.startsWith('fs') || delegationMethods.has(method)) return this.call(method, args, opts);
    try {
      return await this.call(method, args, opts);
    } catch (err) {
      if (!(err instanceof GalleonError) || err.code !== ErrorCode.DELEGATED) throw err;
      return this.afterRecall(method, args, opts, err);
    }
  }

  /**
   * A directory the call reads or changes is delegated to another mount: ask for it back
   * (fsRecall), then run the call again — under a new seq, since a refused command stays refused
   * under its own — each time the watch reports a recall or a delegation's end, until it passes.
   * Bounded: `recallWaitMs`, then (`recallStillLive`) on while the holder's lease is live, up to
   * `maxRecallWaitMs`; then the last DELEGATED goes to the caller.
   */
  private async afterRecall(method: string, args: unknown[], opts: { stale?: boolean }, first: GalleonError): Promise<unknown> {
    const startMs = Date.now();
    let deadline = startMs + this.opts.recallWaitMs;
    const recalled = new Set<string>();
    let since = (await this.waitForChange(0, 0)).index;
    let err = first;
    for (;;) {
      const volume = String(err.details.volume);
      const dir = Number(err.details.dir);
      if (!recalled.has(`${volume}/${dir}`)) {
        recalled.add(`${volume}/${dir}`);
        await this.call('fsRecall', [volume, dir]);
      }
      if (deadline - Date.now() <= 0) {
        if (!(await this.recallStillLive(volume, dir, startMs))) throw err;
        deadline = Math.min(startMs + this.opts.maxRecallWaitMs, Date.now() + recallLivenessCheckMs);
      }
      since = (await this.waitForChange(since, Math.min(Math.max(1, deadline - Date.now()), maxRecallWatchMs))).index;
      try {
        return await this.call(method, args, opts);
      } catch (e) {
        if (!(e instanceof GalleonError) || e.code !== ErrorCode.DELEGATED) throw e;
        err = e;
      }
    }
  }

  /** Whether to wait on for `dir` past `recallWaitMs`: within `maxRecallWaitMs`, and its holder's lease is live (it renews: alive). */
  private async recallStillLive(volume: string, dir: number, startMs: number): Promise<boolean> {
    if (Date.now() - startMs >= this.opts.maxRecallWaitMs) return false;
    const r = await this.call('fsRecall', [volume, dir]) as FsDelegation;
    return r.session === null || r.holderLive === true;
  }

  // ---- MetadataApi ----------------------------------------------------------------------------

  createStorageClass(spec: StorageClassSpec): Promise<StorageClass> { return this.write('createStorageClass', [spec]); }
  addBackupTarget(spec: BackupTargetSpec): Promise<BackupTarget> { return this.write('addBackupTarget', [spec]); }
  removeBackupTarget(name: string): Promise<BackupTarget> { return this.write('removeBackupTarget', [name]); }
  getBackupTarget(name: string, opts?: ReadOptions): Promise<BackupTarget> { return this.read('getBackupTarget', [name], opts); }
  listBackupTargets(opts?: ReadOptions): Promise<BackupTarget[]> { return this.read('listBackupTargets', [], opts); }
  createBackupPolicy(spec: BackupPolicySpec): Promise<BackupPolicy> { return this.write('createBackupPolicy', [spec]); }
  deleteBackupPolicy(id: string): Promise<BackupPolicy> { return this.write('deleteBackupPolicy', [id]); }
  listBackupPolicies(opts?: ReadOptions): Promise<BackupPolicy[]> { return this.read('listBackupPolicies', [], opts); }
  claimBackupRun(policyId: string, dueMs: number, nextDueMs: number, claimedBy: string): Promise<BackupPolicy> { return this.write('claimBackupRun', [policyId, dueMs, nextDueMs, claimedBy]); }
  finishBackupRun(policyId: string, dueMs: number, backupId: string | null, error: string | null, claimedBy: string): Promise<BackupPolicy> { return this.write('finishBackupRun', [policyId, dueMs, backupId, error, claimedBy]); }
  getStorageClass(name: string, opts?: ReadOptions): Promise<StorageClass> { return this.read('getStorageClass', [name], opts); }
  listStorageClasses(opts?: ReadOptions): Promise<StorageClass[]> { return this.read('listStorageClasses', [], opts); }
  async deleteStorageClass(name: string): Promise<void> { await this.write('deleteStorageClass', [name]); }

  createVolume(spec: VolumeSpec): Promise<Volume> { return this.write('createVolume', [spec]); }
  getVolume(nameOrId: string, opts?: ReadOptions): Promise<Volume> { return this.read('getVolume', [nameOrId], opts); }
  listVolumes(opts?: ReadOptions): Promise<Volume[]> { return this.read('listVolumes', [], opts); }
  updateVolumeLabels(nameOrId: string, labels: Record<string, string | null>, scope?: TenantScope): Promise<Volume> { return this.write('updateVolumeLabels', scoped([nameOrId, labels], scope)); }
  expandVolume(nameOrId: string, size: number | string, scope?: TenantScope): Promise<Volume> { return this.write('expandVolume', scoped([nameOrId, size], scope)); }
  deleteVolume(nameOrId: string, scope?: TenantScope): Promise<Volume> { return this.write('deleteVolume', scoped([nameOrId], scope)); }
  getVolumeKey(volumeId: string, opts?: ReadOptions): Promise<VolumeKeyRecord> { return this.read('getVolumeKey', [volumeId], opts); }
  allocateKeyWriter(volumeId: string): Promise<number> { return this.write('allocateKeyWriter', [volumeId]); }
  rewrapVolumeKey(volumeId: string, expectedWrapped: string, next: WrappedDataKey): Promise<VolumeKeyRecord> { return this.write('rewrapVolumeKey', [volumeId, expectedWrapped, next]); }

  createSnapshot(volume: string, name?: string | null, scope?: TenantScope): Promise<Snapshot> { return this.write('createSnapshot', scoped([volume, name ?? null], scope)); }
  listSnapshots(volume?: string, opts?: ReadOptions): Promise<Snapshot[]> { return this.read('listSnapshots', [volume ?? null], opts); }
  getSnapshot(nameOrId: string, opts?: ReadOptions): Promise<Snapshot> { return this.read('getSnapshot', [nameOrId], opts); }
  getSnapshotTree(nameOrId: string, cursor: string | null, limit: number, opts?: ReadOptions): Promise<SnapshotTreePage> {
    return this.read('getSnapshotTree', [nameOrId, cursor, limit], opts);
  }
  deleteSnapshot(nameOrId: string, scope?: TenantScope): Promise<Snapshot> { return this.write('deleteSnapshot', scoped([nameOrId], scope)); }
  cloneVolume(snapshot: string, name: string, dataKey?: WrappedDataKey | null, scope?: TenantScope): Promise<Volume> {
    return this.write('cloneVolume', scope === undefined ? (dataKey === undefined || dataKey === null ? [snapshot, name] : [snapshot, name, dataKey]) : [snapshot, name, dataKey ?? null, scope]);
  }
  restoreVolume(volume: string, snapshot: string, scope?: TenantScope): Promise<Volume> { return this.write('restoreVolume', scoped([volume, snapshot], scope)); }
  finishVolumePrune(volumeId: string, gen: number): Promise<Volume> { return this.write('finishVolumePrune', [volumeId, gen]); }

  createUser(spec: UserSpec): Promise<User> { return this.write('createUser', [spec]); }
  deleteUser(name: string): Promise<User> { return this.write('deleteUser', [name]); }
  listUsers(opts?: ReadOptions): Promise<User[]> { return this.read('listUsers', [], opts); }
  createToken(spec: TokenSpec): Promise<TokenInfo> { return this.write('createToken', [spec]); }
  revokeToken(id: string): Promise<TokenInfo> { return this.write('revokeToken', [id]); }
  listTokens(user: string | null, opts?: ReadOptions): Promise<TokenInfo[]> { return this.read('listTokens', [user], opts); }
  setVolumePolicy(ref: string, entries: PolicyEntry[], scope?: TenantScope): Promise<Volume> { return this.write('setVolumePolicy', scoped([ref, entries], scope)); }
  authLookup(hash: string, opts?: ReadOptions): Promise<CredentialRecord> { return this.read('authLookup', [hash], opts); }

  registerDataNode(node: DataNodeRegistration): Promise<DataNode> { return this.write('registerDataNode', [node]); }
  heartbeatDataNode(id: string, usedBytes: number, pgs: PgReport[]): Promise<DataNode> { return this.write('heartbeatDataNode', [id, usedBytes, pgs]); }
  listDataNodes(opts?: ReadOptions): Promise<DataNode[]> { return this.read('listDataNodes', [], opts); }
  removeDataNode(id: string): Promise<DataNodeRemoval> { return this.write('removeDataNode', [id]); }
  getPlacement(volumeId: string, opts?: ReadOptions): Promise<PlacementGroup[]> { return this.read('getPlacement', [volumeId], opts); }

  acquireLease(kind: LeaseKind, resource: string, holder: string, ttlMs: number, mode?: 'rw' | 'ro', epoch?: number): Promise<Lease> {
    if (epoch !== undefined) return this.write('acquireLease', [kind, resource, holder, ttlMs, mode ?? null, epoch]);
    return this.write('acquireLease', mode === undefined ? [kind, resource, holder, ttlMs] : [kind, resource, holder, ttlMs, mode]);
  }
  renewLease(leaseId: string, ttlMs: number): Promise<Lease> { return this.write('renewLease', [leaseId, ttlMs]); }
  async releaseLease(leaseId: string): Promise<void> { await this.write('releaseLease', [leaseId]); }
  claimPgPrimary(volumeId: string, pg: number, nodeId: string, epoch: number): Promise<PlacementGroup> {
    return this.write('claimPgPrimary', [volumeId, pg, nodeId, epoch]);
  }
  markPgReplicaOutOfSync(volumeId: string, pg: number, nodeId: string, epoch: number, primaryId: string, uptoSeq: number): Promise<PlacementGroup> {
    return this.write('markPgReplicaOutOfSync', [volumeId, pg, nodeId, epoch, primaryId, uptoSeq]);
  }
  departedCopyGone(volumeId: string, pg: number, nodeId: string, epoch: number): Promise<PlacementGroup> {
    return this.write('departedCopyGone', [volumeId, pg, nodeId, epoch]);
  }

  // ---- file-system namespace (FsApi; one round trip each, attributes in every answer) ----------

  /**
   * Long poll (metadata/service/volume-watch.ts): resolves when the volume table changed after
   * `sinceIndex` on the first address's member, or after `timeoutMs` with `changed: false`.
   */
  waitForChange(sinceIndex: number, timeoutMs: number): Promise<{ index: number; changed: boolean }> {
    return this.call('waitForChange', [sinceIndex, timeoutMs], { stale: true, deadlineMs: timeoutMs + watchMarginMs, attemptTimeoutMs: timeoutMs + watchMarginMs }) as Promise<{ index: number; changed: boolean }>;
  }

  fsAllocateInodes(volume: string, count: number, session?: string): Promise<FsInodeRange> {
    return this.write('fsAllocateInodes', session === undefined ? [volume, count] : [volume, count, session]);
  }
  fsDelegate(volume: string, dir: number, session: string): Promise<FsDelegation> { return this.write('fsDelegate', [volume, dir, session]); }
  fsRecall(volume: string, dir: number): Promise<FsDelegation> { return this.write('fsRecall', [volume, dir]); }
  fsReserve(volume: string, dir: number, session: string, bytes: number): Promise<{ reservedBytes: number }> { return this.write('fsReserve', [volume, dir, session, bytes]); }
  fsReleaseDelegation(volume: string, dir: number, session: string): Promise<{ released: boolean }> { return this.write('fsReleaseDelegation', [volume, dir, session]); }
  fsCommitBatch(volume: string, session: string, dir: number, files: FsBatchFile[], release = false, keepReservedBytes?: number): Promise<{ attrs: FsAttr[]; parent: FsAttr }> {
    return this.write('fsCommitBatch', keepReservedBytes === undefined ? [volume, session, dir, files, release] : [volume, session, dir, files, release, keepReservedBytes]);
  }
  fsCreate(volume: string, caller: FsCaller, parent: number, name: string, ino: number, mode: number, opts: FsCreateOptions = {}): Promise<FsEntryReply> {
    return this.write('fsCreate', [volume, caller, parent, name, ino, mode, opts]);
  }
  fsMknod(volume: string, caller: FsCaller, parent: number, name: string, ino: number, type: FsFileType, mode: number, rdev = 0, umask = 0): Promise<FsEntryReply> {
    return this.write('fsMknod', [volume, caller, parent, name, ino, type, mode, rdev, umask]);
  }
  fsMkdir(volume: string, caller: FsCaller, parent: number, name: string, ino: number, mode: number, umask = 0): Promise<FsEntryReply> {
    return this.write('fsMkdir', [volume, caller, parent, name, ino, mode, umask]);
  }
  fsSymlink(volume: string, caller: FsCaller, parent: number, name: string, ino: number, target: string): Promise<FsEntryReply> {
    return this.write('fsSymlink', [volume, caller, parent, name, ino, target]);
  }
  fsLink(volume: string, caller: FsCaller, ino: number, newParent: number, newName: string): Promise<FsEntryReply> {
    return this.write('fsLink', [volume, caller, ino, newParent, newName]);
  }
  fsUnlink(volume: string, caller: FsCaller, parent: number, name: string): Promise<FsUnlinkReply> { return this.write('fsUnlink', [volume, caller, parent, name]); }
  fsRmdir(volume: string, caller: FsCaller, parent: number, name: string): Promise<FsUnlinkReply> { return this.write('fsRmdir', [volume, caller, parent, name]); }
  fsRename(volume: string, caller: FsCaller, parent: number, name: string, newParent: number, newName: string, flags = 0): Promise<FsRenameReply> {
    return this.write('fsRename', [volume, caller, parent, name, newParent, newName, flags]);
  }
  fsSetattr(volume: string, caller: FsCaller, ino: number, changes: FsSetattr): Promise<FsAttr> { return this.write('fsSetattr', [volume, caller, ino, changes]); }
  fsSetxattr(volume: string, caller: FsCaller, ino: number, name: string, value: string, flags = 0): Promise<FsAttr> {
    return this.write('fsSetxattr', [volume, caller, ino, name, value, flags]);
  }
  fsRemovexattr(volume: string, caller: FsCaller, ino: number, name: string): Promise<FsAttr> { return this.write('fsRemovexattr', [volume, caller, ino, name]); }
  fsCommitWrite(volume: string, ino: number, size: number, mtimeNs?: TimeNs, closes?: FsCloses, truncEpoch?: number): Promise<FsAttr> {
    if (truncEpoch !== undefined) return this.write('fsCommitWrite', [volume, ino, size, mtimeNs ?? null, closes ?? null, truncEpoch]);
    if (closes !== undefined) return this.write('fsCommitWrite', [volume, ino, size, mtimeNs ?? null, closes]);
    return this.write('fsCommitWrite', mtimeNs === undefined ? [volume, ino, size] : [volume, ino, size, mtimeNs]);
  }
  fsOpen(volume: string, ino: number, session: string): Promise<FsAttr> { return this.write('fsOpen', [volume, ino, session]); }
  async fsClose(volume: string, ino: number, session: string): Promise<void> { await this.write('fsClose', [volume, ino, session]); }
  async fsCloseMany(volume: string, closes: FsCloses): Promise<void> { await this.write('fsCloseMany', [volume, closes]); }
  fsAckBlocksFreed(volume: string, seqs: number[]): Promise<{ freed: number }> { return this.write('fsAckBlocksFreed', [volume, seqs]); }

  fsFlushRequest(volume: string): Promise<FsFlushState> { return this.write('fsFlushRequest', [volume]); }
  fsFlushAck(volume: string, session: string, seq: number, error: string | null): Promise<FsFlushState> { return this.write('fsFlushAck', [volume, session, seq, error]); }
  fsFlushState(volume: string, opts?: ReadOptions): Promise<FsFlushState> { return this.read('fsFlushState', [volume], opts); }
  fsFlushRequests(opts?: ReadOptions): Promise<FsFlushState[]> { return this.read('fsFlushRequests', [], opts); }

  fsLookup(volume: string, parent: number, name: string, opts?: FsReadOptions): Promise<FsAttr> {
    return this.read('fsLookup', [volume, parent, name, ...asSession(opts)], opts);
  }
  fsGetattr(volume: string, ino: number, opts?: ReadOptions): Promise<FsAttr> { return this.read('fsGetattr', [volume, ino], opts); }
  fsDelegationsOf(volume: string, session: string, opts?: ReadOptions): Promise<{ dir: number; recallAtMs: number | null }[]> {
    return this.read('fsDelegationsOf', [volume, session], opts);
  }
  fsReaddir(volume: string, ino: number, cursor: string | null, limit: number, opts?: FsReadOptions): Promise<FsReaddirPage> {
    return this.read('fsReaddir', [volume, ino, cursor, limit, ...asSession(opts)], opts);
  }
  fsReadlink(volume: string, ino: number, opts?: ReadOptions): Promise<string> { return this.read('fsReadlink', [volume, ino], opts); }
  fsGetxattr(volume: string, ino: number, name: string, opts?: ReadOptions): Promise<string> { return this.read('fsGetxattr', [volume, ino, name], opts); }
  fsListxattr(volume: string, ino: number, opts?: ReadOptions): Promise<string[]> { return this.read('fsListxattr', [volume, ino], opts); }
  fsStatfs(volume: string, opts?: ReadOptions): Promise<FsStatfs> { return this.read('fsStatfs', [volume], opts); }
  fsListBlocksToFree(volume: string, limit: number, opts?: ReadOptions): Promise<FsBlocksToFree[]> { return this.read('fsListBlocksToFree', [volume, limit], opts); }

  clusterStatus(opts?: ReadOptions): Promise<ClusterStatus> { return this.read('clusterStatus', [], opts); }
  addMember(id: string, address: string, adminAddress: string | null): Promise<Member[]> { return this.call('addMember', [id, address, adminAddress]) as Promise<Member[]>; }
  promoteMember(id: string): Promise<Member[]> { return this.call('promoteMember', [id]) as Promise<Member[]>; }
  removeMember(id: string): Promise<Member[]> { return this.call('removeMember', [id]) as Promise<Member[]>; }
  async transferLeadership(toId: string): Promise<void> { await this.call('transferLeadership', [toId]); }
}

/** A command's arguments with the tenant scope last, when there is one (proto/metadata-types.ts `TenantScope`). */
function scoped(args: unknown[], scope: TenantScope | undefined): unknown[] {
  return scope === undefined ? args : [...args, scope];
}
