/**
 * One metadata member: Raft core + driver + log store + state machine + transport + API, on one
 * gRPC server. `startMetadataMember()` is what the daemon embeds and what `main.ts` runs.
 *
 * Start-up cases:
 *  - bootstrap (new data dir, `peers` given): every initial voter writes the same first
 *    snapshot (index 1, term 1, conf = the peers) so that the configuration is never only in
 *    memory: a member that joins later always receives it inside a snapshot.
 *  - join (new data dir, `join` given): start with an empty configuration, ask the cluster to
 *    add us as a learner, and wait for the leader's snapshot. Promotion is a separate call
 *    (`autoPromote` does it once we have caught up).
 *  - restart (existing data dir): everything comes from disk; peers/join are ignored.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdir } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { RaftNode } from '../raft/core/raft.js';
import type { ConfState, RaftConfig, RaftStatus, Role } from '../raft/core/types.js';
import { LogStore } from '../raft/node/log-store.js';
import { MemberMetrics } from '../raft/node/metrics.js';
import { driverDefaults, RaftNodeDriver, type DriverTiming } from '../raft/node/raft-node-driver.js';
import { RaftTransport } from '../raft/node/transport.js';
import { SnapshotReceiver, SnapshotSender } from '../raft/node/snapshot-transfer.js';
import { applyConfChange, decodeConfChangeData } from '../raft/node/conf-change.js';
import { openStateMachine } from '../state/index.js';
import type { StateMachine } from '../state/contract.js';
import { ErrorCode, GalleonError, invariant, isGalleonError } from '../../proto/errors.js';
import { grpcChannelOptions } from '../../proto/grpc-loader.js';
import type { TlsMaterial } from '../../proto/tls.js';
import { listenGrpc, type GrpcListener } from '../../proto/grpc-tls.js';
import type { MetadataApi } from '../../proto/metadata-types.js';
import { AddressBook } from './address-book.js';
import { MetadataService, serviceDefaults, type ServiceLimits } from './api-handler.js';
import { VolumeWatch } from './volume-watch.js';
import { MetadataClient } from './client.js';
import { registerMetadataService } from './grpc-server.js';
import type { DataKeyWrapper } from './volume-key-gate.js';
import { metadataAuthGate, type MetadataGate } from './auth-gate.js';
import { Authenticator, hashToken, type CredentialRecord } from '../../proto/auth-token.js';
import type { AuditSink } from '../../proto/auth.js';
import type { AuthApi } from '../../proto/auth-api.js';
import { controllerDefaults, LeaderControllers, type ControllerLimits } from './controllers.js';

export interface MemberTiming extends DriverTiming, ServiceLimits, ControllerLimits {
  electionTicks: number;
  heartbeatTicks: number;
  maxInflightMessages: number;
  maxInflightBytes: number;
  maxMessageBytes: number;
  maxUncommittedBytes: number;
  /** How long a joining member keeps asking the cluster to add it. */
  joinTimeoutMs: number;
  /** How long stop() lets the last replies flush before closing the server. */
  shutdownFlushMs: number;
}

/** How long calls in progress may finish on connections a revocation ends (cli/lib/tls-watch.ts). */
export const revocationDrainGraceMs = 2_000;

export const memberDefaults: MemberTiming = {
  ...driverDefaults,
  ...serviceDefaults,
  ...controllerDefaults,
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflightMessages: 256,
  maxInflightBytes: 32 * 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  maxUncommittedBytes: 64 * 1024 * 1024,
  joinTimeoutMs: 30_000,
  shutdownFlushMs: 50,
};

export interface PeerSpec {
  id: string;
  address: string;
}

export interface MetadataMemberOptions {
  id: string;
  dataDir: string;
  /** host:port to listen on for Raft and the API; port 0 picks a free port. */
  bindAddress: string;
  /** Address peers and clients use to reach us; defaults to the bound host:port. */
  advertiseAddress?: string;
  /** The hosting daemon's admin (HTTP) address, recorded with our membership. */
  adminAddress?: string | null;
  /** Initial voters (including this member) for a brand-new cluster. */
  peers?: PeerSpec[];
  /** Addresses of members of an existing cluster to join as a learner. */
  join?: string[];
  /** After joining, ask to be promoted to voter once caught up. */
  autoPromote?: boolean;
  logger?: Logger;
  registry?: Registry;
  timing?: Partial<MemberTiming>;
  /** Mutual TLS on the server, the Raft links and our own API clients (proto/tls.ts); null/absent: plaintext. */
  tls?: TlsMaterial | null;
  /**
   * Issue #12: every API call must carry a token (auth-gate.ts); this member's own clients send
   * the node credential. Absent: the API is open, as before (tests of lower layers, tools).
   */
  auth?: MemberAuth;
  /**
   * Issue #12: wraps a fresh data key for a volume of an encrypted class created or cloned without
   * one (volume-key-gate.ts); a daemon's member always has it. Absent: such a call is refused...
   */
  dataKeys?: DataKeyWrapper;
  /** ...unless this is set (test harnesses whose block clients hold no keys): then it goes through unkeyed, as before. */
  allowUnkeyedEncryption?: boolean;
}

export interface MemberAuth {
  /** The cluster's node credential (the token itself: this member's own calls send it). */
  nodeToken: string;
  audit: AuditSink;
}

export interface MemberStatus {
  id: string;
  address: string;
  role: Role;
  leaderId: string | null;
  leaderAddress: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  conf: ConfState;
}

export interface MetadataMember {
  id: string;
  /** The gRPC address this member serves on (with the bound port). */
  address: string;
  /** The metadata API; calls go to the leader wherever it is. */
  api: MetadataApi & AuthApi;
  metrics: MemberMetrics;
  status(): MemberStatus;
  /** The core's full status (progress of peers on the leader). */
  raftStatus(): RaftStatus;
  /** Resolves when the member has stopped after a fatal error (disk failure). */
  failed: Promise<unknown>;
  stop(): Promise<void>;
}

const bootstrapIndex = 1;
const bootstrapTerm = 1;

export async function startMetadataMember(options: MetadataMemberOptions): Promise<MetadataMember> {
  const timing: MemberTiming = { ...memberDefaults, ...options.timing };
  const logger = (options.logger ?? pino({ level: process.env.GALLEON_LOG_LEVEL ?? 'info' })).child({ member: options.id });
  validate(options);

  await mkdir(options.dataDir, { recursive: true });
  const logStore = await LogStore.open(joinPath(options.dataDir, 'raft'));
  let sm: StateMachine | null = null;
  let server: grpc.Server | null = null;
  let listener: GrpcListener | null = null;
  try {
    sm = await openStateMachine(joinPath(options.dataDir, 'state'));
    const addressBook = new AddressBook(logStore);
    await addressBook.load();

    const isNew = logStore.lastIndex() === 0 && logStore.hardState().term === 0;
    if (isNew && options.peers !== undefined && options.peers.length > 0) {
      await bootstrap(logStore, sm, options.peers);
      logger.info({ peers: options.peers.map((p) => p.id) }, 'bootstrapped a new metadata cluster');
    } else if (isNew && (options.join === undefined || options.join.length === 0)) {
      throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `member ${options.id} has no state in ${options.dataDir} and neither peers nor join addresses`, {
        hint: 'pass --peers id=host:port,... to bootstrap a new cluster, or --join host:port to join an existing one',
      });
    }
    for (const p of options.peers ?? []) addressBook.set(p.id, p.address);

    // Bring the state machine up to the log store's snapshot if a crash fell between the two:
    // the received state waits staged beside the live one (older stores kept it as one buffer).
    const init = await logStore.load();
    const storedSnap = await logStore.snapshot();
    if (storedSnap !== null && sm.appliedIndex() < storedSnap.meta.index) {
      if (storedSnap.data.byteLength > 0) await sm.restore(storedSnap.meta.index, storedSnap.data);
      else await sm.installRestored(storedSnap.meta.index);
    }
    // Whatever the state machine applied was committed: the commit index on disk may lag (it is
    // only written with entries or votes), so raise it to what was applied.
    const lastIndex = init.entries.length > 0 ? init.entries[init.entries.length - 1]!.index : init.snapshotMeta.index;
    const smApplied = Math.min(Math.max(sm.appliedIndex(), init.snapshotMeta.index), lastIndex);
    init.hardState.commit = Math.max(init.hardState.commit, smApplied);
    init.applied = smApplied;
    const { conf: appliedConf, term: appliedTerm } = confAndTermAt(init.snapshotMeta.conf, init.snapshotMeta.term, init.entries, init.applied);
    addressBook.merge(await sm.members());

    const metrics = new MemberMetrics(options.registry);
    const config: RaftConfig = {
      id: options.id,
      electionTicks: timing.electionTicks,
      heartbeatTicks: timing.heartbeatTicks,
      preVote: true,
      checkQuorum: true,
      maxInflightMessages: timing.maxInflightMessages,
      maxInflightBytes: timing.maxInflightBytes,
      maxMessageBytes: timing.maxMessageBytes,
      maxUncommittedBytes: timing.maxUncommittedBytes,
      random: { nextInt: (n) => Math.floor(Math.random() * n) },
    };
    const core = new RaftNode(config, init);
    if (storedSnap !== null) core.compact(storedSnap.meta.index, storedSnap.data);

    // gRPC server first: the bound port is our address.
    server = new grpc.Server(grpcChannelOptions);
    const srv = server;
    // Under TLS our own listener does the handshakes, so that each refused one is audited (proto/grpc-tls.ts).
    listener = await listenGrpc(srv, options.bindAddress, options.tls).catch((err: unknown) => {
      throw new GalleonError(ErrorCode.UNAVAILABLE, `cannot listen on ${options.bindAddress}`, { cause: err, hint: 'pick a free port (or port 0) and a local interface' });
    });
    const grpcPort = listener;
    const boundPort = grpcPort.port;
    const host = options.bindAddress.slice(0, options.bindAddress.lastIndexOf(':'));
    const address = options.advertiseAddress ?? `${host === '' || host === '0.0.0.0' ? '127.0.0.1' : host}:${boundPort}`;
    addressBook.set(options.id, address, options.adminAddress ?? null);
    // A revocation ends every connection (GOAWAY, then closed after the grace): each peer
    // reconnects with the certificate it holds now, and a revoked one is refused at its next call.
    const unwatchTls = options.tls?.live?.onChange((c) => {
      if (!c.revoked) return;
      try {
        grpcPort.drain(revocationDrainGraceMs);
      } catch (err) {
        logger.warn({ err }, 'could not drain connections after a revocation; revoked certificates are still refused per call');
      }
    });

    let driverRef: RaftNodeDriver | null = null;
    const receiver = new SnapshotReceiver({
      selfId: options.id, stateMachine: sm, logger, onReceived: (m) => driverRef?.receive([m]),
      onChunk: (bytes) => metrics.snapshotBytesReceived.inc(bytes),
    });
    const snapshots = new SnapshotSender({
      selfId: options.id, resolveAddress: (peer) => addressBook.address(peer), logger, bytesPerSecond: timing.snapshotSendBytesPerSec,
      onFailure: (peer) => driverRef?.reportSnapshotFailure(peer),
      onSent: (_peer, bytes) => metrics.snapshotBytesSent.inc(bytes),
      tls: options.tls ?? null,
    });
    const transport = new RaftTransport({
      selfId: options.id,
      selfAddress: address,
      resolveAddress: (peer) => addressBook.address(peer),
      logger,
      tls: options.tls ?? null,
      handlers: {
        onMessages: (msgs) => driverRef?.receive(msgs),
        onUnreachable: (peer) => driverRef?.reportUnreachable(peer),
        onSnapshotFailure: (peer) => driverRef?.reportSnapshotFailure(peer),
        onPeerAddress: (peer, peerAddress) => { addressBook.set(peer, peerAddress); },
        onInstallSnapshot: (call, callback) => receiver.handle(call, callback),
      },
    });
    transport.register(srv);
    metrics.bindTransport(() => transport.metrics);

    let resolveFailed: (err: unknown) => void = () => undefined;
    const failed = new Promise<unknown>((resolve) => { resolveFailed = resolve; });
    const stateMachine = sm;
    const watch = new VolumeWatch(stateMachine.appliedIndex(), () => driver.applied());
    const driver = new RaftNodeDriver({
      id: options.id,
      core,
      logStore,
      stateMachine,
      logger,
      metrics,
      timing,
      appliedConf,
      appliedTerm,
      send: (msgs) => transport.send(msgs),
      snapshots,
      onApplied: (records) => {
        watch.noteApplied(records);
        for (const r of records) {
          if (r.kind !== 'member') continue;
          if (r.address !== null) addressBook.set(r.memberId, r.address, r.adminAddress);
          if (r.change === 'remove-node') {
            if (r.memberId === options.id) logger.warn('this member was removed from the metadata cluster');
            else transport.removePeer(r.memberId);
          }
        }
      },
      onRestored: () => {
        watch.noteRestored();
        stateMachine.members().then((m) => addressBook.merge(m), (err: unknown) => logger.warn({ err }, 'cannot read members after restore'));
      },
      onSoftState: (s) => logger.info({ role: s.role, leader: s.leader }, 'raft role changed'),
      onFatal: (err) => {
        logger.fatal({ err }, 'metadata member failed; stopping');
        resolveFailed(err);
      },
    });
    driverRef = driver;
    const keys = { wrapper: options.dataKeys ?? null, allowUnkeyed: options.allowUnkeyedEncryption === true };
    const service = new MetadataService({ id: options.id, driver, stateMachine, addressBook, logger, metrics, limits: timing, watch, keys });
    let serving = true;
    registerMetadataService(srv, () => (serving ? service : null), logger, options.auth === undefined ? undefined : memberGate(options.auth, stateMachine, service), options.tls);
    driver.start();
    const controllers = new LeaderControllers({ id: options.id, driver, stateMachine, logger, limits: timing });
    controllers.start();
    logger.info({ address }, 'metadata member serving');

    let apiClient: MetadataClient | null = null;
    const api = (): MetadataClient => {
      if (apiClient === null) {
        const others = [...addressBook.all().entries()].filter(([id]) => id !== options.id).map(([, a]) => a.address);
        apiClient = new MetadataClient({ addresses: [address, ...others], clientId: `${options.id}-local-${Date.now().toString(36)}`, ...tokenOf(options), tls: options.tls ?? null });
      }
      return apiClient;
    };

    const statusOf = (): MemberStatus => {
      const st = driver.status();
      return {
        id: options.id, address, role: st.role, leaderId: st.leader,
        leaderAddress: st.leader === null ? null : addressBook.address(st.leader) ?? null,
        term: st.term, commitIndex: st.commit, appliedIndex: driver.applied(), lastIndex: st.lastIndex, conf: st.conf,
      };
    };

    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        serving = false;
        watch.close();
        controllers.stop();
        apiClient?.close();
        await driver.stop();
        transport.stop();
        // Raft and client streams are long-lived, so a graceful shutdown would only wait for
        // them: once the driver has answered every waiter, give the replies a moment to leave.
        await new Promise((r) => setTimeout(r, timing.shutdownFlushMs));
        unwatchTls?.();
        srv.forceShutdown();
        grpcPort.close();
        await addressBook.flush();
        await stateMachine.close();
        await logStore.close();
        logger.info('metadata member stopped');
      })();
      return stopping;
    };

    if (isNew && options.peers === undefined && options.join !== undefined) {
      try {
        await joinCluster(options.id, address, options.adminAddress ?? null, options.join, addressBook, timing, logger, options.tls ?? null, options.auth?.nodeToken);
      } catch (err) {
        await stop();
        throw err;
      }
      if (options.autoPromote === true) void autoPromote(options.id, options.join, driver, timing, logger, () => stopping !== null, options.tls ?? null, options.auth?.nodeToken);
    }

    return {
      id: options.id,
      address,
      get api(): MetadataApi & AuthApi { return api(); },
      metrics,
      status: statusOf,
      raftStatus: () => driver.status(),
      failed,
      stop,
    };
  } catch (err) {
    server?.forceShutdown();
    listener?.close();
    await sm?.close().catch(() => undefined);
    await logStore.close().catch(() => undefined);
    throw err;
  }
}

function validate(o: MetadataMemberOptions): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(o.id)) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `member id "${o.id}" is not valid`, { hint: 'use letters, digits, ".", "_" or "-" (at most 63)' });
  }
  if (o.peers !== undefined && o.peers.length > 0 && !o.peers.some((p) => p.id === o.id)) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `peers do not include this member (${o.id})`, { hint: 'list every initial voter, this one included: n1=host:port,n2=...' });
  }
  if (o.peers !== undefined && o.peers.length > 0 && o.join !== undefined && o.join.length > 0) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, 'peers and join are exclusive', { hint: 'bootstrap with --peers or join with --join, not both' });
  }
}

/** Every initial voter writes the same first snapshot: index 1, term 1, conf = the peers. */
async function bootstrap(logStore: LogStore, sm: StateMachine, peers: PeerSpec[]): Promise<void> {
  invariant(sm.appliedIndex() <= bootstrapIndex, 'a new raft log comes with a new state machine');
  if (sm.appliedIndex() < bootstrapIndex) await sm.apply([{ index: bootstrapIndex, kind: 'noop' }]);
  const index = await sm.checkpoint();
  invariant(index === bootstrapIndex, 'bootstrap snapshot is at index 1');
  const voters = [...new Set(peers.map((p) => p.id))].sort();
  await logStore.save({
    snapshot: { meta: { index: bootstrapIndex, term: bootstrapTerm, conf: { voters, learners: [] } }, data: new Uint8Array(0) },
    entries: [],
    hardState: { term: bootstrapTerm, vote: null, commit: bootstrapIndex },
  });
}

function confAndTermAt(conf: ConfState, snapTerm: number, entries: { index: number; term: number; type: string; data: Uint8Array }[], applied: number): { conf: ConfState; term: number } {
  let c = conf;
  let term = snapTerm;
  for (const e of entries) {
    if (e.index > applied) break;
    term = e.term;
    if (e.type === 'conf-change') c = applyConfChange(c, decodeConfChangeData(e.data));
  }
  return { conf: c, term };
}

async function joinCluster(id: string, address: string, adminAddress: string | null, join: string[], book: AddressBook, timing: MemberTiming, logger: Logger, tls: TlsMaterial | null, nodeToken: string | undefined): Promise<void> {
  const client = new MetadataClient({ addresses: join, callDeadlineMs: timing.joinTimeoutMs, tls, ...(nodeToken === undefined ? {} : { token: nodeToken }) });
  try {
    const members = await client.addMember(id, address, adminAddress);
    for (const m of members) if (m.address !== '') book.set(m.id, m.address, m.adminAddress);
    logger.info({ members: members.map((m) => m.id) }, 'joined the metadata cluster as a learner');
  } finally {
    client.close();
  }
}

async function autoPromote(id: string, join: string[], driver: RaftNodeDriver, timing: MemberTiming, logger: Logger, stopped: () => boolean, tls: TlsMaterial | null, nodeToken: string | undefined): Promise<void> {
  const client = new MetadataClient({ addresses: join, tls, ...(nodeToken === undefined ? {} : { token: nodeToken }) });
  const pollMs = 200;
  try {
    while (!stopped()) {
      if (driver.status().conf.voters.includes(id)) return;
      try {
        await client.promoteMember(id);
        logger.info('promoted to voter');
        return;
      } catch (err) {
        if (!isGalleonError(err, ErrorCode.FAILED_PRECONDITION) && !isGalleonError(err, ErrorCode.TIMEOUT) && !isGalleonError(err, ErrorCode.NO_LEADER)) {
          logger.warn({ err }, 'promotion failed');
          return;
        }
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    client.close();
    void timing;
  }
}

function tokenOf(options: MetadataMemberOptions): { token?: string } {
  return options.auth === undefined ? {} : { token: options.auth.nodeToken };
}

/** The API's door: tokens checked against this member's own replica (no Raft round), rules of auth-guard.ts. */
function memberGate(auth: MemberAuth, stateMachine: StateMachine, service: MetadataService): MetadataGate {
  const authenticator = new Authenticator({
    nodeTokenHash: hashToken(auth.nodeToken),
    lookup: async (hash) => (await stateMachine.query('authLookup', [hash])) as CredentialRecord,
  });
  return metadataAuthGate({
    authenticator, audit: auth.audit,
    call: (method, args) => service.call({ method, args, clientId: '', seq: 0, stale: false }),
  });
}
