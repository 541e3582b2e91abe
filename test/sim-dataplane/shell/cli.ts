/**
 * npm run sim:dataplane-shell -- --seeds N [--seed S] [--fault-ms M] [--break NAME] [--replica-reads] [--verbose]
 * Runs N seeds of the shell simulator from S (default 1): one line per failing seed with the
 * command that replays it, and a summary with a hash over all traces. Exit 1 when a seed failed.
 */
import { parseArgs } from 'node:util';
import type { BreakName } from '../../../dataplane/core/index.js';
import { defaultShellFaultMs, runShellSeed, shellBreakNames } from './run.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'fault-ms': { type: 'string', default: String(defaultShellFaultMs) },
    break: { type: 'string' },
    'replica-reads': { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});

const seeds = Number(values.seeds);
const from = Number(values.seed);
const faultMs = Number(values['fault-ms']);
const breakName = shellBreakNames.find((b) => b === values.break);
if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(from) || !Number.isInteger(faultMs) || faultMs < 1 || (values.break !== undefined && breakName === undefined)) {
  console.error(`usage: npm run sim:dataplane-shell -- --seeds N [--seed S] [--fault-ms M] [--break ${shellBreakNames.join('|')}] [--replica-reads] [--verbose]`);
  process.exit(2);
}

async function main(b: BreakName | undefined): Promise<number> {
  const started = performance.now();
  let failed = 0;
  let first: number | null = null;
  let combined = 0x811c9dc5;
  let slowest = 0;
  const totals: Record<string, number> = {};
  for (let seed = from; seed < from + seeds; seed++) {
    const r = await runShellSeed(seed, { faultMs, ...(b === undefined ? {} : { breakName: b }), verbose: values.verbose, replicaReads: values['replica-reads'] });
    for (const [k, v] of Object.entries(r.stats)) if (k !== 'convergedMs') totals[k] = (totals[k] ?? 0) + v;
    slowest = Math.max(slowest, r.stats.convergedMs);
    combined = Math.imul(combined ^ parseInt(r.traceHash, 16), 16777619) >>> 0;
    if (values.verbose) for (const line of r.log) console.log(line);
    if (seeds === 1 || values.verbose) console.log(`seed ${seed}: ${r.ok ? 'ok' : 'FAILED'} trace ${r.traceHash} ${JSON.stringify(r.stats)}`);
    if (!r.ok) {
      failed++;
      first ??= seed;
      console.log(`FAIL seed ${seed}: ${r.failure}\n  replay: ${r.replay}`);
    }
  }
  const secs = (performance.now() - started) / 1000;
  console.log(`totals: ${Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ')}; slowest convergence after healing ${slowest} ms`);
  console.log(`${seeds - failed}/${seeds} seeds passed${first === null ? '' : ` (first failing seed ${first})`} in ${secs.toFixed(1)} s, trace hash ${combined.toString(16).padStart(8, '0')}`);
  return failed > 0 ? 1 : 0;
}

process.exit(await main(breakName));
