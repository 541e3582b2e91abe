/**
 * npm run sim:dataplane -- --seeds N [--seed S] [--fault-ms M] [--break NAME] [--verbose]
 * Runs N seeds from S (default 1), prints one line per failing seed with the command that replays
 * it, and a summary with a hash over all traces. Exit 1 when a seed failed.
 */
import { parseArgs } from 'node:util';
import { breakNames, regressionBreakNames, type BreakName } from '../../dataplane/core/index.js';
import { defaultFaultMs, runSeed } from './run.js';

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
const breakName = values.break as BreakName | undefined;
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(from) || !Number.isInteger(faultMs) || faultMs < 1
  || (breakName !== undefined && ![...breakNames, ...regressionBreakNames].includes(breakName))) {
  console.error(`usage: npm run sim:dataplane -- --seeds N [--seed S] [--fault-ms M] [--break ${[...breakNames, ...regressionBreakNames].join('|')}] [--verbose]`);
  process.exit(2);
}

const started = performance.now();
let failed = 0;
let events = 0;
let combined = 0x811c9dc5;
const totals: Record<string, number> = {};
let slowest = 0;
for (let seed = from; seed < from + seeds; seed++) {
  const r = runSeed(seed, { faultMs, ...(breakName === undefined ? {} : { breakName }), verbose: values.verbose });
  events += r.stats.events;
  for (const [k, v] of Object.entries(r.stats) as [string, number][]) totals[k] = (totals[k] ?? 0) + v;
  slowest = Math.max(slowest, r.stats.convergedMs);
  combined = Math.imul(combined ^ parseInt(r.traceHash, 16), 16777619) >>> 0;
  if (values.verbose) for (const line of r.log) console.log(line);
  if (seeds === 1 || values.verbose) console.log(`seed ${seed}: ${r.ok ? 'ok' : 'FAILED'} trace ${r.traceHash} ${JSON.stringify(r.stats)}`);
  if (!r.ok) {
    failed++;
    console.log(`FAIL seed ${seed}: ${r.failure}\n  replay: ${r.replay}`);
  }
}
const secs = (performance.now() - started) / 1000;
delete totals.events;
delete totals.convergedMs;
console.log(`totals: ${Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ')}; slowest convergence after healing ${slowest} ms`);
console.log(`${seeds - failed}/${seeds} seeds passed, ${events} events in ${secs.toFixed(1)} s (${Math.round(events / secs)} events/s), trace hash ${combined.toString(16).padStart(8, '0')}`);
process.exit(failed > 0 ? 1 : 0);
