/**
 * What one create costs at size, in CPU: one state machine in this process, rounds of 10,000
 * creates (batches of 256 records, directories of 1,000) on an empty volume and after FILL
 * (default 300,000) inodes, each round's rate and this process's CPU per create (all threads:
 * LevelDB's compaction included; far steadier than rates on a shared machine). CACHE (namespace
 * cache entries) and WBUF (LevelDB memtable bytes) override the state machine's defaults, for
 * A/B runs side by side: `WBUF=4194304 npx tsx test/bench/namespace-create-cost.ts` against the
 * default (figures in metadata/state/machine.ts, defaultWriteBufferBytes).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateMachine } from '../../metadata/state/index.js';
import type { AppliedRecord, StateMachine } from '../../metadata/state/contract.js';
import type { FsInodeRange } from '../../proto/metadata-types.js';

const fillN = Number(process.env.FILL ?? 300000);
const caller = { uid: 0, gid: 0 };
let index = 0;
const rec = (method: string, args: unknown[]): AppliedRecord => { index++; return { index, kind: 'command', command: { clientId: `c${Math.floor(index / 1e6)}`, seq: (index % 1e6) + 1, stampMs: 1_700_000_000_000, method: method as never, args } }; };
async function ap(sm: StateMachine, rs: AppliedRecord[]) { for (let i = 0; i < rs.length; i += 256) { for (const r of await sm.apply(rs.slice(i, i + 256))) if (!r.ok) throw new Error(r.error.message); } }
let next = 0, end = 0;
async function ino(sm: StateMachine) { if (next === end) { const [r] = await sm.apply([rec('fsAllocateInodes', ['ns', 65536])]); const v = (r as { value: FsInodeRange }).value; next = v.start; end = v.end; } return next++; }
async function creates(sm: StateMachine, n: number, tag: string) {
  const pool: number[] = [];
  for (let i = 0; i < n + Math.ceil(n / 1000) + 1; i++) pool.push(await ino(sm));
  let k = 0;
  const take = (_: StateMachine): Promise<number> => Promise.resolve(pool[k++]!);
  let pend: AppliedRecord[] = []; let dir = 0;
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) { dir = await take(sm); pend.push(rec('fsMkdir', ['ns', caller, 1, `${tag}-${i}`, dir, 0o755])); }
    pend.push(rec('fsCreate', ['ns', caller, dir, `f${i}`, await take(sm), 0o644]));
    if (pend.length >= 4096) { await ap(sm, pend); pend = []; }
  }
  await ap(sm, pend);
}
async function round(sm: StateMachine, label: string) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await creates(sm, 10000, `${label}-${index}`);
  const c = process.cpuUsage(c0);
  console.log(`${label}: ${Math.round(10000 / ((performance.now() - t0) / 1000))}/s CPU ${Math.round((c.user + c.system) / 10000)} µs/op`);
}
const dir = await mkdtemp(join(tmpdir(), 'sscale-exp-'));
try {
  const sm = await openStateMachine(dir, { ...(process.env.CACHE === undefined ? {} : { nsCacheMaxEntries: Number(process.env.CACHE) }), ...(process.env.WBUF === undefined ? {} : { writeBufferBytes: Number(process.env.WBUF) }) });
  await ap(sm, [1, 2, 3].map((i) => rec('registerDataNode', [{ id: `n${i}`, address: `127.0.0.1:${9000 + i}`, zone: `z${i}`, capacityBytes: 2 ** 40 }])));
  await ap(sm, [rec('createVolume', [{ name: 'ns', size: '1T' }])]);
  for (let r = 0; r < 3; r++) await round(sm, 'empty');
  await creates(sm, fillN, 'fill');
  for (let r = 0; r < 6; r++) await round(sm, `at ${fillN}`);
  await sm.close();
} finally { await rm(dir, { recursive: true, force: true }); }
