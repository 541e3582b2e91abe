/**
 * The namespace through three member processes and MetadataClient (`BENCH_CLUSTER=1 npm run
 * bench:namespace`): create and stat rates at 64 in flight on an empty volume and again after
 * BENCH_CLUSTER_INODES more creates, with each member's RSS from /proc. One round trip per
 * operation, as the FUSE layer will make them.
 */
import { readFileSync } from 'node:fs';
import { MetadataClient } from '../../metadata/service/client.js';
import { ProcessCluster } from '../metadata/service/harness.js';

const inFlight = 64;
const caller = { uid: 0, gid: 0 };

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
}

async function creates(client: MetadataClient, count: number, dir: number, tag: string): Promise<number[]> {
  const inos: number[] = [];
  for (let done = 0; done < count;) {
    const n = Math.min(count - done, 65_536);
    const range = await client.fsAllocateInodes('nsb', n);
    let next = range.start;
    for (let i = 0; i < n; i += inFlight) {
      const batch = Array.from({ length: Math.min(inFlight, n - i) }, () => next++);
      await Promise.all(batch.map((ino) => client.fsCreate('nsb', caller, dir, `${tag}-${ino}`, ino, 0o644)));
      inos.push(...batch);
    }
    done += n;
  }
  return inos;
}

async function rate(label: string, count: number, fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  const perS = (count / (performance.now() - start)) * 1000;
  console.log(`[cluster] ${label}: ${count} in ${((count / perS) * 1000).toFixed(0)} ms = ${Math.round(perS)}/s`);
  return perS;
}

export async function clusterBench(extraInodes: number, ops: number): Promise<void> {
  const cluster = new ProcessCluster(['--tick-ms', '100', '--election-ticks', '10']);
  await cluster.init();
  try {
    await cluster.bootstrap(['n1', 'n2', 'n3']);
    const client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 60_000 });
    for (let k = 1; k <= 3; k++) await client.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9500 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
    await client.createVolume({ name: 'nsb', size: '1T' });
    const phase = async (name: string): Promise<[number, number]> => {
      const made: number[] = [];
      const c = await rate(`[${name}] create, ${inFlight} in flight`, ops, async () => { made.push(...await creates(client, ops, 1, `m${name}`)); });
      let x = 7;
      const s = await rate(`[${name}] stat, ${inFlight} in flight`, ops, async () => {
        for (let i = 0; i < ops; i += inFlight) {
          await Promise.all(Array.from({ length: inFlight }, () => { x = (x * 1103515245 + 12345) % 2 ** 31; return client.fsGetattr('nsb', made[x % made.length]!); }));
        }
      });
      console.log(`[cluster] [${name}] member RSS MiB: ${[...cluster.procs.values()].map((p) => `${p.id} ${rssMiB(p.child.pid)}`).join(', ')}`);
      return [c, s];
    };
    const empty = await phase('empty');
    const start = performance.now();
    await creates(client, extraInodes, 1, 'fill');
    console.log(`[cluster] filled ${extraInodes} more inodes in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    const full = await phase(`+${extraInodes}`);
    console.log(`[cluster] create at +${extraInodes} / empty = ${(full[0] / empty[0]).toFixed(2)}; stat = ${(full[1] / empty[1]).toFixed(2)}`);
    client.close();
  } finally {
    await cluster.destroy();
  }
}
