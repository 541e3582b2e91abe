/**
 * One simulated cluster: 3–5 data nodes running `PgCore` per PG over `SimStore`s, the metadata
 * stand-in, clients writing at every concern and reading, a network that drops, delays (reorders),
 * duplicates and partitions, crashes with loss of unsynced writes, node replacement (storage
 * wiped), failovers, hand-back, trimmed journals and full resyncs. Every property is checked
 * after every event (see checks.ts); the only randomness is the seeded Prng.
 */
import { PgCore, type BreakName, type CoreFaults, type CoreLimits, type PeerMsg, type PgAction, type PgEvent, type ReplicaInfo, type WriteConcern } from '../../dataplane/core/index.js';
import { EventHeap } from '../sim/heap.js';
import { Prng } from '../sim/prng.js';
import { Checker, SimFailure } from './checks.js';
import { Meta } from './meta.js';
import { SimStore, type StoreBreakName } from './store.js';

export { SimFailure };

export interface SimOptions {
  seed: number;
  /** Milliseconds of faults before everything heals. */
  faultMs: number;
  breakName?: BreakName;
  /** A store bug put back (store.ts). */
  storeBreak?: StoreBreakName;
  verbose?: boolean;
}

export interface SimStats {
  events: number;
  writesAcked: number;
  readsServed: number;
  crashes: number;
  wipes: number;
  partitions: number;
  /** Primaries isolated with their links stalled (`isolate`). */
  isolations: number;
  failovers: number;
  handBacks: number;
  fullResyncs: number;
  convergedMs: number;
}

const tickMs = 10;
const beatMs = 50;
const concerns: readonly WriteConcern[] = ['acknowledged', 'durable', 'replicated', 'distributed'];
export const blocksPerPg = 3;
/** After healing, every PG must be whole and its replicas identical within this long. */
export const convergeBoundMs = 4_000;
/** Messages a stalled link holds (a connection's send queue); beyond this it drops them. */
const maxStalledPerLink = 256;

type Ev =
  | { k: 'tick'; node: string; inc: number }
  | { k: 'beat'; node: string; inc: number }
  | { k: 'control' }
  | { k: 'deliver'; from: string; to: string; pg: number; msg: PeerMsg }
  | { k: 'core'; node: string; inc: number; pg: number; ev: PgEvent }
  | { k: 'sync'; node: string; inc: number; pg: number; id: number; token: number }
  | { k: 'metaIn'; node: string; inc: number; pg: number; a: PgAction }
  | { k: 'client'; client: number }
  | { k: 'answer'; req: number; a: Extract<PgAction, { t: 'answer' }> | { t: 'read'; value: string | null } }
  | { k: 'timeout'; req: number }
  | { k: 'fault' }
  | { k: 'restart'; node: string }
  | { k: 'rejoin'; node: string };
type Timed = Ev & { at: number; seq: number };

interface SimNode {
  id: string;
  alive: boolean;
  inc: number;
  wiped: boolean;
  metaCut: boolean;
  stores: SimStore[];
  cores: PgCore[];
  leaseUntil: number[];
}

export interface Req { client: number; pg: number; block: number; kind: 'write' | 'read'; value: string; concern: WriteConcern; startedAt: number; node: string; done: boolean }

export class World {
  readonly rng: Prng;
  readonly stats: SimStats = { events: 0, writesAcked: 0, readsServed: 0, crashes: 0, wipes: 0, partitions: 0, isolations: 0, failovers: 0, handBacks: 0, fullResyncs: 0, convergedMs: -1 };
  readonly log: string[] = [];
  traceHash = 0x811c9dc5;
  now = 0;
  readonly nodes: SimNode[];
  readonly meta: Meta;
  readonly check: Checker;
  private readonly heap = new EventHeap<Timed>();
  private nextSeq = 0;
  private readonly cuts = new Set<string>();
  /**
   * Stalled links (`a>b`): messages from a to b wait in the link's queue and are delivered, in
   * order, when the stall ends — a frozen connection or a paused process whose writes flush late.
   */
  private readonly stalls = new Map<string, { pg: number; msg: PeerMsg }[]>();
  /** Nodes isolated by `toggleMetaCut` (cut from the metadata service, their links stalled) until their `rejoin`. */
  private readonly isolated = new Set<string>();
  /**
   * PGs whose primary was deposed while isolated; half of those isolations heal as soon as the
   * new primary serves (0–10 ms later): the adversarial interleaving in which the deposed
   * primary's queued forwards reach replicas that recorded the new epoch before the new primary's
   * own writes fill those seqs.
   */
  private readonly deposed = new Map<number, string>();
  readonly reqs = new Map<number, Req>();
  private nextReq = 1;
  private nextValue = 1;
  private readonly faults: CoreFaults;
  private readonly limits: CoreLimits;
  private readonly net: { drop: number; dup: number; slow: number; stuck: number };
  private healing = false;
  private readonly shownPlacements: string[] = [];
  readonly pgCount: number;

  constructor(readonly opts: SimOptions) {
    this.rng = new Prng(opts.seed);
    const n = 3 + this.rng.nextInt(3);
    this.pgCount = 1 + this.rng.nextInt(2);
    const infos: ReplicaInfo[] = Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, zone: `z${i % 2}` }));
    this.meta = new Meta(infos, this.pgCount, 3, { leaseTtlMs: 200, downAfterMs: 300, freshBeatMs: 2 * beatMs }, (k) => this.rng.nextInt(k));
    this.faults = opts.breakName === undefined ? {} : { [opts.breakName]: true };
    this.limits = { forwardRetryTicks: 3, forwardAttempts: 3, gapTicks: 3, resendTicks: 5, trimEveryEntries: 1 + this.rng.nextInt(6), maxPendingWrites: 64 };
    this.net = { drop: this.rng.nextInt(4) * 0.03, dup: this.rng.nextInt(3) * 0.03, slow: this.rng.nextInt(3) * 0.05, stuck: this.rng.nextInt(3) * 0.01,  };
    this.nodes = infos.map((i) => ({ id: i.id, alive: true, inc: 1, wiped: false, metaCut: false, stores: [], cores: [], leaseUntil: [] }));
    for (const node of this.nodes) {
      node.stores = Array.from({ length: this.pgCount }, () => new SimStore(new Set(opts.storeBreak === undefined ? [] : [opts.storeBreak])));
      this.boot(node);
    }
    this.check = new Checker(this);
    this.push(0, { k: 'control' });
    for (let c = 0; c < 3; c++) this.push(this.rng.between(1, 20), { k: 'client', client: c });
    this.push(this.rng.between(20, 60), { k: 'fault' });
  }

  private boot(node: SimNode): void {
    node.cores = node.stores.map((s) => new PgCore(node.id, s.restore(), this.faults, this.limits));
    node.leaseUntil = node.stores.map(() => 0);
    this.push(this.rng.between(1, tickMs), { k: 'tick', node: node.id, inc: node.inc });
    this.push(this.rng.between(1, beatMs), { k: 'beat', node: node.id, inc: node.inc });
  }

  push(delayMs: number, ev: Ev): void {
    this.heap.push({ ...ev, at: this.now + delayMs, seq: this.nextSeq++ });
  }

  node(id: string): SimNode {
    return this.nodes.find((n) => n.id === id) as SimNode;
  }

  private trace(s: string): void {
    for (let i = 0; i < s.length; i++) this.traceHash = Math.imul(this.traceHash ^ s.charCodeAt(i), 16777619);
    if (this.opts.verbose === true) this.log.push(`${this.now} ${s}`);
  }

  /** Runs until `untilMs` or until `stop` says so after an event; false if the heap ran dry. */
  run(untilMs: number, stop: () => boolean = () => false): boolean {
    for (;;) {
      const ev = this.heap.peek();
      if (ev === undefined || ev.at > untilMs) return false;
      this.heap.pop();
      this.now = ev.at;
      this.stats.events++;
      this.handle(ev);
      this.check.afterEvent();
      if (stop()) return true;
    }
  }

  private handle(ev: Timed): void {
    switch (ev.k) {
      case 'tick': return this.onTick(ev.node, ev.inc);
      case 'beat': return this.onBeat(ev.node, ev.inc);
      case 'control': return this.onControl();
      case 'deliver': return this.onDeliver(ev.from, ev.to, ev.pg, ev.msg);
      case 'core': return this.stepIfAlive(ev.node, ev.inc, ev.pg, ev.ev);
      case 'sync': return this.onSync(ev);
      case 'metaIn': return this.onMetaIn(ev.node, ev.inc, ev.pg, ev.a);
      case 'client': return this.onClient(ev.client);
      case 'answer': return this.onAnswer(ev.req, ev.a);
      case 'timeout': return this.onTimeout(ev.req);
      case 'fault': return this.onFault();
      case 'restart': return this.onRestart(ev.node);
      case 'rejoin': return this.onRejoin(ev.node);
    }
  }

  private live(id: string, inc: number): SimNode | null {
    const n = this.node(id);
    return n.alive && n.inc === inc ? n : null;
  }

  private stepIfAlive(id: string, inc: number, pg: number, ev: PgEvent): void {
    const n = this.live(id, inc);
    if (n !== null) this.step(n, pg, ev);
  }

  step(n: SimNode, pg: number, ev: PgEvent): void {
    if (ev.t !== 'tick') this.trace(`${n.id}/${pg} <- ${ev.t === 'msg' ? ev.msg.t : ev.t}`);
    const core = n.cores[pg] as PgCore;
    const actions = core.step(ev);
    for (const a of actions) this.act(n, pg, a);
    const old = this.deposed.get(pg);
    if (old !== undefined && core.r.role === 'primary' && core.r.phase === 'active' && old !== n.id) {
      this.deposed.delete(pg);
      this.push(this.rng.between(0, 10), { k: 'rejoin', node: old });
    }
    this.check.afterStep(n, pg);
  }

  private act(n: SimNode, pg: number, a: PgAction): void {
    const store = n.stores[pg] as SimStore;
    switch (a.t) {
      case 'store': return this.onStore(n, pg, a);
      case 'epoch': store.setEpoch(a.epoch); return;
      case 'trim': this.check.onTrim(n, pg, a.upto); store.write({ kind: 'trim', upto: a.upto }, () => undefined); return;
      case 'drop': store.drop(); this.stats.handBacks++; return;
      case 'send': this.send(n.id, a.to, pg, a.msg); return;
      case 'sendFill': {
        const fill = store.fill(a.fromSeq);
        if (fill.full !== null) this.stats.fullResyncs++;
        this.send(n.id, a.to, pg, a.msg.t === 'journal' ? { ...a.msg, fill } : { ...a.msg, fill });
        return;
      }
      case 'answer': this.check.onAnswer(n, pg, a); this.reply(a.req, a); return;
      case 'serveRead': this.reply(a.req, { t: 'read', value: store.volatile.blocks.get(a.block)?.value ?? null }); return;
      case 'claim': case 'outOfSync': case 'refreshPlacement': this.toMeta(n, pg, a); return;
      case 'inventory': this.push(0, { k: 'core', node: n.id, inc: n.inc, pg, ev: { t: 'inventory', blocks: store.inventory() } }); return;
    }
  }

  private onStore(n: SimNode, pg: number, a: Extract<PgAction, { t: 'store' }>): void {
    const store = n.stores[pg] as SimStore;
    const id = store.write({ kind: 'write', entries: a.entries, full: a.full }, (e) => this.check.onEntry(n.id, pg, e));
    const slow = this.rng.chance(this.net.slow);
    this.push(a.sync ? (slow ? this.rng.between(20, 80) : this.rng.between(1, 6)) : 0, { k: 'sync', node: n.id, inc: n.inc, pg, id: a.sync ? id : 0, token: a.token });
  }

  private onSync(ev: Extract<Ev, { k: 'sync' }>): void {
    const n = this.live(ev.node, ev.inc);
    if (n === null) return;
    if (ev.id > 0) (n.stores[ev.pg] as SimStore).sync(ev.id);
    this.step(n, ev.pg, { t: 'stored', token: ev.token });
  }

  /** Cuts are directional (`a>b`: messages from a to b are lost); a symmetric partition adds both. */
  private linkCut(from: string, to: string): boolean {
    return this.cuts.has(`${from}>${to}`);
  }

  /** Queues a message on a stalled link (sent, or in flight when the stall began); false if the link is not stalled. */
  private stalled(from: string, to: string, pg: number, msg: PeerMsg): boolean {
    const q = this.stalls.get(`${from}>${to}`);
    if (q === undefined) return false;
    if (q.length < maxStalledPerLink) q.push({ pg, msg });
    return true;
  }

  /** Ends every stall of `id` (or all): each link's queue is delivered in order, a moment apart. */
  private unstall(id: string | null): void {
    for (const [link, q] of [...this.stalls]) {
      const [from, to] = link.split('>') as [string, string];
      if (id !== null && from !== id && to !== id) continue;
      this.stalls.delete(link);
      const base = this.rng.between(1, 12);
      q.forEach(({ pg, msg }, i) => this.push(base + i, { k: 'deliver', from, to, pg, msg }));
    }
  }

  private send(from: string, to: string, pg: number, msg: PeerMsg): void {
    if (this.stalled(from, to, pg, msg)) return;
    if (this.linkCut(from, to) || this.rng.chance(this.net.drop)) return;
    const copies = this.rng.chance(this.net.dup) ? 2 : 1;
    for (let i = 0; i < copies; i++) this.push(this.delay(), { k: 'deliver', from, to, pg, msg });
  }

  /** Most messages take 1–12 ms; some 30–150 ms (reordering); a few sit in a queue for up to 0.8 s. */
  private delay(): number {
    if (this.rng.chance(this.net.stuck)) return this.rng.between(200, 800);
    return this.rng.chance(this.net.slow) ? this.rng.between(30, 150) : this.rng.between(1, 12);
  }

  private onDeliver(from: string, to: string, pg: number, msg: PeerMsg): void {
    const n = this.node(to);
    if (this.stalled(from, to, pg, msg)) return;
    if (!n.alive || this.linkCut(from, to)) return;
    if (msg.t !== 'handBack') { this.step(n, pg, { t: 'msg', from, msg }); return; }
    const blocks = (n.stores[pg] as SimStore).volatile.blocks;
    this.step(n, pg, { t: 'handBackOffers', from, epoch: msg.epoch, offers: msg.offers, current: msg.offers.map((o) => blocks.get(o.block) ?? null) });
  }

  // ---- node timers and the metadata link ------------------------------------------------------

  private onTick(id: string, inc: number): void {
    const n = this.live(id, inc);
    if (n === null) return;
    n.cores.forEach((core, pg) => {
      if (core.r.lease && this.now >= (n.leaseUntil[pg] ?? 0)) this.step(n, pg, { t: 'lease', epoch: core.r.placement?.epoch ?? 0, valid: false });
      this.step(n, pg, { t: 'tick' });
    });
    this.push(tickMs, { k: 'tick', node: id, inc });
  }

  /** Heartbeat: report, take placements, renew leases (counted from the send, minus a margin). */
  private onBeat(id: string, inc: number): void {
    const n = this.live(id, inc);
    if (n === null) return;
    this.push(beatMs, { k: 'beat', node: id, inc });
    if (n.metaCut) return;
    const reports = new Map(n.cores.map((c, pg) => [pg, { epoch: c.r.epoch, applied: c.r.applied }]));
    this.meta.heartbeat(id, this.now, reports);
    if (this.meta.waitingForDown.has(id)) return;
    const sentAt = this.now;
    n.cores.forEach((core, pg) => {
      const p = this.meta.placement(pg);
      if (core.r.placement?.epoch !== p.epoch) this.step(n, pg, { t: 'placement', p });
      if (core.r.role !== 'primary' || core.r.phase === 'fenced' || !this.meta.lease(id, pg, p.epoch, this.now)) return;
      n.leaseUntil[pg] = sentAt + 200 - 20;
      if (!core.r.lease && core.r.phase === 'active') this.step(n, pg, { t: 'lease', epoch: p.epoch, valid: true });
    });
  }

  private toMeta(n: SimNode, pg: number, a: PgAction): void {
    if (!n.metaCut) this.push(this.rng.between(1, 5), { k: 'metaIn', node: n.id, inc: n.inc, pg, a });
  }

  private onMetaIn(id: string, inc: number, pg: number, a: PgAction): void {
    const n = this.live(id, inc);
    if (n === null || n.metaCut) return;
    if (a.t === 'claim') {
      const r = this.meta.claim(id, inc, pg, a.epoch);
      if (r === 'granted') this.step(n, pg, { t: 'claimed', epoch: a.epoch });
      if (r === 'moved') this.step(n, pg, { t: 'placement', p: this.meta.placement(pg) });
    } else if (a.t === 'refreshPlacement') {
      const p = this.meta.placement(pg);
      if ((n.cores[pg]?.r.placement?.epoch ?? 0) < p.epoch) this.step(n, pg, { t: 'placement', p });
    } else if (a.t === 'outOfSync') {
      // A mark from a node that is not the primary at that epoch is refused: it is deposed there.
      if (this.meta.outOfSync(id, pg, a.epoch, a.replica, a.floor)) this.step(n, pg, { t: 'marked', replica: a.replica, floor: a.floor });
      else this.step(n, pg, { t: 'markRefused', replica: a.replica, epoch: a.epoch });
    }
  }

  private onControl(): void {
    const before = this.meta.pgs.map((g) => g.primary);
    this.meta.control(this.now, (id) => this.now - (this.meta.lastBeat.get(id) ?? 0) <= 2 * beatMs);
    this.meta.pgs.forEach((g, pg) => {
      if (g.primary !== before[pg]) this.stats.failovers++;
      const was = before[pg];
      if (was !== undefined && g.primary !== was && this.isolated.has(was) && this.rng.chance(0.5)) this.deposed.set(pg, was);
      const shown = `pg ${pg} e${g.epoch} ${g.primary} [${g.replicas.join(',')}] in-sync [${[...g.inSync].join(',')}]`;
      if (shown !== this.shownPlacements[pg]) { this.trace(`meta: ${shown}`); this.shownPlacements[pg] = shown; }
    });
    this.push(beatMs, { k: 'control' });
  }

  // ---- clients --------------------------------------------------------------------------------

  private onClient(client: number): void {
    if (this.healing && this.now > this.healStartedAt + 500) return;
    const pg = this.rng.nextInt(this.pgCount);
    const p = this.meta.placement(pg); // a client's placement read (it may be stale by the time it lands)
    const kind = this.rng.chance(0.65) ? 'write' : 'read';
    const target = this.rng.chance(0.1) ? this.rng.pick(p.replicas).id : p.primary;
    const req = this.nextReq++;
    const r: Req = { client, pg, block: this.rng.nextInt(blocksPerPg), kind, value: `v${this.nextValue++}`, concern: this.rng.pick(concerns), startedAt: this.now, node: target, done: false };
    this.reqs.set(req, r);
    this.check.onInvoke(req, r);
    const ev: PgEvent = kind === 'write'
      ? { t: 'write', req, block: r.block, value: r.value, concern: r.concern, epoch: p.epoch }
      : { t: 'read', req, block: r.block, epoch: p.epoch };
    const n = this.node(target);
    const inc = n.inc;
    if (n.alive) this.push(this.rng.between(1, 5), { k: 'core', node: target, inc, pg, ev });
    this.push(300, { k: 'timeout', req });
  }

  private reply(req: number, a: Extract<PgAction, { t: 'answer' }> | { t: 'read'; value: string | null }): void {
    this.push(this.rng.between(1, 5), { k: 'answer', req, a });
  }

  private onAnswer(req: number, a: Extract<PgAction, { t: 'answer' }> | { t: 'read'; value: string | null }): void {
    const r = this.reqs.get(req);
    if (r === undefined || r.done) return;
    r.done = true;
    if (a.t === 'read') { this.stats.readsServed++; this.check.onRead(req, r, a.value); } else if (a.ok) { this.stats.writesAcked++; this.check.onAckReceived(req); }
    this.push(this.rng.between(1, 10), { k: 'client', client: r.client });
  }

  private onTimeout(req: number): void {
    const r = this.reqs.get(req);
    if (r === undefined || r.done) return;
    r.done = true;
    this.push(0, { k: 'client', client: r.client });
  }

  // ---- faults ---------------------------------------------------------------------------------

  private onFault(): void {
    if (this.healing) return;
    this.push(this.rng.between(20, 120), { k: 'fault' });
    // Half the faults hit a current primary: that is where the protocol's decisions are.
    const n = this.rng.chance(0.5) ? this.node(this.rng.pick(this.meta.pgs).primary) : this.rng.pick(this.nodes);
    const roll = this.rng.nextInt(10);
    if (roll < 3 && n.alive) this.crash(n, false);
    else if (roll === 3 && n.alive && this.mayWipe(n)) this.crash(n, true);
    else if (roll < 6) this.partition(n);
    else if (roll === 6) this.toggleMetaCut(n);
    else if (roll === 8) this.isolate(this.node(this.rng.pick(this.meta.pgs).primary));
    else if (roll === 7 && this.cuts.size > 0) this.cuts.clear();
  }

  /**
   * Replace (wipe) only a node whose every PG has another in-sync copy up and heard by the
   * metadata service, and whose PGs' primaries are in sync: replacing the last holder loses the
   * data by definition, which no protocol can prevent.
   */
  private mayWipe(n: SimNode): boolean {
    const upInSync = (id: string): boolean => id !== n.id && this.node(id).alive && !this.node(id).metaCut && this.now - (this.meta.lastBeat.get(id) ?? 0) <= beatMs;
    return this.meta.pgs.every((g) => !g.replicas.includes(n.id)
      || (g.replicas.some((r) => g.inSync.has(r) && upInSync(r)) && (g.primary === n.id || (g.inSync.has(g.primary) && upInSync(g.primary)))));
  }

  private crash(n: SimNode, wipe: boolean): void {
    this.trace(`crash ${n.id}${wipe ? ' wipe' : ''}`);
    n.alive = false;
    for (const s of n.stores) { if (wipe) s.wipe(); else s.crash(); }
    if (wipe) {
      this.stats.wipes++;
      n.wiped = true;
      this.check.onWipe(n.id);
      this.meta.replaced(n.id, this.now);
    } else {
      this.stats.crashes++;
    }
    // A supervisor restarts a crashed process at once, or the machine takes a while.
    this.push(this.rng.chance(0.4) ? this.rng.between(5, 40) : this.rng.between(30, 600), { k: 'restart', node: n.id });
  }

  private onRestart(id: string): void {
    const n = this.node(id);
    if (n.alive) return;
    if (n.wiped && !this.meta.down.has(id)) { this.push(50, { k: 'restart', node: id }); return; }
    n.wiped = false;
    n.alive = true;
    n.inc++;
    this.boot(n);
    this.check.onRestart(n);
  }

  /** Cuts a node from the metadata service (its lease lapses, it is marked down, its PGs fail over) or reconnects it. */
  private toggleMetaCut(n: SimNode): void {
    n.metaCut = !n.metaCut;
    if (!n.metaCut && this.isolated.delete(n.id)) this.unstall(n.id);
  }

  /**
   * Isolates a current primary for 0.4–1 s: cut from the metadata service and from every node, its links
   * stalled instead of dropping. A deposed primary's forwards (and its peers' answers) wait in the
   * queues and land after the new primary peered — old-epoch messages on copies that recorded the
   * new epoch, which only the replicas' epoch check keeps out (`acceptOldEpoch`: without
   * isolation it was caught in 1 seed of 300).
   */
  private isolate(n: SimNode): void {
    if (n.metaCut || !n.alive) return;
    this.stats.isolations++;
    this.trace(`isolate ${n.id}`);
    n.metaCut = true;
    for (const o of this.nodes) {
      if (o === n) continue;
      for (const link of [`${n.id}>${o.id}`, `${o.id}>${n.id}`]) if (!this.stalls.has(link)) this.stalls.set(link, []);
    }
    this.isolated.add(n.id);
    this.push(this.rng.between(400, 1000), { k: 'rejoin', node: n.id });
  }

  /** The isolation ends: the node's stalled links flush and it reaches the metadata service again. */
  private onRejoin(id: string): void {
    const n = this.node(id);
    if (!this.isolated.delete(id)) return;
    n.metaCut = false;
    this.unstall(id);
  }

  private partition(n: SimNode): void {
    this.stats.partitions++;
    const others = this.nodes.filter((o) => o !== n);
    const cutAll = this.rng.chance(0.5);
    for (const o of others) {
      if (!cutAll && !this.rng.chance(0.5)) continue;
      const oneWay = this.rng.chance(0.2);
      if (!oneWay || this.rng.chance(0.5)) this.cuts.add(`${n.id}>${o.id}`);
      if (!oneWay || !this.cuts.has(`${n.id}>${o.id}`)) this.cuts.add(`${o.id}>${n.id}`);
    }
  }

  healStartedAt = 0;

  /** Ends the faults: links heal, every node comes back; clients write for 0.5 s more, then stop. */
  heal(): void {
    this.healing = true;
    this.healStartedAt = this.now;
    this.cuts.clear();
    this.isolated.clear();
    this.deposed.clear();
    this.unstall(null);
    for (const n of this.nodes) {
      n.metaCut = false;
      if (!n.alive) this.push(this.rng.between(1, 20), { k: 'restart', node: n.id });
    }
  }

  get nodeCount(): number { return this.nodes.length; }
  get coreFaults(): CoreFaults { return this.faults; }
}

export type { SimNode };
