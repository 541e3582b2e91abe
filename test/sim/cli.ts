/**
 * npm run sim -- --seeds N [--from S] [--steps M] [--nodes 3|5] [--verbose] [--symptoms-only]
 * Runs N seeds (3- and 5-node clusters alternately unless --nodes is given), prints one line per
 * failing seed with the command that replays it, and a summary with a hash over all traces.
 */
import { parseArgs } from 'node:util';
import { defaultSteps, runSeed } from './run.js';

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

const started = performance.now();
let failed = 0;
let events = 0;
let combined = 0x811c9dc5;
const totals: Record<string, number> = {};
let maxLivenessMs = 0;
for (let seed = from; seed < from + seeds; seed++) {
  const nodes = (fixedNodes ?? (seed % 2 === 0 ? 5 : 3));
  const r = runSeed({ seed, nodes, steps, verbose: values.verbose, directChecks: !values['symptoms-only'] });
  events += r.stats.events;
  for (const [k, v] of Object.entries(r.stats) as [string, number][]) totals[k] = (totals[k] ?? 0) + v;
  maxLivenessMs = Math.max(maxLivenessMs, r.stats.livenessMs);
  combined = Math.imul(combined ^ parseInt(r.traceHash, 16), 16777619) >>> 0;
  if (values.verbose) for (const line of r.log) console.log(line);
  if (seeds === 1 || values.verbose) {
    console.log(`seed ${seed} (${nodes} nodes): ${r.ok ? 'ok' : 'FAILED'} trace ${r.traceHash} ${JSON.stringify(r.stats)}`);
  }
  if (!r.ok) {
    failed++;
    console.log(`FAIL seed ${seed} (${nodes} nodes): ${r.failure}\n  replay: ${r.replay}`);
  }
}
const secs = (performance.now() - started) / 1000;
delete totals.events;
delete totals.livenessMs;
console.log(`totals: ${Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ')}; slowest recovery after heal ${maxLivenessMs} ms`);
console.log(`${seeds - failed}/${seeds} seeds passed, ${events} events in ${secs.toFixed(1)} s (${Math.round(events / secs)} events/s), trace hash ${combined.toString(16).padStart(8, '0')}`);
process.exit(failed > 0 ? 1 : 0);
