/**
 * One seed of the shell simulator: start the nodes, run clients and faults for `faultMs`, heal
 * everything, let the clients write `clientTailMs` more, stop them and wait (at most
 * `convergeBoundMs`) for every PG to converge; the checks run every `checkEveryMs` and at the
 * end. Never throws for a protocol failure: the result names the property.
 */
import { breakNames, regressionBreakNames, type BreakName } from '../../../dataplane/core/index.js';
import { ShellChecker } from './checks.js';
import { ShellClients } from './clients.js';
import { SimFailure, ShellWorld, beatMs, type ShellNode, type ShellStats } from './world.js';

export const defaultShellFaultMs = 1_500;
export const clientTailMs = 500;
export const convergeBoundMs = 4_000;
export const checkEveryMs = 10;
/** An isolation of a primary lasts this long (past its lease, so it is deposed). */
export const isolationMinMs = 400;
export const isolationMaxMs = 1_000;
export const shellBreakNames: readonly BreakName[] = [...breakNames, ...regressionBreakNames];

export interface ShellResult {
  seed: number;
  ok: boolean;
  failure: string | null;
  traceHash: string;
  stats: ShellStats;
  replay: string;
  log: string[];
}

export function shellReplay(seed: number, faultMs: number, breakName?: BreakName, replicaReads = false): string {
  return `npm run sim:dataplane-shell -- --seed ${seed}${faultMs === defaultShellFaultMs ? '' : ` --fault-ms ${faultMs}`}${breakName === undefined ? '' : ` --break ${breakName}`}${replicaReads ? ' --replica-reads' : ''} --verbose`;
}

/** The faults of a seed: every 20–120 ms a crash, a partition, a cut from the metadata service, an isolation of a primary, or a heal of one node. */
class ShellFaults {
  constructor(private readonly w: ShellWorld) {}

  start(untilMs: number): void {
    const next = (): void => {
      if (this.w.clock.now() >= untilMs) return;
      this.one();
      this.w.clock.setTimeout(next, this.w.rng.between(20, 120));
    };
    this.w.clock.setTimeout(next, this.w.rng.between(20, 120));
  }

  /** Half the faults aim at a current primary. */
  private target(): ShellNode {
    const { rng, meta } = this.w;
    if (rng.chance(0.5)) return this.w.node(rng.pick(meta.pgs).primary);
    return rng.pick(this.w.nodes);
  }

  /**
   * A current primary cut from the metadata service and its links to every node stalled: what it
   * sends, and what is sent to it, waits and is delivered in order when the isolation ends. It
   * serves on its lease until that lapses; it is marked down and a new primary peers without it;
   * then its old-epoch forwards reach copies that recorded the new epoch.
   */
  private isolate(): void {
    const { rng, meta, clock } = this.w;
    const n = this.w.node(rng.pick(meta.pgs).primary);
    const ms = rng.between(isolationMinMs, isolationMaxMs);
    n.metaCut = true;
    n.stalledUntil = clock.now() + ms;
    this.w.stats.isolations++;
    this.w.trace(`isolate ${n.id} for ${ms} ms`);
    clock.setTimeout(() => { n.metaCut = false; }, ms);
  }

  private one(): void {
    const { rng } = this.w;
    const n = this.target();
    const kind = rng.nextInt(100);
    if (kind >= 70 && kind < 80) { this.isolate(); return; }
    if (kind < 30) {
      if (!n.alive) return;
      this.w.crash(n);
      const back = rng.chance(0.5) ? rng.between(5, 40) : rng.between(30, 600);
      this.w.clock.setTimeout(() => { if (!n.alive) void this.w.start(n); }, back);
    } else if (kind < 55) {
      n.partitioned = true;
      this.w.stats.partitions++;
      this.w.trace(`partition ${n.id}`);
      this.w.clock.setTimeout(() => { n.partitioned = false; }, rng.between(50, 400));
    } else if (kind < 70) {
      n.metaCut = true;
      this.w.stats.metaCuts++;
      this.w.trace(`meta cut ${n.id}`);
      this.w.clock.setTimeout(() => { n.metaCut = false; }, rng.between(200, 800));
    } else {
      n.partitioned = false;
      n.metaCut = false;
      this.w.trace(`heal ${n.id}`);
    }
  }

  /** Everything heals: links clean, every node back and reachable. */
  async healAll(): Promise<void> {
    this.w.rates = { drop: 0, answerDrop: 0, slow: 0 };
    for (const n of this.w.nodes) {
      n.partitioned = false;
      n.metaCut = false;
      n.stalledUntil = Math.min(n.stalledUntil, this.w.clock.now());
      if (!n.alive) await this.w.start(n);
    }
    this.w.trace('heal all');
  }
}

/** `replicaReads`: one client read in ten goes to a random other replica of the client's placement (clients.ts, `replicaReadShare`). */
export async function runShellSeed(seed: number, opts: { faultMs?: number; breakName?: BreakName; verbose?: boolean; replicaReads?: boolean } = {}): Promise<ShellResult> {
  const faultMs = opts.faultMs ?? defaultShellFaultMs;
  const w = new ShellWorld({ seed, coreFaults: opts.breakName ?? '', verbose: opts.verbose === true });
  const check = new ShellChecker(w);
  const clients = new ShellClients(w, check, opts.replicaReads === true);
  const faults = new ShellFaults(w);
  const each = (): boolean => {
    if (w.clock.now() % checkEveryMs === 0) check.step();
    return false;
  };
  let failure: string | null = null;
  try {
    for (const n of w.nodes) await w.start(n);
    const control = (): void => { w.control(); w.clock.setTimeout(control, beatMs); };
    w.clock.setTimeout(control, beatMs);
    clients.start();
    faults.start(faultMs);
    await w.runUntil(faultMs, each);
    await faults.healAll();
    const healedAt = w.clock.now();
    await w.runUntil(healedAt + clientTailMs, each);
    clients.stop();
    const converged = await w.runUntil(healedAt + clientTailMs + convergeBoundMs, () => {
      if (w.clock.now() % checkEveryMs !== 0) return false;
      check.step();
      return check.notConverged() === null;
    });
    if (!converged) throw new SimFailure('converges-after-healing', `not converged ${convergeBoundMs} ms after the clients stopped: ${check.notConverged() ?? ''}`);
    w.stats.convergedMs = w.clock.now() - healedAt - clientTailMs;
    check.finalReads();
  } catch (err) {
    failure = err instanceof SimFailure ? err.message : `the shell threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    if (opts.verbose === true) w.log.push(...w.describe());
  } finally {
    w.close();
  }
  return {
    seed, ok: failure === null, failure, traceHash: w.traceHash.toString(16).padStart(8, '0'), stats: w.stats,
    replay: shellReplay(seed, faultMs, opts.breakName, opts.replicaReads === true), log: w.log,
  };
}
