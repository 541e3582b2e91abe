/**
 * Snapshot creation is metadata-only and O(1) in the volume's size and block count: one command,
 * whose writes (keys and bytes) are the same for a 1 GiB and a 16 GiB sparse volume (it touches
 * the volume's PGs, a fixed number, never its blocks). Also the snapshot rules of the commands:
 * cut above every PG epoch, every PG moved to it, clones and restores, refusals that change nothing.
 */
import assert from 'node:assert/strict';
import { executeCommand } from '../../../metadata/state/logic/commands.js';
import type { CommandContext } from '../../../metadata/state/logic/commands.js';
import { seedBuiltIns } from '../../../metadata/state/logic/apply.js';
import { Table, Tx } from '../../../metadata/state/logic/tx.js';
import type { StateReader } from '../../../metadata/state/logic/tx.js';
import { GalleonError } from '../../../proto/errors.js';
import type { PlacementGroup, Snapshot, SnapshotTreePage, Volume } from '../../../proto/metadata-types.js';
import { runQuery } from '../../../metadata/state/logic/queries.js';

const empty: StateReader = { get: () => undefined, ids: () => [], range: () => [] };
let ids = 0;
const ctx: CommandContext = { stampMs: 1_700_000_000_000, clientId: 'c', seq: 1, newId: (tag) => `${tag}-${String(++ids).padStart(8, '0')}-0000-0000-000000000000` };
const run = <T>(tx: Tx, method: string, ...args: unknown[]): T => executeCommand(tx, ctx, method, args) as T;

function cluster(): Tx {
  const tx = new Tx(empty);
  seedBuiltIns(tx);
  for (const id of ['n1', 'n2', 'n3']) run(tx, 'registerDataNode', { id, address: `127.0.0.1:${7000 + id.length}`, zone: `z-${id}`, capacityBytes: 2 ** 40 });
  return tx;
}

/** Keys and JSON bytes one command writes. */
function cost(base: Tx, method: string, ...args: unknown[]): { keys: number; bytes: number; value: unknown } {
  const tx = new Tx(base);
  const value = run(tx, method, ...args);
  const writes = tx.writes();
  return { keys: writes.length, bytes: writes.reduce((n, [k, v]) => n + k.length + JSON.stringify(v ?? null).length, 0), value };
}

describe('metadata: snapshot commands (pure, in a Tx)', () => {
  it('a snapshot of a 1 GiB and of a 16 GiB sparse volume costs one command with the same writes', () => {
    const tx = cluster();
    const small = run<Volume>(tx, 'createVolume', { name: 'gib-1', size: '1G' });
    const big = run<Volume>(tx, 'createVolume', { name: 'gib-16', size: '16G' });
    assert.equal(big.sizeBytes / small.sizeBytes, 16);
    const a = cost(tx, 'createSnapshot', small.id, 'snap-a');
    const b = cost(tx, 'createSnapshot', big.id, 'snap-b');
    assert.equal(a.keys, b.keys, 'keys written');
    // The same bytes but for the recorded size and volume name ("1073741824" / "17179869184", "gib-1" / "gib-16").
    assert.equal(b.bytes - a.bytes, 2, 'bytes written');
    assert.ok(a.keys <= 4, `a snapshot writes a handful of keys (snapshot, name, placement, node load): ${a.keys}`);
  });

  it('a snapshot of a volume with 10 files and of one with 1,000 costs the same writes, none per file, yet covers the tree', () => {
    const tx = cluster();
    const filled = (name: string, files: number): Volume => {
      const vol = run<Volume>(tx, 'createVolume', { name, size: '1G' });
      const { start } = run<{ start: number }>(tx, 'fsAllocateInodes', name, 1_000);
      for (let i = 0; i < files; i++) run(tx, 'fsCreate', name, { uid: 0, gid: 0 }, 1, `f${i}`, start + i, 0o644);
      return vol;
    };
    const few = filled('few-a', 10);
    const many = filled('many', 1_000);
    const a = cost(tx, 'createSnapshot', few.id, 'snap-few');
    const b = cost(tx, 'createSnapshot', many.id, 'snap-man');
    assert.equal(a.keys, b.keys, 'keys written');
    assert.ok(a.keys <= 5, `a handful of keys (placement, node load, snapshot, name, namespace record): ${a.keys}`);
    // Only the counters differ ("11" / "1001" inodes, next inode numbers), in the snapshot and the namespace record.
    assert.ok(Math.abs(b.bytes - a.bytes) <= 12, `bytes written: ${a.bytes} vs ${b.bytes}`);
    const perFile = (c: Tx): string[] => c.writes().map(([k]) => k).filter((k) => /^n[idx]\//.test(k));
    const child = new Tx(tx);
    run(child, 'createSnapshot', many.id, 'snap-many');
    assert.deepEqual(perFile(child), [], 'no inode, entry or version written by the snapshot');
    // Yet the tree is in it: change a file after the snapshot, the snapshot still reads the old one.
    run(child, 'fsUnlink', 'many', { uid: 0, gid: 0 }, 1, 'f7');
    const names = new Set<string>();
    for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
      const page = runQuery(child, 'getSnapshotTree', ['snap-many', cursor, 1_024]) as SnapshotTreePage;
      for (const e of page.entries) names.add(e.name);
      cursor = page.cursor;
    }
    assert.equal(names.size, 1_000);
    assert.ok(names.has('f7'));
  });

  it('a volume from before the namespace existed gets its root inside its first snapshot', () => {
    const tx = cluster();
    const vol = run<Volume>(tx, 'createVolume', { name: 'legacy', size: '64M' });
    tx.del(Table.NsVolume, vol.id);
    tx.del(Table.NsInode, `${vol.id}/${'1'.padStart(16, '0')}`);
    run(tx, 'createSnapshot', 'legacy', 'first');
    const page = runQuery(tx, 'getSnapshotTree', ['first', null, 10]) as SnapshotTreePage;
    assert.deepEqual(page.inodes.map((i) => i.attr.ino), [1]);
  });

  it('moves every PG to the cut, above every epoch the volume had; clones and restores record their cuts', () => {
    const tx = cluster();
    const vol = run<Volume>(tx, 'createVolume', { name: 'v', size: '64M' });
    const pgs = tx.get<PlacementGroup[]>(Table.Placement, vol.id) ?? [];
    // One PG moved on by a failover: the cut must still be above it.
    tx.put(Table.Placement, vol.id, pgs.map((p, i) => (i === 3 ? { ...p, epoch: p.epoch + 5 } : p)));
    const s1 = run<Snapshot>(tx, 'createSnapshot', vol.id, 's1');
    assert.equal(s1.cut, Math.max(...pgs.map((p) => p.epoch)) + 6);
    assert.ok((tx.get<PlacementGroup[]>(Table.Placement, vol.id) ?? []).every((p) => p.epoch === s1.cut));
    const clone = run<Volume>(tx, 'cloneVolume', 's1', 'c1');
    assert.deepEqual(clone.parent, { volumeId: vol.id, snapshotId: s1.id, cut: s1.cut });
    const restored = run<Volume>(tx, 'restoreVolume', 'v', 's1');
    assert.deepEqual(restored.restores, [{ atEpoch: s1.cut + 1, cut: s1.cut, snapshotId: s1.id }]);
  });

  it('refusals change nothing: clones keep their snapshot, snapshots keep their volume, names are unique', () => {
    const tx = cluster();
    const vol = run<Volume>(tx, 'createVolume', { name: 'v', size: '64M' });
    // A file in the tree: the clone copies it in paced steps (a tree of only its root is copied at once).
    run(tx, 'fsCreate', 'v', { uid: 0, gid: 0 }, 1, 'f', run<{ start: number }>(tx, 'fsAllocateInodes', 'v', 1).start, 0o644);
    run<Snapshot>(tx, 'createSnapshot', vol.id, 's1');
    assert.equal(run<Volume>(tx, 'cloneVolume', 's1', 'c1').treeState, 'copying');
    const refuse = (code: string, method: string, ...args: unknown[]): void => {
      const child = new Tx(tx);
      assert.throws(() => run(child, method, ...args), (e: unknown) => e instanceof GalleonError && e.code === code && (e.hint ?? '') !== '');
    };
    refuse('SNAPSHOT_IN_USE', 'deleteSnapshot', 's1');
    refuse('SNAPSHOT_IN_USE', 'deleteVolume', 'v');
    refuse('SNAPSHOT_EXISTS', 'createSnapshot', 'v', 's1');
    refuse('SNAPSHOT_NOT_FOUND', 'cloneVolume', 'nope', 'c2');
    refuse('INVALID_ARGUMENT', 'createSnapshot', 'v', 'Bad Name');
    // A clone whose tree is still being copied: no snapshot, restore or mount of it until done.
    refuse('FAILED_PRECONDITION', 'createSnapshot', 'c1', 'of-a-copying-clone');
    refuse('FAILED_PRECONDITION', 'acquireLease', 'mount', 'c1', 'node-a', 10_000, 'ro');
    run<Volume>(tx, 'deleteVolume', 'c1');
    run<Snapshot>(tx, 'deleteSnapshot', 's1');
    run<Volume>(tx, 'deleteVolume', 'v');
  });
});
