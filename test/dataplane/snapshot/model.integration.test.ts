/**
 * Snapshots, clones, snapshot deletes and in-place restores against real processes (one metadata
 * member, two data nodes, 2 replicas), checked against an in-memory model after every step of a
 * seeded random sequence: every block of every live volume and of every surviving snapshot reads
 * as the model says (through dataplane/client/snapshot-reads.ts, the API backups use, and for live
 * volumes through the client's plain readBlock too), and after
 * each prune every data node keeps exactly the versions some retained cut still sees.
 * Seed: GALLEON_SNAPSHOT_SEED (default 1); steps: GALLEON_SNAPSHOT_STEPS (default 60).
 * Once, before step GALLEON_SNAPSHOT_REBUILD_AT (default steps / 2; -1: never), a node is lost
 * and rebuilt: one data node is killed, marked down, its disk wiped, and it comes back empty and
 * is rebuilt by the other (catch-up or full resync, with the kept versions); then the other node
 * is killed, so every PG fails over to the rebuilt one, and the whole model is checked through
 * it; then the killed node returns (hands back, drops, is rebuilt too) — issue #11.
 */
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { request } from 'undici';
import { isGalleonError } from '../../../proto/errors.js';
import type { Snapshot, Volume } from '../../../proto/metadata-types.js';
import { retainedCuts, visibleAt } from '../../../dataplane/logic/snapshot-versions.js';
import { listBlocksAt, pruneVolume, readBlockAt, restoreInPlace, takeSnapshot, viewOf } from '../../../dataplane/client/snapshot-reads.js';
import { useMetaAndData } from '../server/meta-and-data.js';
import { waitFor } from '../helpers.js';
import { Random } from '../../../chaos/lib/random.js';

const seed = Number(process.env.GALLEON_SNAPSHOT_SEED ?? 1);
const steps = Number(process.env.GALLEON_SNAPSHOT_STEPS ?? 60);
const rebuildAt = Number(process.env.GALLEON_SNAPSHOT_REBUILD_AT ?? Math.floor(steps / 2));
const blocks = 12;
const blockBytes = 4096;

/** The seeded PRNG of the chaos runs (mulberry32), as a function. */
function prng(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

type Image = Map<number, Buffer>;
interface Entry { epoch: number; seq: number }
interface ModelVolume { id: string; name: string; live: Image; history: Map<number, Entry[]>; restores: number[] }
interface ModelSnapshot { snap: Snapshot; image: Image }

describe('snapshots, clones, restores: seeded model against real data nodes', function () {
  this.timeout(600_000);
  const env = useMetaAndData({ d1: 'z1', d2: 'z2' }, { heartbeatMs: 200, leaseTtlMs: 1500, downAfterMs: 8000 });

  it(`seed ${seed}, ${steps} steps: every read at every volume and snapshot matches; pruning keeps exactly what cuts see`, async () => {
    const rnd = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const vols = new Map<string, ModelVolume>();
    const snaps = new Map<string, ModelSnapshot>();
    const getVolume = (id: string): Promise<Volume> => env.api.getVolume(id);
    let counter = 0;

    const newVolume = (v: Volume, image: Image): void => { vols.set(v.id, { id: v.id, name: v.name, live: new Map(image), history: new Map(), restores: [] }); };
    newVolume(await env.api.createVolume({ name: 'model-a', size: blocks * blockBytes, replicas: 2, storageClass: 'fast-local-ssd' }), new Map());

    const write = async (mv: ModelVolume): Promise<string> => {
      const b = Math.floor(rnd() * blocks);
      const entries = mv.history.get(b) ?? [];
      mv.history.set(b, entries);
      if (rnd() < 0.15) {
        const ack = await env.client.deleteBlock(mv.id, 1, b, 'replicated');
        entries.push({ epoch: ack.epoch, seq: ack.seq });
        mv.live.delete(b);
        return `delete ${mv.name}/${b}`;
      }
      const data = Buffer.alloc(blockBytes, `${seed}:${++counter}:${mv.name}:${b}|`);
      const ack = await env.client.writeBlock(mv.id, 1, b, data, 'replicated');
      entries.push({ epoch: ack.epoch, seq: ack.seq });
      mv.live.set(b, data);
      return `write ${mv.name}/${b}`;
    };

    const check = async (what: string): Promise<void> => {
      for (const mv of vols.values()) {
        const view = await viewOf(await env.api.getVolume(mv.id), undefined, getVolume);
        for (let b = 0; b < blocks; b++) {
          const got = await readBlockAt(env.client, view, 1, b);
          assert.deepEqual(got?.data ?? null, mv.live.get(b) ?? null, `${what}: live ${mv.name} block ${b}`);
          // The plain block read (what FUSE mounts and read-block use) resolves clones and restores too.
          const plain = await env.client.readBlock(mv.id, 1, b).catch((e: unknown) => { if (isGalleonError(e, 'BLOCK_NOT_FOUND')) return null; throw e; });
          assert.deepEqual(plain?.data ?? null, mv.live.get(b) ?? null, `${what}: readBlock of ${mv.name} block ${b}`);
        }
      }
      for (const { snap, image } of snaps.values()) {
        const view = await viewOf(await env.api.getVolume(snap.volumeId), snap, getVolume);
        for (let b = 0; b < blocks; b++) {
          const got = await readBlockAt(env.client, view, 1, b);
          assert.deepEqual(got?.data ?? null, image.get(b) ?? null, `${what}: snapshot ${snap.name} block ${b}`);
        }
        const listed = (await listBlocksAt(env.client, view)).map((a) => a.blockNo);
        assert.deepEqual(listed, [...image.keys()].sort((x, y) => x - y), `${what}: blocks listed at snapshot ${snap.name}`);
      }
    };

    /** Prunes the volume on every node, then compares each node's kept versions with the model. */
    const pruneAndCheck = async (mv: ModelVolume, what: string): Promise<void> => {
      const reports = await pruneVolume(env.api, mv.id, false, 30_000);
      assert.equal(reports.length, 2);
      const cuts = retainedCuts([...snaps.values()].filter((s) => s.snap.volumeId === mv.id).map((s) => s.snap.cut), mv.restores.map((cut) => ({ cut })));
      const expected: string[] = [];
      for (const [b, entries] of mv.history) {
        const newest = entries[entries.length - 1];
        for (const e of entries) if (e !== newest && cuts.some((c) => visibleAt(entries, c) === e)) expected.push(`${b}@${e.epoch}.${e.seq}`);
      }
      for (const node of env.data.nodes.values()) {
        const res = await request(`http://${node.address}/v1/volume-versions/${mv.id}`);
        const { versions } = (await res.body.json()) as { versions: [number, number, number, number][] };
        const kept = versions.map(([, b, e, s]) => `${b}@${e}.${s}`).sort();
        assert.deepEqual(kept, expected.sort(), `${what}: versions kept on ${node.id} for ${mv.name}`);
      }
    };

    /** Every PG of every model volume: `ok` holds for its placement group. */
    const everyPg = (what: string, ok: (g: { primary: string; replicas: string[]; inSync: string[] }) => boolean): Promise<true> =>
      waitFor(what, async () => {
        for (const mv of vols.values()) if (!(await env.api.getPlacement(mv.id)).every(ok)) return undefined;
        return true;
      }, 90_000, 200);
    const lose = async (id: string, wipe: boolean): Promise<void> => {
      await env.data.kill(id);
      await everyPg(`${id} marked down and out of every PG`, (g) => !g.replicas.includes(id));
      const dir = env.data.node(id).dir;
      if (wipe) { await rm(dir, { recursive: true, force: true }); await mkdir(dir, { recursive: true }); }
    };
    const back = async (id: string): Promise<void> => {
      await env.startNode(id);
      await everyPg(`${id} back in every PG and in sync`, (g) => g.replicas.length === 2 && g.inSync.length === 2);
    };
    /** A node lost with its disk and rebuilt; then a failover to it; then the other node back. */
    const rebuildAndFailOver = async (step: number): Promise<void> => {
      const [wiped, other] = rnd() < 0.5 ? ['d1', 'd2'] : ['d2', 'd1'];
      await lose(wiped, true);
      await back(wiped);
      await lose(other, false);
      await everyPg(`every PG served by the rebuilt ${wiped}`, (g) => g.primary === wiped);
      await check(`step ${step}: after ${wiped} was wiped and rebuilt and ${other} lost`);
      await back(other);
    };

    for (let step = 0; step < steps; step++) {
      if (step === rebuildAt) await rebuildAndFailOver(step);
      const r = rnd();
      const mv = pick([...vols.values()]);
      let what: string;
      if (r < 0.55) {
        what = await write(mv);
      } else if (r < 0.7) {
        const snap = await takeSnapshot(env.api, mv.id, `s${step}`);
        snaps.set(snap.id, { snap, image: new Map(mv.live) });
        what = `snapshot ${mv.name} -> ${snap.name} (cut ${snap.cut})`;
      } else if (r < 0.78 && snaps.size > 0 && vols.size < 4) {
        const { snap, image } = pick([...snaps.values()]);
        const clone = await env.api.cloneVolume(snap.id, `c${step}`);
        newVolume(clone, image);
        what = `clone ${snap.name} -> ${clone.name}`;
      } else if (r < 0.9 && snaps.size > 0) {
        const { snap } = pick([...snaps.values()]);
        const owner = vols.get(snap.volumeId);
        assert.ok(owner);
        try {
          await env.api.deleteSnapshot(snap.id);
          snaps.delete(snap.id);
          what = `delete snapshot ${snap.name}`;
        } catch (err) {
          assert.ok(isGalleonError(err, 'SNAPSHOT_IN_USE'), `delete refused for the wrong reason: ${String(err)}`);
          what = `delete snapshot ${snap.name} refused (clones)`;
        }
        await check(`step ${step} (${what}) before prune`);
        await pruneAndCheck(owner, `step ${step} (${what})`);
      } else {
        const own = [...snaps.values()].filter((s) => s.snap.volumeId === mv.id);
        if (own.length === 0) { what = await write(mv); } else {
          const { snap, image } = pick(own);
          const restored = await restoreInPlace(env.api, mv.id, snap.id);
          mv.live = new Map(image);
          mv.restores.push(snap.cut);
          what = `restore ${mv.name} to ${snap.name} (at epoch ${restored.restores?.at(-1)?.atEpoch})`;
        }
      }
      await check(`step ${step} (${what})`);
    }
    for (const mv of vols.values()) await pruneAndCheck(mv, 'final');
    await check('after final prune');
  });
});
