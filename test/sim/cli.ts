/**
 * npm run sim -- --seeds N [--from S] [--steps M] [--nodes 3|5] [--verbose] [--symptoms-only]
 * Runs N seeds (3- and 5-node clusters alternately unless --nodes is given), prints one line per
 * failing seed with the command that replays it, and a summary with a hash over all traces.
 */
import { parseArgs } from 'node:util';
import { defaultSteps, runSeed } from './run.js';
import { runSeedLoop } from './seed-loop.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '100' },
    from: { type: 'string', default: '1' },
    steps: { type: 'string', default: String(defaultSteps) },
    nodes: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'symptoms-only': { type: 'boolean', default: false },
  },
});

const seeds = Number(values.seeds);
const from = Number(values.from);
const steps = Number(values.steps);
const fixedNodes = values.nodes === undefined ? null : Number(values.nodes) as 3 | 5;
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(from) || !Number.isInteger(steps) || steps < 1
  || (fixedNodes !== null && fixedNodes !== 3 && fixedNodes !== 5)) {
  console.error('usage: npm run sim -- --seeds N [--from S] [--steps M] [--nodes 3|5] [--verbose] [--symptoms-only]');
  process.exit(2);
}

process.exit(runSeedLoop({
  from, seeds, verbose: values.verbose, slowest: { key: 'livenessMs', label: 'slowest recovery after heal' },
  run: (seed) => {
    const nodes = fixedNodes ?? (seed % 2 === 0 ? 5 : 3);
    const outcome = runSeed({ seed, nodes, steps, verbose: values.verbose, directChecks: !values['symptoms-only'] });
    return { outcome: { ...outcome, stats: { ...outcome.stats } }, label: `seed ${seed} (${nodes} nodes)` };
  },
}));
