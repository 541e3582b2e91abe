/**
 * The file tree at a snapshot (issue #11), on one state machine (LevelDB, the apply path of one
 * member): what a snapshot costs as the tree grows, what the first change of each record after a
 * snapshot costs (it keeps a version), and the rates of the paced clone copy, restore and version
 * collection. Usage: `npx tsx test/bench/snapshot-tree.bench.ts [files]` (default 4,000).
 * The machine is shared: read CPU-bound rates as ±2x.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppliedRecord, StateMachine } from '../../metadata/state/contract.js';
import { openStateMachine } from '../../metadata/state/index.js';
import { treeRecordsPerStep } from '../../metadata/state/logic/ns-tree-work.js';

const files = Number(process.argv[2] ?? 4_000);
const batch = 256;
const root = { uid: 0, gid: 0 };

class Feed {
  index: number;
  seq = 0;
  constructor(readonly sm: StateMachine) { this.index = sm.appliedIndex(); }
  rec(method: string, args: unknown[]): AppliedRecord {
    return { index: ++this.index, kind: 'command', command: { clientId: 'bench', seq: ++this.seq, stampMs: 1_700_000_000_000 + this.seq, method: method as never, args } };
  }
  async all(cmds: [string, unknown[]][]): Promise<unknown[]> {
    const out: unknown[] = [];
    for (let i = 0; i < cmds.length; i += batch) {
      const results = await this.sm.apply(cmds.slice(i, i + batch).map(([m, a]) => this.rec(m, a)));
      for (const r of results) {
        if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
        out.push(r.value);
      }
    }
    return out;
  }
  async one<T>(method: string, ...args: unknown[]): Promise<T> { return (await this.all([[method, args]]))[0] as T; }
}

async function timed(what: string, ops: number, fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await fn();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const cpuMs = (process.cpuUsage(cpu).user + process.cpuUsage(cpu).system) / 1e3;
  console.log(`${what.padEnd(58)} ${ops.toString().padStart(6)} ops  ${ms.toFixed(0).padStart(6)} ms  ${((cpuMs * 1e3) / ops).toFixed(1).padStart(7)} µs CPU/op`);
  return ms;
}

async function drain(f: Feed): Promise<number> {
  let steps = 0;
  while ((await f.sm.query('fsPendingPurges', [])) as number > 0) {
    await f.one('fsPurgeDeleted');
    steps += 1;
  }
  return steps;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'galleon-snaptree-bench-'));
  const sm = await openStateMachine(join(dir, 'state'));
  try {
    const f = new Feed(sm);
    for (const id of ['n1', 'n2', 'n3']) await f.one('registerDataNode', { id, address: `127.0.0.1:${7000 + id.length}`, zone: 'z', capacityBytes: 2 ** 40 });
    await f.one('createVolume', { name: 'v', size: '1G' });
    const { start } = await f.one<{ start: number }>('fsAllocateInodes', 'v', files + 100);
    const dirs = 16;
    await f.all(Array.from({ length: dirs }, (_, d) => ['fsMkdir', ['v', root, 1, `d${d}`, start + d, 0o755]]));
    const creates = (from: number, n: number, tag: string): [string, unknown[]][] => Array.from({ length: n }, (_, i) => ['fsCreate', ['v', root, start + (i % dirs), `${tag}${i}`, from + i, 0o644]]);
    const half = Math.floor(files / 2);
    await timed('create, no snapshot', half, () => f.all(creates(start + dirs, half, 'a')));
    const snapMs = await timed(`createSnapshot with ${half + dirs + 1} inodes`, 1, () => f.one('createSnapshot', 'v', 's1'));
    await timed('create after a snapshot (dirs keep a version once)', files - half, () => f.all(creates(start + dirs + half, files - half, 'b')));
    const chmods = (mode: number, from: number, n: number): [string, unknown[]][] => Array.from({ length: n }, (_, i) => ['fsSetattr', ['v', root, from + i, { mode }]]);
    await timed('setattr, record already versioned or new since s1', files - half, () => f.all(chmods(0o600, start + dirs + half, files - half)));
    await timed('setattr, first change since s1 (keeps a version)', half, () => f.all(chmods(0o600, start + dirs, half)));
    await timed('setattr, second change (no version)', half, () => f.all(chmods(0o640, start + dirs, half)));
    const snap2Ms = await timed(`createSnapshot with ${files + dirs + 1} inodes`, 1, () => f.one('createSnapshot', 'v', 's2'));
    let steps = 0;
    await f.one('cloneVolume', 's1', 'c1');
    await timed(`clone copy of s1 (${half + dirs + 1} inodes + entries, ${treeRecordsPerStep}/step)`, 2 * (half + dirs) + 1, async () => { steps = await drain(f); });
    console.log(`  clone copy took ${steps} paced steps`);
    await timed('restore v to s1 (in place)', files + dirs, () => f.one('restoreVolume', 'v', 's1').then(() => drain(f)));
    await f.one('deleteVolume', 'c1');
    await f.one('deleteSnapshot', 's1');
    await f.one('deleteSnapshot', 's2');
    await timed('collect the versions of both deleted snapshots', files, () => drain(f));
    console.log(`snapshot command: ${snapMs.toFixed(1)} ms at ${half + dirs + 1} inodes, ${snap2Ms.toFixed(1)} ms at ${files + dirs + 1} (one command each, no per-file key)`);
  } finally {
    await sm.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
