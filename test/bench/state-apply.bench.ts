/**
 * How fast the state machine applies committed records, and how long snapshot/restore take.
 * Run: npm run bench:state  (prints one line per figure).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateMachine } from '../../metadata/state/index.js';
import { applyInBatches, recordMaker } from './lib/apply.js';
import type { Lease } from '../../proto/metadata-types.js';

const volumes = Number(process.env.BENCH_VOLUMES ?? 1000);
const renewals = Number(process.env.BENCH_RENEWALS ?? 20_000);
const batchSize = 64;

const record = recordMaker((n) => ({ clientId: 'bench', seq: n }));

async function timed<T>(label: string, count: number, unit: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const out = await fn();
  const ms = performance.now() - start;
  console.log(`${label}: ${count} ${unit} in ${ms.toFixed(0)} ms = ${Math.round((count / ms) * 1000)} ${unit}/s`);
  return out;
}

const dirs: string[] = [];
try {
  const dir = await mkdtemp(join(tmpdir(), 'galleon-state-bench-'));
  dirs.push(dir);
  const sm = await openStateMachine(dir);
  const nodes = Array.from({ length: 9 }, (_, i) =>
    record('registerDataNode', [{ id: `n${i}`, address: `127.0.0.1:${9000 + i}`, zone: `zone-${i % 3}`, capacityBytes: 2 ** 40 }]));
  await applyInBatches(sm, nodes, batchSize);
  const creates = Array.from({ length: volumes }, (_, i) => record('createVolume', [{ name: `v${i}`, size: '1G' }]));
  await timed(`createVolume (16 PGs x 3 replicas, 9 nodes), batches of ${batchSize}`, volumes, 'volumes', () => applyInBatches(sm, creates, batchSize));
  const acquires = Array.from({ length: volumes }, (_, i) => record('acquireLease', ['mount', `v${i}`, `host-${i}`, 60_000]));
  const leases = await timed(`acquireLease (mount), ${volumes} live leases, batches of ${batchSize}`, volumes, 'leases', () => applyInBatches(sm, acquires, batchSize)) as Lease[];
  const renews = Array.from({ length: renewals }, (_, i) => record('renewLease', [leases[i % leases.length]?.id, 60_000]));
  await timed(`renewLease, batches of ${batchSize}`, renewals, 'renewals', () => applyInBatches(sm, renews, batchSize));
  const single = Array.from({ length: 2000 }, (_, i) => record('renewLease', [leases[i % leases.length]?.id, 60_000]));
  await timed('renewLease, one record per apply()', single.length, 'renewals', () => applyInBatches(sm, single, 1));
  const snap = await timed('snapshot', 1, 'snapshots', () => sm.snapshot());
  console.log(`snapshot size: ${(snap.data.byteLength / 2 ** 20).toFixed(1)} MiB at index ${snap.index}`);
  const dir2 = await mkdtemp(join(tmpdir(), 'galleon-state-bench-'));
  dirs.push(dir2);
  const other = await openStateMachine(dir2);
  await timed('restore', 1, 'restores', () => other.restore(snap.index, snap.data));
  await other.close();
  await sm.close();
  const start = performance.now();
  const reopened = await openStateMachine(dir);
  console.log(`reopen (load into memory): ${(performance.now() - start).toFixed(0)} ms`);
  await reopened.close();
} finally {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
