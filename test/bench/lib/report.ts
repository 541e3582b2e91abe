/** The side-by-side table the metadata benchmark prints. */
import Table from 'cli-table3';
import type { LoadResult } from './load.js';

export interface PhaseRow {
  phase: string;
  inFlight: number;
  ours?: LoadResult;
  reference?: LoadResult;
}

const fmt = (n: number | undefined, digits: number): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));

export function renderTable(rows: readonly PhaseRow[], referenceName: string): string {
  const table = new Table({
    head: ['workload', 'in flight', `${referenceName} ops/s`, 'p50 ms', 'p99 ms', 'galleon ops/s', 'p50 ms', 'p99 ms', 'ops/s galleon/' + referenceName],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) {
    const ratio = r.ours !== undefined && r.reference !== undefined && r.reference.opsPerSec > 0 ? r.ours.opsPerSec / r.reference.opsPerSec : undefined;
    table.push([
      r.phase, r.inFlight,
      fmt(r.reference?.opsPerSec, 0), fmt(r.reference?.p50Ms, 2), fmt(r.reference?.p99Ms, 2),
      fmt(r.ours?.opsPerSec, 0), fmt(r.ours?.p50Ms, 2), fmt(r.ours?.p99Ms, 2),
      ratio === undefined ? '-' : `${ratio.toFixed(2)}×`,
    ]);
  }
  return table.toString();
}
