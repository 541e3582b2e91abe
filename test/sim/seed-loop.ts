/**
 * The seed loop both simulators' command lines share (`npm run sim`, `npm run sim:dataplane`):
 * runs each seed, prints its log with --verbose, one line per failing seed with its replay
 * command, and a summary with totals, the slowest figure and a hash over every trace. Returns
 * the exit code (1 when a seed failed).
 */
export interface SeedOutcome {
  ok: boolean;
  failure: string | null;
  traceHash: string;
  replay: string;
  log: string[];
  /** Counters summed over seeds; `events` and the slowest key are reported on their own. */
  stats: Record<string, number> & { events: number };
}

export interface SeedLoop {
  from: number;
  seeds: number;
  verbose: boolean;
  /** The stat whose maximum is reported, and how the summary names it. */
  slowest: { key: string; label: string };
  run: (seed: number) => { outcome: SeedOutcome; label: string };
}

export function runSeedLoop(o: SeedLoop): number {
  const started = performance.now();
  let failed = 0;
  let events = 0;
  let combined = 0x811c9dc5;
  let slowest = 0;
  const totals: Record<string, number> = {};
  for (let seed = o.from; seed < o.from + o.seeds; seed++) {
    const { outcome: r, label } = o.run(seed);
    events += r.stats.events;
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
    slowest = Math.max(slowest, r.stats[o.slowest.key] ?? 0);
    combined = Math.imul(combined ^ parseInt(r.traceHash, 16), 16777619) >>> 0;
    if (o.verbose) for (const line of r.log) console.log(line);
    if (o.seeds === 1 || o.verbose) console.log(`${label}: ${r.ok ? 'ok' : 'FAILED'} trace ${r.traceHash} ${JSON.stringify(r.stats)}`);
    if (!r.ok) {
      failed++;
      console.log(`FAIL ${label}: ${r.failure}\n  replay: ${r.replay}`);
    }
  }
  const secs = (performance.now() - started) / 1000;
  delete totals.events;
  delete totals[o.slowest.key];
  console.log(`totals: ${Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ')}; ${o.slowest.label} ${slowest} ms`);
  console.log(`${o.seeds - failed}/${o.seeds} seeds passed, ${events} events in ${secs.toFixed(1)} s (${Math.round(events / secs)} events/s), trace hash ${combined.toString(16).padStart(8, '0')}`);
  return failed > 0 ? 1 : 0;
}
