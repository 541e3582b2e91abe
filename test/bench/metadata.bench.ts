/**
 * Metadata service against etcd, same machine, same load generator, same client library
 * (grpc-js): small writes (≈20 B key, 256 B value) at 1/16/64/256 requests in flight, and
 * linearizable reads at 64, for a fixed time each. Prints ops/s, p50, p99 and the ratio.
 *
 *   npm run bench:metadata -- [--seconds 5] [--only etcd|galleon]
 *
 * Installs Debian's etcd-server when missing (as root). Everything it starts is stopped and
 * every directory removed at the end, also on failure.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectClient, type ChaosClient } from '../../chaos/cluster/client.js';
import { MetadataCluster } from '../../chaos/cluster/metadata-cluster.js';
import { installEmergencyCleanup } from '../../chaos/lib/child.js';
import { EtcdClient, EtcdCluster, ensureEtcdInstalled } from './lib/etcd.js';
import { runLoad, type LoadResult } from './lib/load.js';
import { renderTable, type PhaseRow } from './lib/report.js';

const keyBytes = 20;
const valueBytes = 256;
/** The metadata service caps a label value at 255 characters: its writes carry one byte less. */
const labelValueBytes = 255;
/** Distinct keys (etcd) / volumes (galleon) the writes spread over. */
const keyCount = 64;
const writeInFlight = [1, 16, 64, 256] as const;
const readInFlight = 64;
const warmupMs = 1_000;

interface Target {
  write(n: number): Promise<void>;
  read(n: number): Promise<void>;
}

interface Phase {
  name: string;
  inFlight: number;
  kind: 'write' | 'read';
}

const phases: Phase[] = [
  ...writeInFlight.map((inFlight): Phase => ({ name: 'write 256 B', inFlight, kind: 'write' })),
  { name: 'linearizable read', inFlight: readInFlight, kind: 'read' },
];

const log = (line: string): void => console.log(`bench: ${line}`);

const value = Buffer.alloc(valueBytes, 'v');
const valueString = 'v'.repeat(labelValueBytes);
/** A row with more failed requests than this fraction makes the benchmark fail: its figures would lie. */
const maxErrorFraction = 0.01;

async function measure(name: string, target: Target, seconds: number): Promise<LoadResult[]> {
  await runLoad({ inFlight: 16, durationMs: warmupMs, request: (n) => target.write(n) });
  const results: LoadResult[] = [];
  for (const p of phases) {
    const r = await runLoad({ inFlight: p.inFlight, durationMs: seconds * 1000, request: (n) => (p.kind === 'write' ? target.write(n) : target.read(n)) });
    log(`${name} ${p.name} ×${p.inFlight}: ${r.opsPerSec.toFixed(0)} ops/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, ${r.errors} errors${r.firstError === null ? '' : ` (first: ${r.firstError})`}`);
    results.push(r);
    if (r.errors > maxErrorFraction * (r.completed + r.errors)) {
      throw new Error(`${name} ${p.name} ×${p.inFlight}: ${r.errors} of ${r.completed + r.errors} requests failed (first: ${r.firstError ?? '?'})`);
    }
  }
  return results;
}

async function benchEtcd(root: string, seconds: number): Promise<LoadResult[]> {
  const binary = ensureEtcdInstalled(log);
  const cluster = await EtcdCluster.start(binary, join(root, 'etcd'));
  const clients: EtcdClient[] = [];
  try {
    // Talk to the leader, as our client does: a follower would add a forwarding hop.
    const client = new EtcdClient(await cluster.leaderAddress());
    clients.push(client);
    const key = (n: number): Buffer => Buffer.from(`bench/key/${String(n % keyCount).padStart(keyBytes - 10, '0')}`);
    for (let i = 0; i < keyCount; i++) await client.put(key(i), value);
    return await measure('etcd', { write: async (n) => void (await client.put(key(n), value)), read: async (n) => void (await client.get(key(n))) }, seconds);
  } finally {
    for (const c of clients) c.close();
    await cluster.stop();
  }
}

async function benchGalleon(root: string, seconds: number): Promise<LoadResult[]> {
  const cluster = await MetadataCluster.start({ root: join(root, 'galleon') });
  let client: ChaosClient | null = null;
  try {
    client = await connectClient(cluster.addresses);
    const c = client;
    for (let i = 0; i < 3; i++) await c.registerDataNode({ id: `bench-dn${i}`, address: `127.0.0.1:${21000 + i}`, zone: `zone-${i}`, capacityBytes: 1 << 40 });
    const volume = (n: number): string => `bench-v${n % keyCount}`;
    for (let i = 0; i < keyCount; i++) await c.createVolume({ name: volume(i), size: '1M' });
    const label = 'bench-label-'.padEnd(keyBytes, '0');
    return await measure('galleon', {
      write: async (n) => void (await c.updateVolumeLabels(volume(n), { [label]: valueString })),
      read: async (n) => void (await c.getVolume(volume(n))),
    }, seconds);
  } finally {
    if (client !== null) await client.close();
    await cluster.stop();
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, only: { type: 'string' } }, strict: true });
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);
  const root = await mkdtemp(join(tmpdir(), 'galleon-bench-meta-'));
  installEmergencyCleanup(() => rmSync(root, { recursive: true, force: true }));
  try {
    const reference = values.only === 'galleon' ? undefined : await benchEtcd(root, seconds);
    const ours = values.only === 'etcd' ? undefined : await benchGalleon(root, seconds);
    const rows: PhaseRow[] = phases.map((p, i) => {
      const row: PhaseRow = { phase: p.name, inFlight: p.inFlight };
      const o = ours?.[i];
      const r = reference?.[i];
      if (o !== undefined) row.ours = o;
      if (r !== undefined) row.reference = r;
      return row;
    });
    console.log(`\nmetadata service vs etcd: ${seconds} s per row, 3 members each on loopback, grpc-js clients, ${keyCount} keys;`);
    console.log(`etcd Put ${keyBytes} B key + ${valueBytes} B value / galleon updateVolumeLabels ${keyBytes} B label + ${labelValueBytes} B value (${new Date().toISOString()})`);
    console.log(renderTable(rows, 'etcd'));
    return 0;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

process.exit(await main());
