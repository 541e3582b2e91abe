/**
 * Snapshot under load, against real processes: writers stamp sequence numbers into blocks while
 * snapshots are taken, and every snapshot must be a consistent cut. Each writer writes its own
 * blocks one write after the other (seq n+1 starts once seq n is acknowledged), so the writes of
 * one writer are totally ordered and a consistent cut holds exactly a prefix of them: some k such
 * that every block of the writer shows its newest write with seq <= k. Across writers: every write
 * acknowledged before the snapshot began is in it, and none that began after it returned.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { readBlockAt, takeSnapshot, viewOf } from '../../../dataplane/client/snapshot-reads.js';
import type { Snapshot } from '../../../proto/metadata-types.js';
import { useMetaAndData } from '../server/meta-and-data.js';

const writers = 3;
const blocksPerWriter = 6;
const snapshots = 8;
const blockBytes = 4096;

interface WriteLog { seq: number; block: number; startedAt: number; ackedAt: number; epoch: number; pg: number }

describe('snapshot under load: every snapshot is a consistent cut (real data nodes)', function () {
  this.timeout(300_000);
  const env = useMetaAndData({ d1: 'z1', d2: 'z2' }, { heartbeatMs: 200, leaseTtlMs: 1500, downAfterMs: 8000 });

  it(`${writers} writers stamping sequence numbers, ${snapshots} snapshots taken meanwhile`, async () => {
    const vol = await env.api.createVolume({ name: 'load', size: writers * blocksPerWriter * blockBytes, replicas: 2, storageClass: 'fast-local-ssd' });
    const logs: WriteLog[][] = Array.from({ length: writers }, () => []);
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let seq = 1; !stop; seq++) {
        const block = w * blocksPerWriter + (seq % blocksPerWriter);
        const startedAt = performance.now();
        const ack = await env.client.writeBlock(vol.id, 1, block, Buffer.alloc(blockBytes, `${w}:${seq}|`), 'replicated');
        logs[w]?.push({ seq, block, startedAt, ackedAt: performance.now(), epoch: ack.epoch, pg: ack.pg });
      }
    };
    const running = Array.from({ length: writers }, (_, w) => writer(w));
    const taken: { snap: Snapshot; startedAt: number; returnedAt: number }[] = [];
    try {
      for (let i = 0; i < snapshots; i++) {
        await new Promise((r) => setTimeout(r, 100)); // spacing between snapshots, not a wait for a condition
        const startedAt = performance.now();
        const snap = await takeSnapshot(env.api, vol.id, `load-${i}`);
        taken.push({ snap, startedAt, returnedAt: performance.now() });
      }
    } finally {
      stop = true;
      await Promise.all(running);
    }
    const volume = await env.api.getVolume(vol.id);
    for (const { snap, startedAt, returnedAt } of taken) {
      const view = await viewOf(volume, snap, (id) => env.api.getVolume(id));
      for (let w = 0; w < writers; w++) {
        const log = logs[w] ?? [];
        const seen = new Map<number, number>();
        for (let b = 0; b < blocksPerWriter; b++) {
          const block = w * blocksPerWriter + b;
          const r = await readBlockAt(env.client, view, 1, block);
          const m = r === null ? null : /^(\d+):(\d+)\|/.exec(r.data.toString('latin1'));
          if (m !== null) assert.equal(Number(m[1]), w, `block ${block} holds writer ${w}'s data`);
          seen.set(block, m === null ? 0 : Number(m[2]));
        }
        const k = Math.max(...seen.values());
        for (const [block, seq] of seen) {
          const newest = log.filter((x) => x.block === block && x.seq <= k).at(-1)?.seq ?? 0;
          const at = (n: number): string => { const x = log.find((e) => e.seq === n); return x === undefined ? `${n}` : `${n}@e${x.epoch}/pg${x.pg}`; };
          assert.equal(seq, newest, `${snap.name} (cut ${snap.cut}): writer ${w} block ${block} shows seq ${at(seq)}, the prefix up to ${at(k)} says ${at(newest)}`);
        }
        const ackedBefore = log.filter((x) => x.ackedAt < startedAt).at(-1)?.seq ?? 0;
        assert.ok(k >= ackedBefore, `${snap.name}: writer ${w}'s seq ${ackedBefore} was acknowledged before the snapshot began but is not in it (cut at ${k})`);
        const cutWrite = log.find((x) => x.seq === k);
        assert.ok(k === 0 || (cutWrite !== undefined && cutWrite.startedAt < returnedAt), `${snap.name}: writer ${w}'s seq ${k} began after the snapshot returned`);
      }
    }
    const total = logs.reduce((n, l) => n + l.length, 0);
    assert.ok(total > snapshots * writers, `writers made progress while snapshots were taken (${total} writes)`);
  });
});
