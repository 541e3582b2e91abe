/**
 * The shell simulator's world: data nodes that are the block server's own shell — a `Replicator`
 * with its `LeaseGuard`, `DataNodeAgent` and `MetadataPlacementSource` — on a `MemoryBlockStore`
 * (crash model: memory-disk.ts), a `MemoryNetwork` whose links the world delays, drops and cuts
 * (`LinkFaults`), and one `ManualClock` that is the only time anything sees. The metadata
 * service is `Meta` (../meta.ts) behind `NodeMetaApi` (meta-api.ts). Order comes only from the
 * seed's PRNG and the clock's timers: the world moves the clock 1 ms at a time and then lets
 * every promise and every store group commit (`setImmediate`) that the step started settle
 * before the next (`settle`). Test infrastructure only.
 */
import { pino } from 'pino';
import { GalleonError } from '../../../proto/errors.js';
import type { Volume } from '../../../proto/metadata-types.js';
import { ManualClock } from '../../../dataplane/clock.js';
import { MetadataPlacementSource } from '../../../dataplane/placement.js';
import { DataNodeAgent } from '../../../dataplane/server/agent.js';
import { LeaseGuard } from '../../../dataplane/server/lease-guard.js';
import { MemoryNetwork, type LinkFaults } from '../../../dataplane/server/memory-transport.js';
import type { PeerTransport } from '../../../dataplane/server/peers.js';
import { Replicator } from '../../../dataplane/server/replication.js';
import { coreFaultsFrom, serverCoreLimits } from '../../../dataplane/server/pg-worker.js';
import type { CoreFaults, CoreLimits } from '../../../dataplane/core/index.js';
import { blockStoreDisk, MemoryBlockStore, type BlockStoreDisk } from '../../../dataplane/store/memory-store.js';
import { noStoreMetrics } from '../../../dataplane/store/store-metrics.js';
import { Prng } from '../../sim/prng.js';
import { SimFailure } from '../checks.js';
import { blockSizeBytes, NodeMetaApi, ShellMeta, type MetaWorld } from './meta-api.js';

export { SimFailure };

/** Heartbeat interval of every agent; the stand-in's timings below are counted in it. */
export const beatMs = 50;
export const leaseTtlMs = 200;
/** The stand-in marks a node down after this long without a heartbeat (above ttl + margin). */
export const downAfterMs = 300;
/** Most setImmediate rounds one settle waits for the step's work to finish. */
export const maxSettleRounds = 200;
/** Quiet rounds (no link, store or metadata activity) after which a step counts as settled. */
const quietRounds = 2;
export const volumeId = 'shellsim';
/** A supervisor starts a process that exited again after this long. */
export const supervisorMinMs = 5;
export const supervisorMaxMs = 40;
export const blocksPerVolume = 8;
/** A seed's journals are trimmed every this many entries (the server's 1024 would never trim here). */
export const minTrimEntries = 2;
export const maxTrimEntries = 16;

export interface ShellNode {
  id: string;
  address: string;
  zone: string;
  /** Incarnation: bumped by every restart (the stand-in's claims tell incarnations apart). */
  inc: number;
  alive: boolean;
  /** Cut from the metadata service (its lease lapses; the service marks it down). */
  metaCut: boolean;
  /** Cut from every other data node. */
  partitioned: boolean;
  /** Until then every call from or to this node waits in its link (an isolation: a frozen connection). */
  stalledUntil: number;
  /** Rejected when this incarnation dies: calls in it fail as a reset connection (`LinkFaults.broken`). */
  death: { promise: Promise<never>; kill: () => void };
  disk: BlockStoreDisk;
  store: MemoryBlockStore;
  rep: Replicator;
  leases: LeaseGuard;
  agent: DataNodeAgent;
}

export interface ShellStats {
  [k: string]: number;
  events: number;
  writesAcked: number;
  writesFailed: number;
  readsServed: number;
  crashes: number;
  partitions: number;
  metaCuts: number;
  isolations: number;
  failovers: number;
  dropped: number;
  /** Moves of a primary's journal trim, seen by the checks. */
  trims: number;
  convergedMs: number;
}

export interface ShellOptions {
  seed: number;
  /** Breaks of the core, named as GALLEON_TEST_CORE_FAULTS names them; '' for none. */
  coreFaults: string;
  verbose: boolean;
}

const silent = pino({ level: 'silent' });

function unreachable(to: string): GalleonError {
  return new GalleonError('UNAVAILABLE', `data node ${to} is unreachable`, { hint: 'simulated network fault' });
}

/** The transport of one incarnation: once it is dead, its calls fail as a killed process's would never be sent. */
function incarnationTransport(t: PeerTransport, live: () => boolean): PeerTransport {
  return new Proxy(t, {
    get(target, prop, receiver): unknown {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]): unknown => {
        if (!live()) return Promise.reject(new GalleonError('UNAVAILABLE', 'the process is gone', { hint: 'simulated crash' }));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** A promise that rejects once `kill` is called (handled here: a race that awaits it sees the rejection). */
function mortal(address: string): ShellNode['death'] {
  let kill = (): void => undefined;
  const promise = new Promise<never>((_, reject) => { kill = () => { reject(new GalleonError('UNAVAILABLE', `connection to ${address} reset: the process died`, { hint: 'simulated crash' })); }; });
  promise.catch(() => undefined);
  return { promise, kill };
}

export class ShellWorld {
  readonly clock = new ManualClock();
  readonly rng: Prng;
  readonly net = new MemoryNetwork();
  readonly meta: ShellMeta;
  readonly nodes: ShellNode[] = [];
  readonly volume: Volume;
  readonly pgCount: number;
  readonly stats: ShellStats = { events: 0, writesAcked: 0, writesFailed: 0, readsServed: 0, crashes: 0, partitions: 0, metaCuts: 0, isolations: 0, failovers: 0, dropped: 0, trims: 0, convergedMs: -1 };
  readonly log: string[] = [];
  traceHash = 0x811c9dc5;
  /** A failure found inside a callback; the loop throws it. */
  failure: SimFailure | null = null;
  /** The break (if any) and the core's limits of this seed: journals trimmed every few entries, so full resyncs happen. */
  private readonly tuning: { coreFaults: CoreFaults; coreLimits: CoreLimits };
  /** Link fault rates of this seed (zeroed at heal). */
  rates: { drop: number; answerDrop: number; slow: number };
  private activity = 0;
  private readonly storeMetrics = { ...noStoreMetrics, groupCommits: { inc: (): void => { this.activity++; } } };

  constructor(readonly opts: ShellOptions) {
    this.rng = new Prng(opts.seed);
    const count = this.rng.between(3, 4);
    this.pgCount = this.rng.between(1, 2);
    const infos = Array.from({ length: count }, (_, i) => ({ id: `n${i + 1}`, zone: `z${(i % 2) + 1}` }));
    this.meta = new ShellMeta(infos, this.pgCount, 3, { leaseTtlMs, downAfterMs, freshBeatMs: 2 * beatMs }, (k) => this.rng.nextInt(k));
    this.volume = {
      id: volumeId, name: volumeId, type: 'persistent', sizeBytes: blocksPerVolume * blockSizeBytes, accessMode: 'ReadWriteOnce', storageClass: 'sim',
      replicas: 3, writeConcern: 'replicated', blockSizeBytes, pgCount: this.pgCount, state: 'available', labels: {}, createdAtMs: 0, updatedAtMs: 0, version: 1,
    };
    this.rates = { drop: this.rng.between(0, 5) / 100, answerDrop: this.rng.between(0, 3) / 100, slow: this.rng.between(0, 8) / 100 };
    this.net.setFaults(this.linkFaults());
    this.tuning = { coreFaults: coreFaultsFrom(opts.coreFaults), coreLimits: { ...serverCoreLimits, trimEveryEntries: this.rng.between(minTrimEntries, maxTrimEntries) } };
    for (const info of infos) {
      this.nodes.push({ ...info, address: `127.0.0.1:${7100 + this.nodes.length}`, inc: 0, alive: false, metaCut: false, partitioned: false, stalledUntil: 0, disk: blockStoreDisk() } as ShellNode);
    }
  }

  node(id: string): ShellNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new SimFailure('harness', `no node ${id}`);
    return n;
  }

  private byAddress(address: string): ShellNode | undefined {
    return this.nodes.find((n) => n.address === address);
  }

  /** One line of the trace (hashed; kept with --verbose). */
  trace(line: string): void {
    this.stats.events++;
    const s = `${this.clock.now()} ${line}`;
    for (let i = 0; i < s.length; i++) this.traceHash = Math.imul(this.traceHash ^ s.charCodeAt(i), 16777619) >>> 0;
    if (this.opts.verbose) this.log.push(s);
  }

  /** A promise resolved `ms` from now on the world's clock (at once for 0). */
  after(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => { this.clock.setTimeout(resolve, ms); });
  }

  private linkFaults(): LinkFaults {
    const hop = (from: string, to: string, dropRate: number): Promise<void> => {
      this.activity++;
      const a = this.byAddress(from);
      const b = this.byAddress(to);
      if (a === undefined || b === undefined || a.partitioned || b.partitioned) return Promise.reject(unreachable(to));
      const delay = this.rng.chance(this.rates.slow) ? this.rng.between(20, 150) : this.rng.between(0, 3);
      // A stalled link (an isolated node) holds every call until the stall ends, then delivers them in order.
      const stall = Math.max(a.stalledUntil, b.stalledUntil) - this.clock.now();
      if (stall > 0) return this.after(stall + delay);
      if (this.rng.chance(dropRate)) {
        this.stats.dropped++;
        return this.after(delay).then(() => { throw unreachable(to); });
      }
      return this.after(delay);
    };
    return {
      request: (from, to) => hop(from, to, this.rates.drop),
      answer: (from, to) => hop(to, from, this.rates.answerDrop),
      broken: (to) => this.byAddress(to)?.death.promise ?? Promise.reject(unreachable(to)),
    };
  }

  readonly metaWorld: MetaWorld = {
    now: () => this.clock.now(),
    reachable: (node, inc) => { const n = this.node(node); return n.alive && n.inc === inc && !n.metaCut; },
    hop: () => { this.activity++; return this.after(this.rng.between(0, 2)); },
    addressOf: (node) => this.node(node).address,
    zoneOf: (node) => this.node(node).zone,
    called: () => { this.activity++; },
  };

  /** Starts (or restarts over its disk) a node: a new process of the block server's shell. */
  async start(n: ShellNode): Promise<void> {
    n.inc++;
    const inc = n.inc;
    n.alive = true;
    n.death = mortal(n.address);
    n.store = await MemoryBlockStore.open({ disk: n.disk, metrics: this.storeMetrics });
    // The nodes registered before the volume was created (the stand-in counts them in sync).
    if (inc === 1) await n.store.markJoined();
    const log = this.opts.verbose ? pino({ level: 'debug', base: { node: `${n.id}#${inc}` }, timestamp: false }, { write: (line: string) => { this.log.push(`${this.clock.now()} log ${line.trim()}`); } }) : silent;
    const api = new NodeMetaApi(this.meta, this.metaWorld, this.volume, n.id, inc);
    const source = new MetadataPlacementSource(api);
    n.leases = new LeaseGuard(n.id, { api, ttlMs: leaseTtlMs }, log, this.clock);
    const transport = incarnationTransport(this.net.transport(n.address), () => n.alive && n.inc === inc);
    n.rep = new Replicator(n.id, () => n.address, n.store, source, transport, log, n.leases, this.clock, this.tuning);
    this.net.attach(n.address, { replicator: n.rep, store: n.store });
    n.agent = new DataNodeAgent({
      api, registration: { id: n.id, address: n.address, zone: n.zone, capacityBytes: 1 << 30 }, store: n.store, log,
      heartbeatIntervalMs: beatMs, placement: source, replicator: n.rep, clock: this.clock,
    });
    // main.ts awaits the start: a failed registration ends the process, and its supervisor starts it again.
    n.agent.start().catch(() => {
      if (!n.alive || n.inc !== inc) return;
      this.trace(`registration of ${n.id}#${inc} failed: the process exits`);
      this.crash(n);
      this.clock.setTimeout(() => { if (!n.alive) void this.start(n); }, this.rng.between(supervisorMinMs, supervisorMaxMs));
    });
    this.trace(`start ${n.id}#${inc}`);
  }

  /** Power loss: the store keeps its synced state only; every timer and call of the process stops. */
  crash(n: ShellNode): void {
    n.alive = false;
    n.death.kill();
    this.net.detach(n.address);
    n.store.crash();
    n.rep.close();
    n.leases.close();
    void n.agent.stop();
    this.stats.crashes++;
    this.trace(`crash ${n.id}#${n.inc}`);
  }

  /** The metadata service's controller, as `Meta.control` runs it; failovers are traced. */
  control(): void {
    const before = this.meta.pgs.map((g) => `${g.epoch}/${g.primary}/${g.replicas.join(',')}`);
    const up = (id: string): boolean => this.clock.now() - (this.meta.lastBeat.get(id) ?? 0) <= 2 * beatMs;
    this.meta.control(this.clock.now(), up);
    this.meta.pgs.forEach((g, pg) => {
      const now = `${g.epoch}/${g.primary}/${g.replicas.join(',')}`;
      if (now === before[pg]) return;
      if (!before[pg]?.includes(`/${g.primary}/`)) this.stats.failovers++;
      this.trace(`placement pg ${pg} ${now} in sync ${[...g.inSync].join(',')}`);
    });
  }

  /**
   * Lets the work the last clock step started run to its end: promise chains and the stores'
   * group commits (each a `setImmediate`), until `quietRounds` rounds saw no activity.
   */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let round = 0; round < maxSettleRounds && quiet < quietRounds; round++) {
      const before = this.activity;
      await new Promise<void>((resolve) => { setImmediate(resolve); });
      quiet = this.activity === before ? quiet + 1 : 0;
    }
  }

  /** Moves the clock 1 ms at a time to `until`, settling after each; `each` runs after every step. */
  async runUntil(until: number, each: () => Promise<boolean> | boolean): Promise<boolean> {
    while (this.clock.now() < until) {
      this.clock.advance(1);
      await this.settle();
      if (this.failure !== null) throw this.failure;
      if (await each()) return true;
    }
    return false;
  }

  /** Every PG as the stand-in and each node see it (a failing seed's last words). */
  describe(): string[] {
    const out: string[] = [];
    this.meta.pgs.forEach((g, pg) => {
      out.push(`pg ${pg}: epoch ${g.epoch} primary ${g.primary} replicas ${g.replicas.join(',')} in sync ${[...g.inSync].join(',')} floors ${[...g.floors].map(([k, v]) => `${k}:${v}`).join(',')}`);
      for (const n of this.nodes) {
        const st = n.disk.recovered().pgs.get(`${volumeId}\u0000${pg}`);
        const r = n.alive ? n.rep.coreRecord(volumeId, pg) : undefined;
        const core = r === undefined ? 'no record' : `${r.role}/${r.phase} epoch ${r.epoch} applied ${r.applied} lease ${String(r.lease)} pending ${r.pending.size} out ${[...r.outOfSync.keys()].join(',')}`;
        const disk = [...n.disk.durable.blocks.values()].filter((b) => b.pg === pg).map((b) => `${b.data?.toString() ?? 'x'}@${b.epoch}/${b.seq}`).join(' ');
        out.push(`    ${n.id} disk: ${disk}`);
        out.push(`  ${n.id}#${n.inc} ${n.alive ? 'up' : 'down'}${n.metaCut ? ' meta-cut' : ''}${n.partitioned ? ' partitioned' : ''}: store ${st === undefined ? 'none' : `epoch ${st.epoch} applied ${st.appliedSeq} highest ${st.highestSeq} trimmed ${st.trimmedSeq}`}; core ${core}; beat ${this.meta.lastBeat.get(n.id) ?? 0}`);
      }
    });
    return out;
  }

  /** Stops every process (the end of a run): nothing of it keeps running in this process. */
  close(): void {
    for (const n of this.nodes) {
      if (!n.alive) continue;
      n.alive = false;
      n.death.kill();
      n.rep.close();
      n.leases.close();
      void n.agent.stop();
      this.net.detach(n.address);
    }
  }
}
