/** Runs one seed of the data-plane simulator and reports the outcome (never throws for a protocol failure). */
import type { BreakName } from '../../dataplane/core/index.js';
import { storeBreakNames, type StoreBreakName } from './store.js';
import { convergeBoundMs, SimFailure, World, type SimStats } from './world.js';

/** A break of the core (its `BreakName` switches) or of the simulator's model of the store. */
export type AnyBreak = BreakName | StoreBreakName;
const isStoreBreak = (b: AnyBreak): b is StoreBreakName => (storeBreakNames as readonly string[]).includes(b);

export interface SimResult {
  seed: number;
  ok: boolean;
  failure: string | null;
  /** FNV-1a over every event: two runs of one seed must print the same. */
  traceHash: string;
  stats: SimStats;
  replay: string;
  log: string[];
}

export const defaultFaultMs = 1_500;

export function replayCommand(seed: number, faultMs: number, breakName?: AnyBreak): string {
  return `npm run sim:dataplane -- --seed ${seed}${faultMs === defaultFaultMs ? '' : ` --fault-ms ${faultMs}`}${breakName === undefined ? '' : ` --break ${breakName}`} --verbose`;
}

export function runSeed(seed: number, opts: { faultMs?: number; breakName?: AnyBreak; verbose?: boolean } = {}): SimResult {
  const faultMs = opts.faultMs ?? defaultFaultMs;
  const b = opts.breakName;
  const breaks = b === undefined ? {} : isStoreBreak(b) ? { storeBreak: b } : { breakName: b };
  const world = new World({ seed, faultMs, ...breaks, ...(opts.verbose === true ? { verbose: true } : {}) });
  let failure: string | null = null;
  try {
    world.run(faultMs);
    world.heal();
    const healedAt = world.now;
    const converged = world.run(healedAt + convergeBoundMs, () => world.now > healedAt + 600 && world.check.notConverged() === null);
    if (!converged) throw new SimFailure('converges-after-healing', `not converged ${convergeBoundMs} ms after healing: ${world.check.notConverged() ?? 'events ran out'}`);
    world.stats.convergedMs = world.now - healedAt;
    world.check.checkAllAgree();
  } catch (err) {
    failure = err instanceof SimFailure ? err.message : `core threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
  }
  return {
    seed, ok: failure === null, failure, traceHash: (world.traceHash >>> 0).toString(16).padStart(8, '0'), stats: world.stats,
    replay: replayCommand(seed, faultMs, opts.breakName), log: world.log,
  };
}
