/**
 * npm run sim:dataplane -- --seeds N [--seed S] [--fault-ms M] [--break NAME] [--verbose]
 * Runs N seeds from S (default 1), prints one line per failing seed with the command that replays
 * it, and a summary with a hash over all traces. Exit 1 when a seed failed.
 */
import { parseArgs } from 'node:util';
import { breakNames, regressionBreakNames } from '../../dataplane/core/index.js';
import { defaultFaultMs, runSeed, type AnyBreak } from './run.js';
import { storeBreakNames } from './store.js';
import { runSeedLoop } from '../sim/seed-loop.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'fault-ms': { type: 'string', default: String(defaultFaultMs) },
    break: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});

const seeds = Number(values.seeds);
const from = Number(values.seed);
const faultMs = Number(values['fault-ms']);
const breakName = values.break as AnyBreak | undefined;
const allBreaks: readonly string[] = [...breakNames, ...regressionBreakNames, ...storeBreakNames];
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(from) || !Number.isInteger(faultMs) || faultMs < 1
  || (breakName !== undefined && !allBreaks.includes(breakName))) {
  console.error(`usage: npm run sim:dataplane -- --seeds N [--seed S] [--fault-ms M] [--break ${allBreaks.join('|')}] [--verbose]`);
  process.exit(2);
}

process.exit(runSeedLoop({
  from, seeds, verbose: values.verbose, slowest: { key: 'convergedMs', label: 'slowest convergence after healing' },
  run: (seed) => {
    const outcome = runSeed(seed, { faultMs, ...(breakName === undefined ? {} : { breakName }), verbose: values.verbose });
    return { outcome: { ...outcome, stats: { ...outcome.stats } }, label: `seed ${seed}` };
  },
}));
