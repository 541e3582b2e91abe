/**
 * What the rollback check costs a backup of an encrypted volume (issue #12; dataplane/client/README.md
 * "Backups"): three real data nodes, one volume of BENCH_BACKUP_MIB (default 64) MiB in 128 KiB
 * blocks written sealed, one cut (the PG's epoch moves, as a snapshot's fence does), then full
 * backups to a directory read at that cut by a client with the check off (today's sealed reads: one
 * request to the primary per block) and on (the body authenticated here, plus the heads of the
 * other in-sync replicas below the cut and their lists of the volume's blocks), interleaved,
 * BENCH_ROUNDS (default 3) rounds. Prints wall time, MiB/s and the client's CPU per MiB for each,
 * and the ratio on / off per round.
 *   npx tsx test/bench/backup-rollback.bench.ts
 */
import { join } from 'node:path';
import pino from 'pino';
import { createBackup, type JobHooks } from '../../dataplane/backup/engine.js';
import { DirObjectStore } from '../../dataplane/backup/object-store.js';
import { SnapshotSource, type SnapshotSourceApi } from '../../dataplane/backup/source.js';
import { BlockClient } from '../../dataplane/client/block-client.js';
import { createClusterKeyFile, dataKeyContext, InternalKeyProvider, newDataKey } from '../../dataplane/client/key-providers.js';
import { VolumeKeyring, type KeyringApi } from '../../dataplane/client/keyring.js';
import { StaticPlacementSource } from '../../dataplane/placement.js';
import type { Snapshot, Volume, VolumeKeyRecord } from '../../proto/metadata-types.js';
import { TestCluster } from '../dataplane/cluster.js';
import { removeDir, tempDir } from '../dataplane/helpers.js';

const blockBytes = 128 * 1024;
const mib = Number(process.env.BENCH_BACKUP_MIB ?? 64);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const blocks = (mib * 1024 * 1024) / blockBytes;
const pgs = 8;
const vol = 'bench-backup-rb';

const volume: Volume = {
  id: vol, name: vol, encrypted: true, sizeBytes: blocks * blockBytes, blockSizeBytes: blockBytes, storageClass: 'encrypted-storage', replicas: 3,
  accessMode: 'ReadWriteOnce', type: 'persistent', writeConcern: 'distributed', pgCount: pgs, state: 'available', labels: {}, createdAtMs: 0, updatedAtMs: 0, version: 1,
};
const hooks: JobHooks = { onProgress: () => undefined, signal: new AbortController().signal, nowMs: () => Date.now(), logger: pino({ level: 'silent' }) };

const cluster = new TestCluster();
const dirs: string[] = [];
const clients: BlockClient[] = [];
try {
  for (const [id, zone] of [['n1', 'z1'], ['n2', 'z2'], ['n3', 'z3']] as const) await cluster.start(id, zone);
  const layout = (epoch: number): ReturnType<TestCluster['placement']> => cluster.placement(vol, Array.from({ length: pgs }, (_, pg) => {
    const replicas = ['n1', 'n2', 'n3'].map((_, i, all) => all[(pg + i) % 3] ?? 'n1');
    return { replicas, primary: replicas[0] ?? 'n1', epoch };
  }));
  const placement = new StaticPlacementSource();
  await cluster.install(layout(1));
  placement.set(layout(1));

  const keyDir = await tempDir('bench-backup-key');
  dirs.push(keyDir);
  const provider = new InternalKeyProvider(join(keyDir, 'cluster.key'));
  await createClusterKeyFile(provider.path);
  const record: VolumeKeyRecord = { volumeId: vol, writers: 0, wrappedAtMs: 0, ...await provider.wrap(dataKeyContext, newDataKey()) };
  const api: KeyringApi = { getVolume: () => Promise.resolve(volume), getVolumeKey: () => Promise.resolve(record), allocateKeyWriter: () => Promise.resolve(++record.writers) };
  const keyring = new VolumeKeyring(api, provider);
  const off = new BlockClient({ placement, keyring, checkFreshness: false });
  const on = new BlockClient({ placement, keyring });
  clients.push(off, on);

  const t0 = performance.now();
  for (let start = 0; start < blocks; start += 64) {
    await off.writeBlocks(vol, Array.from({ length: Math.min(64, blocks - start) }, (_, i) => ({ inode: 0, blockNo: start + i, data: Buffer.alloc(blockBytes, (start + i) % 256) })), 'distributed');
  }
  console.log(`wrote ${mib} MiB (${blocks} blocks of 128 KiB, ${pgs} PGs, 3 replicas) in ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  await cluster.install(layout(2));
  placement.set(layout(2));

  const snap = { id: 'snap-bench', name: 'cut', volumeId: vol, volumeName: vol, cut: 2, sizeBytes: volume.sizeBytes, blockSizeBytes: blockBytes, createdAtMs: 0 } as Snapshot;
  const sourceApi: SnapshotSourceApi = {
    getVolume: () => Promise.resolve(volume),
    getVolumeKey: () => Promise.resolve(record),
    getSnapshotTree: () => Promise.resolve({ inodes: [], entries: [], cursor: null }),
  };
  let n = 0;
  const backUp = async (client: BlockClient): Promise<{ s: number; cpuMsPerMib: number }> => {
    const dir = await tempDir('bench-backup-target');
    dirs.push(dir);
    const cpu = process.cpuUsage();
    const t = performance.now();
    const r = await createBackup(new DirObjectStore(dir), new SnapshotSource(sourceApi, client, volume, snap), { id: `bk-bench${String(n += 1).padStart(4, '0')}`, target: 't', strategy: 'full' }, hooks);
    const s = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    if (r.blocks !== blocks) throw new Error(`backup holds ${r.blocks} blocks, not ${blocks}`);
    await removeDir(dir);
    return { s, cpuMsPerMib: (used.user + used.system) / 1000 / mib };
  };
  const line = (what: string, x: { s: number; cpuMsPerMib: number }): string => `${what} ${(mib / x.s).toFixed(1).padStart(6)} MiB/s (${x.s.toFixed(2)} s), client CPU ${x.cpuMsPerMib.toFixed(1)} ms/MiB`;
  for (let round = 1; round <= rounds; round++) {
    const a = await backUp(off);
    const b = await backUp(on);
    console.log(`round ${round}: ${line('check off', a)} | ${line('check on', b)} | on/off throughput ${(a.s / b.s).toFixed(2)}×, CPU ${(b.cpuMsPerMib / a.cpuMsPerMib).toFixed(2)}×`);
  }
} finally {
  for (const c of clients) await c.close();
  await cluster.stopAll();
  for (const d of dirs) await removeDir(d);
}
