import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMountedCluster, waitMounted } from '../../vfs/cluster-mounts.js';

async function main(): Promise<void> {
  const c = await startMountedCluster('galleon-small-');
  try {
    await c.cli(1, ['volume', 'create', '--name', 'bench', '--size', '4G', '--access-mode', 'ReadWriteMany']);
    await waitMounted(c.path(1, 'bench'));
    const dir = c.path(1, 'bench', 'd');
    await mkdir(dir);
    const body = randomBytes(4096);
    const n = Number(process.env.N ?? '1500');
    const workers = Number(process.env.W ?? '4');
    let next = 0;
    const s = performance.now();
    await Promise.all(Array.from({ length: workers }, async () => {
      for (let i = next++; i < n; i = next++) await writeFile(join(dir, `f${i}`), body);
    }));
    process.stdout.write(`${(n / ((performance.now() - s) / 1000)).toFixed(0)} files/s on ${workers} workers\n`);
  } finally {
    await c.teardown();
  }
}
main().catch((e: unknown) => { console.error(e); process.exitCode = 1; });
