/** Runs one seed of the simulator and reports the outcome (never throws for a Raft failure). */
import { SimFailure, World, type SimOptions, type SimStats } from './world.js';

export interface SimResult {
  seed: number;
  nodes: 3 | 5;
  steps: number;
  ok: boolean;
  failure: string | null;
  /** FNV-1a over every event: two runs of one seed must print the same. */
  traceHash: string;
  stats: SimStats;
  replay: string;
  log: string[];
}

export const defaultSteps = 8000;

export function replayCommand(seed: number, nodes: number, steps: number, directChecks = true): string {
  return `npm run sim -- --seeds 1 --from ${seed} --nodes ${nodes} --steps ${steps}${directChecks ? '' : ' --symptoms-only'}`;
}

export function runSeed(opts: SimOptions): SimResult {
  const world = new World(opts);
  let failure: string | null = null;
  try {
    world.runFaultPhase();
    world.runLiveness();
  } catch (err) {
    // Invariant violations inside the core count as failures too (they carry their own code).
    failure = err instanceof SimFailure ? err.message : `core threw: ${err instanceof Error ? err.message : String(err)}`;
    if (!(err instanceof SimFailure) && opts.verbose === true && err instanceof Error) world.log.push(err.stack ?? '');
    if (opts.verbose === true) world.log.push(...world.dump());
  }
  return {
    seed: opts.seed,
    nodes: opts.nodes,
    steps: opts.steps,
    ok: failure === null,
    failure,
    traceHash: (world.traceHash >>> 0).toString(16).padStart(8, '0'),
    stats: world.stats,
    replay: replayCommand(opts.seed, opts.nodes, opts.steps, opts.directChecks !== false),
    log: world.log,
  };
}
