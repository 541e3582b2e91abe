/**
 * Write throughput of a three-process metadata cluster on loopback: small writes (setting one
 * volume label) at 1, 16, 64 and 256 in flight from one client. Prints ops/s and latency.
 *
 *   npm run bench:meta            (BENCH_SECONDS=3 by default per level)
 */
import { MetadataClient } from '../../metadata/service/client.js';
import { ProcessCluster } from '../metadata/service/harness.js';
import { cpuSeconds } from './lib/cpu.js';

const secondsPerLevel = Number(process.env.BENCH_SECONDS ?? 3);
const levels = (process.env.BENCH_LEVELS ?? '1,16,64,256').split(',').map(Number);
const transport = process.env.BENCH_TRANSPORT === 'unary' ? 'unary' : 'stream';


const cluster = new ProcessCluster(['--tick-ms', '100', '--election-ticks', '10']);
await cluster.init();
try {
  await cluster.bootstrap(['n1', 'n2', 'n3']);
  const client = new MetadataClient({ addresses: cluster.addresses(), transport });
  for (let k = 1; k <= 3; k++) await client.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9400 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
  const volumes = 8;
  for (let v = 0; v < volumes; v++) await client.createVolume({ name: `b-${v}`, size: '1M' });
  console.log(`metadata writes (updateVolumeLabels), 3 member processes, client transport ${transport}, ${secondsPerLevel}s per level`);
  console.log('in-flight  ops/s     p50 ms  p99 ms  errors  member CPU ms/op  client CPU ms/op');
  const pids = [...cluster.procs.values()].map((p) => p.child.pid);
  for (const inFlight of levels) {
    const latencies: number[] = [];
    let errors = 0;
    const errorCodes = new Map<string, number>();
    let n = 0;
    const end = Date.now() + secondsPerLevel * 1000;
    const t0 = performance.now();
    const cpu0 = pids.reduce((a: number, p) => a + cpuSeconds(p), 0);
    const self0 = process.cpuUsage();
    await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
      while (Date.now() < end) {
        const i = n++;
        const s = performance.now();
        try {
          await client.updateVolumeLabels(`b-${w % volumes}`, { [`k${i % 40}`]: String(i) });
          latencies.push(performance.now() - s);
        } catch (err) {
          errors++;
          const code = (err as { code?: string }).code ?? String(err);
          errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
        }
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    const memberCpuMs = (pids.reduce((a: number, p) => a + cpuSeconds(p), 0) - cpu0) * 1000 / Math.max(1, latencies.length);
    const selfCpu = process.cpuUsage(self0);
    const clientCpuMs = (selfCpu.user + selfCpu.system) / 1000 / Math.max(1, latencies.length);
    latencies.sort((a, b) => a - b);
    const q = (p: number): string => (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0).toFixed(2);
    console.log(`${String(inFlight).padEnd(10)} ${(latencies.length / elapsed).toFixed(0).padEnd(9)} ${q(0.5).padEnd(7)} ${q(0.99).padEnd(7)} ${String(errors).padEnd(7)} ${memberCpuMs.toFixed(3).padEnd(17)} ${clientCpuMs.toFixed(3)}${errors > 0 ? `  ${JSON.stringify(Object.fromEntries(errorCodes))}` : ''}`);
  }
  client.close();
} finally {
  await cluster.destroy();
}
