/**
 * The block server of a data node: node:http (HTTP/1.1 keep-alive) in front of the block store
 * and the replicator. Routes and headers are in ../wire.ts. Errors leave as serialized
 * GalleonError JSON with the status from `httpStatusOf`.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GalleonError, httpStatusOf, isGalleonError } from '../../proto/errors.js';
import { decodePathSegment, parseRequestTarget } from '../../proto/http-edge.js';
import { defaultMaxBlockBodyBytes } from '../../proto/limits.js';
import { writeConcernOrder } from '../../proto/metadata-types.js';
import { auditCertRefusal, createHttpEdgeServer, peerCertificateOf, peerKindOf, peerNodeIdOf, type TlsMaterial } from '../../proto/tls.js';
import type { WriteConcern } from '../../proto/metadata-types.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import { StaticPlacementSource, validatePlacement } from '../placement.js';
import type { PlacementSource, VolumePlacement } from '../placement.js';
import type { BlockAddress, BlockOp, BlockStore, StoredBlock } from '../store/types.js';
import { decodeBlockBatch, decodeReplicateBatch, encodeBlockBatchAnswers, encodeJournalFrame, encodeReplicateAnswers, Header, intParam, maxBlockHeadsBodyBytes, maxRangeReadBodyBytes } from '../wire.js';
import type { ReplicateResult } from '../wire.js';
import { Peers } from './peers.js';
import { BlockAuth, type BlockAuthOptions } from './block-auth.js';
import { Replicator } from './replication.js';
import { LeaseGuard } from './lease-guard.js';
import type { LeaseOptions } from './lease-guard.js';
import { HttpRepairSource, pgBlockFrames } from './repair-source.js';
import { BodyPool } from './body-pool.js';
import type { BodyLease } from './body-pool.js';
import { metrics } from '../metrics.js';
import { register } from 'prom-client';
import { handleSnapshotRoute, snapshotRoutes } from './snapshot-routes.js';
import { absenceStamp, blockHeadRoute, blockHeadsRoute, serveBlockHead, serveBlockHeads } from './head-route.js';
import type { SnapshotRouteHost } from './snapshot-routes.js';
import { blockRangeRoute, serveBlockRange, type RangeRouteHost } from './range-route.js';

export const maxJournalResponseBytes = 32 * 1024 * 1024;
export const maxJournalEntries = 4096;
export const maxAdminBodyBytes = 4 * 1024 * 1024;
export const keepAliveTimeoutMs = 65_000;
/** A replicate batch carries at most 8 MiB of bodies (peers.ts) plus framing. */
export const maxReplicateBatchBodyBytes = 8 * 1024 * 1024 + defaultMaxBlockBodyBytes + 1024 * 1024;

export interface BlockServerOptions {
  nodeId: string;
  zone: string;
  store: BlockStore;
  placement: PlacementSource;
  log: Logger;
  host?: string;
  port?: number;
  maxBlockBytes?: number;
  /** pg-primary leases from the metadata service: without them writes are not lease-fenced. */
  leases?: LeaseOptions;
  /**
   * Serve nothing but /healthz and /metrics until `openGate` (a node with a metadata service:
   * opened once its agent has registered it; see "Wiped node" in the README).
   */
  gated?: boolean;
  /** Time for the replicator's timers (../clock.ts); the process clock by default. */
  clock?: Clock;
  /** Issue #12: every request needs a token (block-auth.ts); outgoing requests carry the node credential. Absent: open. */
  auth?: BlockAuthOptions;
  /** Mutual TLS for the block port and for this node's own requests to its peers (proto/tls.ts); null/absent: plaintext. */
  tls?: TlsMaterial | null;
}

/** The routes a node that is not registered yet still answers: they do not depend on its data. */
const ungatedRoutes: ReadonlySet<string> = new Set(['GET /healthz', 'GET /metrics']);

/** Routes between data nodes: with TLS, only a node certificate may call them (refuseNonNodePeer). */
const nodeOnlyRoutes: ReadonlySet<string> = new Set([
  'POST /v1/replicate', 'POST /v1/replicate-batch', 'GET /v1/journal', 'GET /v1/pg-blocks', 'POST /v1/peer', 'POST /v1/catchup', 'PUT /v1/admin',
]);

/** How long `close` lets requests in progress finish before it cuts their connections. */
export const closeGraceMs = 2_000;

export class BlockServer {
  private readonly server: http.Server;
  private readonly peers: Peers;
  private readonly auth: BlockAuth | null;
  readonly replicator: Replicator;
  private readonly maxBlockBytes: number;
  private address = '';
  private readonly leases: LeaseGuard | null;
  private readonly repair: HttpRepairSource;
  /** Replicate-batch bodies, reused once their writes have landed (body-pool.ts). */
  private readonly bodies = new BodyPool();
  /** What the snapshot routes (snapshot-routes.ts) may use of this server. */
  private readonly snapshotHost: SnapshotRouteHost;
  /** What the range-read route (range-route.ts) may use of this server. */
  private readonly rangeHost: RangeRouteHost;
  /** Why the node serves no data yet (not registered), or null once it may. */
  private gate: string | null;

  constructor(private readonly opts: BlockServerOptions) {
    this.gate = opts.gated === true ? 'not registered with the metadata service yet' : null;
    this.peers = new Peers(opts.tls ?? null, opts.auth?.nodeToken, opts.clock);
    this.auth = opts.auth === undefined ? null : new BlockAuth(opts.auth);
    this.maxBlockBytes = opts.maxBlockBytes ?? defaultMaxBlockBodyBytes;
    this.leases = opts.leases === undefined ? null : new LeaseGuard(opts.nodeId, opts.leases, opts.log, opts.clock);
    this.replicator = new Replicator(opts.nodeId, () => this.address, opts.store, opts.placement, this.peers, opts.log, this.leases, opts.clock);
    this.repair = new HttpRepairSource(opts.nodeId, opts.placement, opts.tls ?? null, opts.auth?.nodeToken);
    const replicator = this.replicator;
    this.snapshotHost = {
      store: opts.store,
      nodeId: opts.nodeId,
      freshPlacement: (volumeId) => opts.placement.refresh(volumeId),
      pgOf: (address) => replicator.pgOfAddress(address),
      admitPrimaryRead: async (address, epoch) => { await replicator.admitPrimaryRead(address, await replicator.pgOfAddress(address), epoch); },
      readJson: async (req, maxBytes) => JSON.parse((await readBody(req, maxBytes)).toString('utf8')) as unknown,
    };
    this.rangeHost = {
      pgOf: (a) => replicator.pgOfAddress(a),
      admitPrimaryRead: (a, pg, epoch) => replicator.admitPrimaryRead(a, pg, epoch),
      read: (a, pg) => this.readRepairing(a, pg),
      absence: async (a, pg) => {
        const h = await absenceStamp(opts.store, a, pg);
        return { deletedSeq: h[Header.deletedSeq] ?? null, appliedSeq: h[Header.appliedSeq] ?? null };
      },
    };
    this.server = createHttpEdgeServer(opts.tls, { keepAlive: true, noDelay: true }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    this.server.keepAliveTimeout = keepAliveTimeoutMs;
    this.server.headersTimeout = keepAliveTimeoutMs + 1000;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => { this.server.off('error', reject); resolve(); });
    });
    const a = this.server.address() as AddressInfo;
    this.address = `${a.address}:${a.port}`;
    return this.address;
  }

  /** Whether the node serves requests that depend on its data (false until `openGate` when gated). */
  get serving(): boolean {
    return this.gate === null;
  }

  /** Called once the node is registered: from now on it serves, claims and takes leases. */
  openGate(): void {
    if (this.gate !== null) this.opts.log.info('registered: the block server serves data requests');
    this.gate = null;
  }

  /** Stops serving data requests (the cluster forgot the node, or its store is wiped); `why` goes into every refusal. */
  closeGate(why: string): void {
    this.gate = why;
  }

  /**
   * A node that is not registered must not act on its store: a wiped one would claim primary
   * and take pg-primary leases with an empty copy, and a held lease keeps the controller from
   * marking it down. UNAVAILABLE makes clients and primaries treat it as a failed replica.
   */
  private refuseWhileGated(route: string, req: http.IncomingMessage): void {
    if (this.gate === null || ungatedRoutes.has(route)) return;
    req.resume();
    throw new GalleonError('UNAVAILABLE', `data node ${this.opts.nodeId} is ${this.gate}; retry another replica`, {
      hint: 'it registers, and serves, once the metadata service accepts it (a wiped node: once it is marked down)',
    });
  }

  /**
   * Under mutual TLS every peer holds a certificate of the cluster CA; the routes by which nodes
   * replicate, peer and catch up (and the hand-installed placement) are for node certificates
   * only, so a client certificate (an operator's, a program's) reads and writes blocks through
   * primaries like any client and never speaks for a node.
   */
  private refuseNonNodePeer(route: string, req: http.IncomingMessage): void {
    if (this.opts.tls === null || this.opts.tls === undefined || !nodeOnlyRoutes.has(route)) return;
    const kind = peerKindOf(peerCertificateOf(req));
    if (kind === 'node') return;
    req.resume();
    throw new GalleonError('PERMISSION_DENIED', `${route} is for cluster nodes; this is a ${kind} certificate`, {
      hint: 'read and write blocks with PUT/GET /v1/blocks through the PG\'s primary; node certificates come from `galleon cert issue --node`',
    });
  }

  /**
   * A node certificate speaks for the node it names (its CN) only: a forward must come from the
   * certificate of the PG's primary (at the placement's epoch or newer: an older epoch is fenced
   * by the replica path as before), peering and catch-up requests name their sender (`from`),
   * which must be the certificate's node, and a PG's journal and blocks are read by its replicas
   * only. So node2's certificate cannot act as node1, the primary.
   */
  private async refuseImpostor(route: string, req: http.IncomingMessage, parts: string[], query: URLSearchParams): Promise<void> {
    if (this.opts.tls === null || this.opts.tls === undefined || !nodeOnlyRoutes.has(route)) return;
    const node = peerNodeIdOf(peerCertificateOf(req));
    if (route === 'POST /v1/replicate') {
      const h = req.headers;
      const volumeId = decodePathSegment(stringHeader(h[Header.volume], Header.volume));
      await this.requirePrimaryCert(req, route, node, [{ volumeId, pg: intParam(Header.pg, h[Header.pg]), epoch: intParam(Header.epoch, h[Header.epoch]) }]);
      return;
    }
    const from = query.get('from');
    if ((route === 'POST /v1/peer' || route === 'POST /v1/catchup') && from !== null && from !== node) this.impostor(req, route, node, `act as node ${from.slice(0, 64)}`);
    if (route !== 'GET /v1/journal' && route !== 'GET /v1/pg-blocks') return;
    const [, , volumeId, pgRaw] = parts;
    if (volumeId === undefined || pgRaw === undefined || !/^\d{1,5}$/.test(pgRaw)) return;
    const pg = Number(pgRaw);
    const inSet = (p: VolumePlacement): boolean => p.groups[pg]?.replicas.includes(node ?? '') === true;
    if (inSet(await this.opts.placement.getPlacement(volumeId)) || inSet(await this.opts.placement.refresh(volumeId))) return;
    this.impostor(req, route, node, `read PG ${volumeId}/${pg}, which it is no replica of`);
  }

  /** Forwards at an epoch the placement knows (or newer) are the primary's alone; a fresh placement settles a stale cache. */
  private async requirePrimaryCert(req: http.IncomingMessage, route: string, node: string | null, ops: readonly { volumeId: string; pg: number; epoch: number }[]): Promise<void> {
    if (this.opts.tls === null || this.opts.tls === undefined) return;
    const foreign = (p: VolumePlacement, o: { pg: number; epoch: number }): boolean => {
      const g = p.groups[o.pg];
      return g !== undefined && o.epoch >= g.epoch && g.primary !== node;
    };
    const seen = new Set<string>();
    for (const o of ops) {
      const key = `${o.volumeId}/${o.pg}/${o.epoch}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (!foreign(await this.opts.placement.getPlacement(o.volumeId), o)) continue;
      const fresh = await this.opts.placement.refresh(o.volumeId);
      if (foreign(fresh, o)) this.impostor(req, route, node, `forward writes of ${o.volumeId}/${o.pg} as its primary ${fresh.groups[o.pg]?.primary ?? '?'}`);
    }
  }

  private impostor(req: http.IncomingMessage, route: string, node: string | null, what: string): never {
    req.resume();
    metrics.foreignRequestRefusals.inc();
    this.opts.log.warn({ certNode: node, what, remote: req.socket.remoteAddress }, 'refused a node certificate acting for another node');
    const err = new GalleonError('PERMISSION_DENIED', `this certificate is node ${node ?? '?'}'s; it may not ${what}`, {
      hint: 'each node uses its own certificate (`galleon cert issue --node ID` names the node id it may speak for)',
    });
    // A denied call is an audit event, as the door's own refusals are (without tokens: the TLS edge's log).
    if (this.auth !== undefined && this.auth !== null) this.auth.denied(req, route, node, err);
    else auditCertRefusal(this.opts.tls, peerCertificateOf(req), { verb: `block:${route}`, object: node, code: err.code, reason: 'node certificate mismatch', source: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}` });
    throw err;
  }

  async close(): Promise<void> {
    this.replicator.close();
    this.leases?.close();
    this.server.closeIdleConnections();
    // Requests still running after a grace period (one waiting on a metadata service that lost
    // its quorum, say) are cut: a stopping node must not outlive its supervisor's patience.
    const cut = setTimeout(() => this.server.closeAllConnections(), closeGraceMs);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    clearTimeout(cut);
    await this.peers.close();
    await this.repair.close();
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    const e = isGalleonError(err) ? err : new GalleonError('INTERNAL', 'unexpected error in the block server', { cause: err });
    if (!isGalleonError(err)) this.opts.log.error({ err }, 'unexpected error in the block server');
    if (e.code === 'INVARIANT_VIOLATION') {
      this.opts.log.fatal({ err }, 'invariant violated: stopping');
      process.exitCode = 70;
      setImmediate(() => process.exit(70));
    }
    if (res.headersSent) { res.destroy(); return; }
    const body = JSON.stringify(e.toJSON());
    res.writeHead(httpStatusOf(e.code), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /**
   * Reads a block; a copy that fails its checksum is replaced by a good one from another replica
   * (verified by that replica's store), rewritten here, counted, and served.
   */
  private async readRepairing(address: BlockAddress, pg: number): Promise<StoredBlock> {
    try {
      return await this.opts.store.read(address);
    } catch (err) {
      if (!isGalleonError(err, 'CHECKSUM_MISMATCH')) throw err;
      const copy = await this.repair.fetchBlock(address, pg);
      await this.opts.store.rewriteBlock(address, copy);
      metrics.readRepairs.inc();
      this.opts.log.warn({ ...address, pg }, 'damaged block repaired on read from another replica');
      return copy;
    }
  }

  private json(res: http.ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private binary(res: http.ServerResponse, body: Buffer): void {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  }

  private async applyReplicateBatch(body: Buffer, req: http.IncomingMessage): Promise<ReplicateResult[]> {
    const frames = decodeReplicateBatch(body);
    await this.requirePrimaryCert(req, 'POST /v1/replicate-batch', peerNodeIdOf(peerCertificateOf(req)), frames.map((f) => f.meta));
    const remote = req.socket.remoteAddress;
    return this.replicator.replicaApplyBatch(frames.map(({ meta, data }) => {
      const base = { address: { volumeId: meta.volumeId, inode: meta.inode, blockNo: meta.blockNo }, pg: meta.pg, seq: meta.seq, epoch: meta.epoch };
      const op: BlockOp = meta.op === 'put' ? { ...base, kind: 'put', data } : { ...base, kind: 'delete' };
      return { op, sync: meta.sync, primary: meta.primary, trimSeq: meta.trim };
    }), remote);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = parseRequestTarget(req.url);
    const url = { pathname: target.rawPath, searchParams: target.query };
    const parts = target.segments;
    const route = `${req.method ?? ''} /${parts.slice(0, 2).join('/')}`;
    await this.auth?.admit(req, route, parts);
    this.refuseWhileGated(route, req);
    this.refuseNonNodePeer(route, req);
    await this.refuseImpostor(route, req, parts, url.searchParams);
    // Snapshot reads and version pruning (issue #11): their own file.
    if (snapshotRoutes.has(route) && await handleSnapshotRoute(this.snapshotHost, route, parts, url.searchParams, req, res)) return;
    switch (route) {
      case 'GET /healthz':
        return this.json(res, 200, { ok: true, nodeId: this.opts.nodeId, zone: this.opts.zone, serving: this.serving });
      case 'GET /metrics': {
        // The data plane's counters live in prom-client's default registry.
        const text = await register.metrics();
        res.writeHead(200, { 'content-type': register.contentType });
        res.end(text);
        return;
      }
      case 'PUT /v1/blocks':
      case 'DELETE /v1/blocks': {
        const address = blockAddress(parts);
        const epoch = intParam('epoch', url.searchParams.get('epoch'));
        const concern = concernParam(url.searchParams.get('concern'));
        const data = req.method === 'PUT' ? await readBody(req, this.maxBlockBytes) : null;
        const offered = versionParam(url.searchParams.get('handBack'));
        if (offered !== null && data !== null) {
          const taken = await this.replicator.handBackWrite(address, data, epoch, concern, offered);
          res.setHeader(Header.handBack, taken === null ? 'declined' : 'taken');
          return this.json(res, 200, taken ?? { declined: true });
        }
        const result = await this.replicator.primaryWrite(address, data, epoch, concern);
        return this.json(res, 200, result);
      }
      case 'GET /v1/blocks': {
        const address = blockAddress(parts);
        const pg = await this.replicator.pgOfAddress(address);
        const epochRaw = url.searchParams.get('epoch');
        if (epochRaw !== null) await this.replicator.admitPrimaryRead(address, pg, intParam('epoch', epochRaw));
        const block = await this.readRepairing(address, pg).catch(async (err: unknown) => {
          // The 404 says what this node knows of the absence (its tombstone's seq, its watermark): a reader of an encrypted volume judges it against the other replicas.
          if (isGalleonError(err, 'BLOCK_NOT_FOUND')) for (const [k, v] of Object.entries(await absenceStamp(this.opts.store, address, pg))) res.setHeader(k, v);
          throw err;
        });
        res.writeHead(200, {
          'content-type': 'application/octet-stream', 'content-length': block.data.length,
          [Header.seq]: block.seq, [Header.epoch]: block.epoch, [Header.pg]: block.pg,
        });
        res.end(block.data);
        return;
      }
      case blockRangeRoute: {
        const body = parseJson((await readBody(req, maxRangeReadBodyBytes)).toString('utf8'), 'block-range');
        return serveBlockRange(this.rangeHost, parts, body, res);
      }
      case blockHeadRoute:
        return serveBlockHead(this.opts.store, (a) => this.replicator.pgOfAddress(a), parts, url.searchParams, res);
      case blockHeadsRoute: {
        const body = parseJson((await readBody(req, maxBlockHeadsBodyBytes)).toString('utf8'), 'block-heads');
        return serveBlockHeads(this.opts.store, (a) => this.replicator.pgOfAddress(a), parts, body, res);
      }
      case 'POST /v1/replicate': {
        const h = req.headers;
        const address: BlockAddress = {
          volumeId: decodePathSegment(stringHeader(h[Header.volume], Header.volume)),
          inode: intParam(Header.inode, h[Header.inode]),
          blockNo: intParam(Header.block, h[Header.block]),
        };
        const kind = stringHeader(h[Header.op], Header.op);
        const base = { address, pg: intParam(Header.pg, h[Header.pg]), seq: intParam(Header.seq, h[Header.seq]), epoch: intParam(Header.epoch, h[Header.epoch]) };
        let op: BlockOp;
        if (kind === 'put') op = { ...base, kind: 'put', data: await readBody(req, this.maxBlockBytes) };
        else if (kind === 'delete') op = { ...base, kind: 'delete' };
        else throw new GalleonError('INVALID_ARGUMENT', `unknown replicate op ${JSON.stringify(kind)}`);
        const out = await this.replicator.replicaApply({
          op, sync: h[Header.sync] === '1', primary: stringHeader(h[Header.primary], Header.primary), trimSeq: intParam(Header.trim, h[Header.trim], 0),
        }, req.socket.remoteAddress);
        return this.json(res, 200, out);
      }
      case 'POST /v1/blocks-batch': {
        const frames = decodeBlockBatch(await readBody(req, maxReplicateBatchBodyBytes));
        const settled = await Promise.allSettled(frames.map(({ meta, data }) =>
          this.replicator.primaryWrite({ volumeId: meta.volumeId, inode: meta.inode, blockNo: meta.blockNo }, meta.op === 'put' ? data : null, meta.epoch, meta.concern)));
        return this.binary(res, encodeBlockBatchAnswers(settled.map((r) => {
          if (r.status === 'fulfilled') return r.value;
          const e = isGalleonError(r.reason) ? r.reason : new GalleonError('INTERNAL', 'write failed', { cause: r.reason });
          return { error: e.toJSON() };
        })));
      }
      case 'POST /v1/replicate-batch': {
        const lease = await readBody(req, maxReplicateBatchBodyBytes, this.bodies);
        // Released once every op of the batch has landed or failed: the store holds none of its bytes then.
        const results = await this.applyReplicateBatch(lease.body, req).finally(() => lease.release());
        return this.binary(res, encodeReplicateAnswers(results));
      }
      case 'GET /v1/journal': {
        const [, , volumeId, pgRaw] = parts;
        if (volumeId === undefined) throw new GalleonError('INVALID_ARGUMENT', 'journal path is /v1/journal/:volume/:pg');
        const pg = intParam('pg', pgRaw);
        const epochRaw = url.searchParams.get('epoch');
        if (epochRaw !== null) await this.replicator.admitRead(volumeId, pg, intParam('epoch', epochRaw));
        const maxBytes = Math.min(intParam('maxBytes', url.searchParams.get('maxBytes'), maxJournalResponseBytes), maxJournalResponseBytes);
        // A copy being replaced (a stale copy's rejoin) holds nothing for anyone: peering heard it
        // empty, so its old journal must not answer a peering probe either (shell simulator, seeds
        // 166 and 201 today: the new primary waited for seqs only the stale copies held, and their
        // hand-back waited for it to serve: the PG stayed unavailable).
        const entries = this.replicator.isRejoining(volumeId, pg) ? [] : await this.opts.store.readJournal(volumeId, pg, intParam('from', url.searchParams.get('from')), { maxEntries: maxJournalEntries, maxBytes });
        const st = await this.opts.store.pgState(volumeId, pg);
        const chunks = entries.flatMap((e) => encodeJournalFrame(
          { seq: e.seq, kind: e.kind, inode: e.address.inode, blockNo: e.address.blockNo, epoch: e.block?.epoch ?? e.epoch ?? st.epoch },
          e.block?.data,
        ));
        const length = chunks.reduce((n, c) => n + c.length, 0);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': length, [Header.appliedSeq]: st.appliedSeq });
        for (const c of chunks) res.write(c);
        res.end();
        return;
      }
      case 'GET /v1/pg-blocks': {
        const [, , volumeId, pgRaw] = parts;
        if (volumeId === undefined) throw new GalleonError('INVALID_ARGUMENT', 'path is /v1/pg-blocks/:volume/:pg');
        const pg = intParam('pg', pgRaw);
        const epochRaw = url.searchParams.get('epoch');
        if (epochRaw !== null) await this.replicator.admitRead(volumeId, pg, intParam('epoch', epochRaw));
        // The watermark is read first, and only once every write it counts has landed in the index:
        // every write up to it is then in the blocks iterated after (pgState alone also counts
        // staged groups, and a resync that trusted it missed their blocks: chaos saw divergence).
        const st = await this.opts.store.landedPgState(volumeId, pg);
        res.writeHead(200, { 'content-type': 'application/octet-stream', [Header.appliedSeq]: st.appliedSeq });
        for await (const { meta, data } of pgBlockFrames(this.opts.store, volumeId, pg)) {
          const frame = encodeJournalFrame(meta, data);
          let ok = true;
          for (const c of frame) ok = res.write(c) && ok;
          if (!ok) await new Promise<void>((resolve) => res.once('drain', () => resolve()));
        }
        res.end();
        return;
      }
      case 'POST /v1/peer': {
        const [, , volumeId, pgRaw] = parts;
        if (volumeId === undefined) throw new GalleonError('INVALID_ARGUMENT', 'peering path is /v1/peer/:volume/:pg?epoch=');
        const peering = await this.replicator.acceptPeering(volumeId, intParam('pg', pgRaw), intParam('epoch', url.searchParams.get('epoch')), url.searchParams.get('from'), req.socket.remoteAddress);
        return this.json(res, 200, peering);
      }
      case 'POST /v1/catchup': {
        const [, , volumeId, pgRaw] = parts;
        const from = url.searchParams.get('from');
        if (volumeId === undefined || from === null) throw new GalleonError('INVALID_ARGUMENT', 'catch-up needs /v1/catchup/:volume/:pg?from=NODE&epoch=');
        const appliedSeq = await this.replicator.catchUpRequested(volumeId, intParam('pg', pgRaw), intParam('epoch', url.searchParams.get('epoch')), from, url.searchParams.get('primary'), req.socket.remoteAddress);
        return this.json(res, 200, { appliedSeq });
      }
      case 'GET /v1/pgs': {
        const pgs = await this.opts.store.listPgs();
        return this.json(res, 200, await Promise.all(pgs.map((p) => this.opts.store.pgState(p.volumeId, p.pg))));
      }
      case 'PUT /v1/admin': {
        if (parts[2] !== 'placement') break;
        if (!(this.opts.placement instanceof StaticPlacementSource)) {
          throw new GalleonError('FAILED_PRECONDITION', 'this node takes placements from the metadata service', { hint: 'change placements through the metadata service' });
        }
        const raw = parseJson((await readBody(req, maxAdminBodyBytes)).toString('utf8'), 'placement');
        const placement = validatePlacement(raw);
        this.opts.placement.set(placement);
        await this.replicator.adoptPlacement(placement);
        return this.json(res, 200, { ok: true });
      }
      default:
        break;
    }
    throw new GalleonError('INVALID_ARGUMENT', `no route for ${req.method ?? '?'} ${url.pathname.slice(0, 256)}`, { hint: 'see dataplane/wire.ts for the block API' });
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new GalleonError('INVALID_ARGUMENT', `${what} body is not valid JSON`, { hint: 'send JSON' });
  }
}

function blockAddress(parts: string[]): BlockAddress {
  const [, , volumeId, inode, blockNo] = parts;
  if (volumeId === undefined || parts.length !== 5) throw new GalleonError('INVALID_ARGUMENT', 'block path is /v1/blocks/:volume/:inode/:block');
  return { volumeId, inode: intParam('inode', inode), blockNo: intParam('block', blockNo) };
}

/** `handBack=<epoch>.<seq>`: the version of the data a replaced copy hands back (null: an ordinary write). */
function versionParam(raw: string | null): { epoch: number; seq: number } | null {
  if (raw === null) return null;
  const m = /^(\d{1,15})\.(\d{1,15})$/.exec(raw);
  if (m === null) throw new GalleonError('INVALID_ARGUMENT', `handBack must be <epoch>.<seq>, got ${JSON.stringify(raw.slice(0, 40))}`, { hint: 'send the version of the handed-back data, e.g. handBack=3.17' });
  return { epoch: Number(m[1]), seq: Number(m[2]) };
}

function concernParam(raw: string | null): WriteConcern {
  const c = raw ?? 'durable';
  if (!(writeConcernOrder as readonly string[]).includes(c)) {
    throw new GalleonError('INVALID_ARGUMENT', `unknown write concern ${JSON.stringify(c)}`, { hint: `use one of ${writeConcernOrder.join(', ')}` });
  }
  return c as WriteConcern;
}

function stringHeader(v: string | string[] | undefined, name: string): string {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || s === '') throw new GalleonError('INVALID_ARGUMENT', `missing header ${name}`);
  return s;
}

/**
 * Reads a request body into one buffer sized by content-length (no chunk list, no concat),
 * taken from `pool` when one is given: the caller then releases the lease once done with it.
 */
async function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer>;
async function readBody(req: http.IncomingMessage, maxBytes: number, pool: BodyPool): Promise<BodyLease>;
async function readBody(req: http.IncomingMessage, maxBytes: number, pool?: BodyPool): Promise<Buffer | BodyLease> {
  const declared = req.headers['content-length'];
  const tooBig = (n: number): GalleonError => {
    req.resume();
    return new GalleonError('INVALID_SIZE', `body of ${n} bytes exceeds the ${maxBytes}-byte limit`, { hint: 'split the data into blocks no larger than the limit' });
  };
  if (declared !== undefined) {
    const len = intParam('content-length', declared);
    if (len > maxBytes) throw tooBig(len);
    const lease = pool?.take(len) ?? { body: Buffer.allocUnsafe(len), release: () => undefined };
    const buf = lease.body;
    let at = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        if (at + chunk.length > len) throw new GalleonError('INVALID_ARGUMENT', 'body longer than its content-length');
        chunk.copy(buf, at);
        at += chunk.length;
      }
      if (at !== len) throw new GalleonError('INVALID_ARGUMENT', `body ended after ${at} of ${len} bytes`);
    } catch (err) {
      lease.release();
      throw err;
    }
    return pool === undefined ? buf : lease;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw tooBig(total);
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks, total);
  return pool === undefined ? body : { body, release: () => undefined };
}
