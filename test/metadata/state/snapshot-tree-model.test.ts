/**
 * Snapshots cover the file tree (issue #11), checked against a model: seeded random namespace
 * operations on one volume interleaved with snapshots, clones, in-place restores, snapshot deletes
 * and the paced background steps (fsPurgeDeleted) they leave. The model is the live tree captured
 * at each snapshot; after every step the tree read at every live snapshot (ns-versions.ts
 * treePage, and the getSnapshotTree query) equals it, a finished clone's tree equals its snapshot's,
 * a finished restore's tree equals its snapshot's, and once collection is done every version key
 * left is read by some snapshot (deleting it would change a snapshot's tree). Pure: one Tx.
 */
import assert from 'node:assert/strict';
import { seedBuiltIns } from '../../../metadata/state/logic/apply.js';
import { executeCommand, type CommandContext } from '../../../metadata/state/logic/commands.js';
import type { NsVolume } from '../../../metadata/state/logic/ns-store.js';
import { startCursor, treePage } from '../../../metadata/state/logic/ns-versions.js';
import { Table, Tx, type StateReader } from '../../../metadata/state/logic/tx.js';
import { isGalleonError } from '../../../proto/errors.js';
import type { Snapshot, SnapshotTreePage, Volume } from '../../../proto/metadata-types.js';
import { runQuery } from '../../../metadata/state/logic/queries.js';

const empty: StateReader = { get: () => undefined, ids: () => [], range: () => [] };
const root = { uid: 0, gid: 0 };

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A tree as `table:<id without the volume>` -> JSON of the record without its generation stamp. */
type Tree = Map<string, string>;

function canonical(table: string, id: string, value: unknown): [string, string] {
  const { sg: _sg, ...rest } = value as Record<string, unknown>;
  return [`${table}:${id.slice(id.indexOf('/') + 1)}`, JSON.stringify(rest)];
}

function liveTree(r: StateReader, volumeId: string): Tree {
  const out: Tree = new Map();
  for (const table of [Table.NsInode, Table.NsEntry]) {
    for (const [id, v] of r.range({ table, prefix: `${volumeId}/`, after: '', limit: 1_000_000 })) out.set(...canonical(table, id, v));
  }
  return out;
}

/** The tree at a cut, walked in pages of 7 (a record read twice keeps its last value). */
function treeAt(r: StateReader, volumeId: string, cut: number): Tree {
  const out: Tree = new Map();
  for (let c: ReturnType<typeof startCursor> | null = startCursor(); c !== null;) {
    const { rows, next } = treePage(r, volumeId, cut, c, 7);
    for (const row of rows) if (row.value !== undefined) out.set(...canonical(row.table, row.id, row.value));
    c = next;
  }
  return out;
}

/** The same through the query the metadata client exposes: names and inode numbers. */
function queryNames(r: StateReader, snap: string): Set<string> {
  const out = new Set<string>();
  for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
    const page = runQuery(r, 'getSnapshotTree', [snap, cursor, 5]) as SnapshotTreePage;
    for (const e of page.entries) out.add(`${e.parent}/${e.name}=${e.ino}`);
    cursor = page.cursor;
  }
  return out;
}

function namesOf(tree: Tree): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of tree) {
    if (!k.startsWith('nd:')) continue;
    const rest = k.slice(3);
    out.add(`${parseInt(rest.slice(0, 16), 16)}/${rest.slice(17)}=${(JSON.parse(v) as { ino: number }).ino}`);
  }
  return out;
}

function assertSameTree(actual: Tree, expected: Tree, what: string): void {
  const diff = [...new Set([...actual.keys(), ...expected.keys()])].filter((k) => actual.get(k) !== expected.get(k));
  assert.deepEqual(diff.map((k) => [k, actual.get(k) ?? null, expected.get(k) ?? null]), [], what);
}

class World {
  readonly tx = new Tx(empty);
  readonly log: string[] = [];
  private ids = 0;
  private stamp = 1_700_000_000_000;
  readonly vol: Volume;
  /** Snapshot name -> the tree captured when it was taken (the model). */
  readonly model = new Map<string, Tree>();
  readonly clones = new Map<string, string>();
  private nextIno: number;

  constructor(readonly rnd: () => number) {
    seedBuiltIns(this.tx);
    for (const id of ['n1', 'n2', 'n3']) this.must('registerDataNode', { id, address: `127.0.0.1:${7000 + id.length}`, zone: 'z', capacityBytes: 2 ** 40 });
    this.vol = this.must<Volume>('createVolume', { name: 'v', size: '1G' });
    this.nextIno = this.must<{ start: number }>('fsAllocateInodes', 'v', 60_000).start;
  }

  run(method: string, ...args: unknown[]): { ok: boolean; value?: unknown } {
    const ctx: CommandContext = { stampMs: (this.stamp += 1000), clientId: 'c', seq: 1, newId: (tag) => `${tag}-${String(++this.ids).padStart(8, '0')}-0000-0000-000000000000` };
    const child = new Tx(this.tx);
    try {
      const value = executeCommand(child, ctx, method, args);
      child.commitTo(this.tx);
      this.log.push(`${method} ${JSON.stringify(args)} ok`);
      return { ok: true, value };
    } catch (err) {
      if (!isGalleonError(err) || err.code === 'INVARIANT_VIOLATION') throw err;
      this.log.push(`${method} ${JSON.stringify(args)} -> ${err.code}`);
      return { ok: false };
    }
  }

  must<T>(method: string, ...args: unknown[]): T {
    const r = this.run(method, ...args);
    assert.ok(r.ok, `${method} failed`);
    return r.value as T;
  }

  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.rnd() * xs.length)]!; }
  ino(): number { return this.nextIno++; }
  ns(volumeId = this.vol.id): NsVolume | undefined { return this.tx.get<NsVolume>(Table.NsVolume, volumeId); }
  snaps(): Snapshot[] { return this.tx.ids(Table.Snapshot).map((id) => this.tx.get<Snapshot>(Table.Snapshot, id)!).filter((s) => s.volumeId === this.vol.id); }

  /** Directories and entries of the live tree, for drawing arguments. */
  dirs(): number[] {
    return [1, ...[...liveTree(this.tx, this.vol.id)].filter(([k, v]) => k.startsWith('nd:') && v.includes('"dir"')).map(([, v]) => (JSON.parse(v) as { ino: number }).ino)];
  }

  entries(): { parent: number; name: string; ino: number; type: string }[] {
    return [...liveTree(this.tx, this.vol.id)].filter(([k]) => k.startsWith('nd:')).map(([k, v]) => {
      const rest = k.slice(3);
      const e = JSON.parse(v) as { ino: number; type: string };
      return { parent: parseInt(rest.slice(0, 16), 16), name: rest.slice(17), ino: e.ino, type: e.type };
    });
  }

  fsOp(): void {
    const names = ['a', 'b', 'c', 'a!', 'dd'];
    const dir = this.pick(this.dirs());
    const es = this.entries();
    const e = es.length > 0 ? this.pick(es) : undefined;
    const k = Math.floor(this.rnd() * 9);
    if (k === 0) this.run('fsCreate', 'v', root, dir, this.pick(names), this.ino(), 0o644);
    else if (k === 1) this.run('fsMkdir', 'v', root, dir, this.pick(names), this.ino(), 0o755);
    else if (k === 2) this.run('fsSymlink', 'v', root, dir, this.pick(names), this.ino(), `/t/${this.pick(names)}`);
    else if (e === undefined) return;
    else if (k === 3) this.run('fsLink', 'v', root, e.ino, dir, this.pick(names));
    else if (k === 4) this.run(e.type === 'dir' ? 'fsRmdir' : 'fsUnlink', 'v', root, e.parent, e.name);
    else if (k === 5) this.run('fsRename', 'v', root, e.parent, e.name, dir, this.pick(names));
    else if (k === 6) this.run('fsSetattr', 'v', root, e.ino, { mode: Math.floor(this.rnd() * 0o777) });
    else if (k === 7) this.run('fsSetxattr', 'v', root, e.ino, `user.${this.pick(names)}`, Buffer.from(this.pick(names)).toString('base64'));
    else this.run('fsRemovexattr', 'v', root, e.ino, `user.${this.pick(names)}`);
  }
}

function checkSnapshots(w: World): void {
  for (const s of w.snaps()) {
    const expected = w.model.get(s.name);
    assert.ok(expected !== undefined, `snapshot ${s.name} has a model`);
    assertSameTree(treeAt(w.tx, w.vol.id, s.cut), expected, `tree at snapshot ${s.name} (cut ${s.cut})`);
    assert.deepEqual(queryNames(w.tx, s.name), namesOf(expected), `getSnapshotTree of ${s.name}`);
  }
}

/** Once nothing is pending: deleting any version key left would change some snapshot's tree. */
function checkNoUnneededVersions(w: World): void {
  const ns = w.ns();
  if (ns?.gc !== undefined || ns?.work !== undefined) return;
  const versions = w.tx.range({ table: Table.NsVersion, prefix: `${w.vol.id}/`, after: '', limit: 1_000_000 });
  const snaps = w.snaps();
  if (snaps.length === 0) assert.equal(versions.length, 0, 'no snapshot left, no version left');
  for (const [vid] of versions) {
    const without = new Tx(w.tx);
    without.del(Table.NsVersion, vid);
    const changed = snaps.some((s) => { const t = treeAt(without, w.vol.id, s.cut); const m = w.model.get(s.name)!; return t.size !== m.size || [...t].some(([k, v]) => m.get(k) !== v); });
    assert.ok(changed, `version ${vid} is read by no snapshot (${snaps.map((s) => s.cut).join(',')}) but was kept`);
  }
}

function background(w: World): void {
  w.run('fsPurgeDeleted');
  for (const [clone, snap] of w.clones) {
    const vol = w.tx.get<Volume>(Table.Volume, clone);
    if (vol === undefined || vol.treeState !== undefined) continue;
    assertSameTree(liveTree(w.tx, clone), w.model.get(snap)!, `clone ${clone} of ${snap} once copied`);
  }
}

function snapshotOp(w: World, step: number): void {
  const snaps = w.snaps();
  const k = w.rnd();
  const restoring = w.tx.get<Volume>(Table.Volume, w.vol.id)?.treeState !== undefined;
  if (k < 0.35 && snaps.length < 5 && !restoring) {
    const name = `s${step}`;
    w.must('createSnapshot', 'v', name);
    w.model.set(name, liveTree(w.tx, w.vol.id));
  } else if (k < 0.6 && snaps.length > 0) {
    const s = w.pick(snaps);
    for (const [clone, snap] of w.clones) if (snap === s.name && w.run('deleteVolume', clone).ok) w.clones.delete(clone);
    if (w.run('deleteSnapshot', s.name).ok) w.model.delete(s.name);
  } else if (k < 0.8 && snaps.length > 0 && w.clones.size < 3) {
    const s = w.pick(snaps);
    const clone = w.must<Volume>('cloneVolume', s.name, `c${step}`);
    w.clones.set(clone.id, s.name);
  } else if (snaps.length > 0 && !restoring) {
    const s = w.pick(snaps);
    w.must('restoreVolume', 'v', s.name);
    let rounds = 0;
    while (w.tx.get<Volume>(Table.Volume, w.vol.id)?.treeState !== undefined) {
      background(w);
      checkSnapshots(w);
      assert.ok(++rounds < 1_000, 'restore finishes');
    }
    assertSameTree(liveTree(w.tx, w.vol.id), w.model.get(s.name)!, `volume restored to ${s.name}`);
  }
}

describe('metadata: snapshots of the file tree against a model (pure)', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}: every snapshot reads its tree; clones and restores get it; collection keeps only what snapshots read`, function () {
      this.timeout(120_000);
      const w = new World(mulberry32(seed));
      try {
        for (let step = 0; step < 220; step++) {
          if (w.rnd() < 0.12) snapshotOp(w, step);
          else w.fsOp();
          if (w.rnd() < 0.4) background(w);
          checkSnapshots(w);
          if (step % 10 === 0) checkNoUnneededVersions(w);
        }
        const count = (re: RegExp): number => w.log.filter((l) => re.test(l)).length;
        // The run must have exercised what it claims to check.
        assert.ok(count(/^createSnapshot.*ok$/) > 0 && count(/^fsPurgeDeleted.*ok$/) > 0, 'snapshots were taken and steps run');
        // Drain: delete every clone and snapshot; every version key must go.
        for (const clone of w.clones.keys()) w.must('deleteVolume', clone);
        for (const s of w.snaps()) w.must('deleteSnapshot', s.name);
        for (let i = 0; i < 1_000 && (w.ns()?.gc !== undefined); i++) background(w);
        checkNoUnneededVersions(w);
        assert.equal(w.tx.range({ table: Table.NsVersion, prefix: '', after: '', limit: 10 }).length, 0, 'no version key of any volume left');
      } catch (err) {
        console.error(`seed ${seed}, last operations:\n  ${w.log.slice(-25).join('\n  ')}`);
        throw err;
      }
    });
  }
});
