/**
 * Where one write's time goes: three real members at debug level, the bench's label writes at
 * a few concurrencies, then the leader's per-write stage lines (see `traceWrite` in the driver)
 * aggregated next to what the client measured. The gap between the client's latency and the
 * leader's total is gRPC + JSON + client overhead.
 *
 *   npx tsx test/bench/write-trace.ts [--seconds 3] [--in-flight 1,16,64]
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectClient } from '../../chaos/cluster/client.js';
import { MetadataCluster } from '../../chaos/cluster/metadata-cluster.js';
import { installEmergencyCleanup } from '../../chaos/lib/child.js';
import { percentile, runLoad } from './lib/load.js';

const stages = ['queuedMs', 'persistMs', 'commitMs', 'applyMs', 'totalMs'] as const;
type StageLine = Record<(typeof stages)[number], number>;

function traceLines(logPath: string): StageLine[] {
  const out: StageLine[] = [];
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    if (!line.includes('"trace":"write"')) continue;
    out.push(JSON.parse(line) as StageLine);
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, 'in-flight': { type: 'string', default: '1,16,64' } }, strict: true });
  const seconds = Number(values.seconds);
  const levels = values['in-flight'].split(',').map(Number);
  const root = await mkdtemp(join(tmpdir(), 'galleon-write-trace-'));
  installEmergencyCleanup(() => rmSync(root, { recursive: true, force: true }));
  const cluster = await MetadataCluster.start({ root, logLevel: 'debug' });
  try {
    const c = await connectClient(cluster.addresses);
    try {
      for (let i = 0; i < 3; i++) await c.registerDataNode({ id: `t-dn${i}`, address: `127.0.0.1:${21000 + i}`, zone: `zone-${i}`, capacityBytes: 1 << 40 });
      for (let i = 0; i < 64; i++) await c.createVolume({ name: `t-v${i}`, size: '1M' });
      const label = 'bench-label-'.padEnd(20, '0');
      const value = 'v'.repeat(255);
      console.log('in-flight | client ops/s | client p50 | leader p50: queued / persist / commit / apply / total (ms)');
      for (const inFlight of levels) {
        const leaderId = (await c.clusterStatus()).leaderId;
        const leader = cluster.members.find((m) => m.id === leaderId);
        if (leader === undefined) throw new Error('no leader');
        const before = traceLines(leader.logPath).length;
        const r = await runLoad({ inFlight, durationMs: seconds * 1000, request: async (n) => void (await c.updateVolumeLabels(`t-v${n % 64}`, { [label]: value })) });
        const lines = traceLines(leader.logPath).slice(before);
        const p50 = (k: (typeof stages)[number]): string => percentile(lines.map((l) => l[k]).sort((a, b) => a - b), 0.5).toFixed(2);
        console.log(`${inFlight} | ${r.opsPerSec.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${stages.map(p50).join(' / ')} (${lines.length} traced)`);
      }
    } finally {
      await c.close();
    }
  } finally {
    await cluster.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
