/**
 * Seeded random operations on the namespace, compared step by step with a small in-memory model
 * of POSIX (ext4) semantics: same success or same errno for every operation, same tree at the
 * end (names, types, link counts). A failure prints the seed and the operations up to it.
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { FsAttr, FsReaddirPage } from '../../../proto/metadata-types.js';
import { rootIno } from '../../../metadata/state/logic/ns-store.js';
import type { Feeder} from './helpers.js';
import { useStateMachine } from './helpers.js';
import { NsFixture, root } from './ns-helpers.js';

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

interface MNode { type: 'file' | 'dir'; nlink: number; parent: number; children: Map<string, number> }

/** POSIX as ext4 behaves, for the operations drawn here; returns null (ok) or the errno. */
class Model {
  readonly nodes = new Map<number, MNode>([[rootIno, { type: 'dir', nlink: 2, parent: rootIno, children: new Map() }]]);

  private dir(ino: number): MNode { return this.nodes.get(ino)!; }

  create(p: number, name: string, ino: number, type: 'file' | 'dir'): string | null {
    const d = this.dir(p);
    if (d.children.has(name)) return 'EEXIST';
    d.children.set(name, ino);
    this.nodes.set(ino, { type, nlink: type === 'dir' ? 2 : 1, parent: p, children: new Map() });
    if (type === 'dir') d.nlink += 1;
    return null;
  }

  unlink(p: number, name: string, dirOp: boolean): string | null {
    const d = this.dir(p);
    const ino = d.children.get(name);
    if (ino === undefined) return 'ENOENT';
    const v = this.nodes.get(ino)!;
    if (!dirOp && v.type === 'dir') return 'EISDIR';
    if (dirOp && v.type !== 'dir') return 'ENOTDIR';
    if (dirOp && v.children.size > 0) return 'ENOTEMPTY';
    d.children.delete(name);
    this.drop(ino, d);
    return null;
  }

  private drop(ino: number, parent: MNode): void {
    const v = this.nodes.get(ino)!;
    if (v.type === 'dir') {
      parent.nlink -= 1;
      this.nodes.delete(ino);
    } else if (--v.nlink === 0) this.nodes.delete(ino);
  }

  link(ino: number, p: number, name: string): string | null {
    const d = this.dir(p);
    if (d.children.has(name)) return 'EEXIST';
    d.children.set(name, ino);
    this.nodes.get(ino)!.nlink += 1;
    return null;
  }

  private inside(dir: number, target: number): boolean {
    for (let cur = dir; ; cur = this.nodes.get(cur)!.parent) {
      if (cur === target) return true;
      if (cur === rootIno) return false;
    }
  }

  rename(p: number, name: string, q: number, newName: string): string | null {
    const src = this.dir(p);
    const dst = this.dir(q);
    const ino = src.children.get(name);
    if (ino === undefined) return 'ENOENT';
    const old = dst.children.get(newName);
    if (old === ino) return null;
    const moved = this.nodes.get(ino)!;
    if (moved.type === 'dir' && p !== q && this.inside(q, ino)) return 'EINVAL';
    if (old !== undefined) {
      const o = this.nodes.get(old)!;
      if (moved.type === 'dir' && o.type !== 'dir') return 'ENOTDIR';
      if (moved.type !== 'dir' && o.type === 'dir') return 'EISDIR';
      if (o.children.size > 0) return 'ENOTEMPTY';
      this.drop(old, dst);
    }
    src.children.delete(name);
    dst.children.set(newName, ino);
    if (moved.type === 'dir') {
      src.nlink -= 1;
      dst.nlink += 1;
      moved.parent = q;
    }
    return null;
  }
}

type Op = [string, ...unknown[]];

describe('metadata/state namespace: seeded random operations against a POSIX model', function () {
  this.timeout(120_000);
  let f: Feeder;
  let sm: StateMachine;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });

  async function tree(n: NsFixture, dir: number, path: string, out: string[]): Promise<void> {
    let cursor: string | null = null;
    do {
      const page = await sm.query('fsReaddir', ['fs', dir, cursor, 50]) as FsReaddirPage;
      for (const e of page.entries) {
        out.push(`${path}/${e.name} ${e.attr.type} ${e.attr.nlink}`);
        if (e.attr.type === 'dir') await tree(n, e.attr.ino, `${path}/${e.name}`, out);
      }
      cursor = page.cursor;
    } while (cursor !== null);
    out.push(`${path}/. ${(await n.getattr(dir)).nlink}`);
  }

  function modelTree(m: Model, dir: number, path: string, out: string[]): void {
    const d = m.nodes.get(dir)!;
    for (const name of [...d.children.keys()].sort()) {
      const c = m.nodes.get(d.children.get(name)!)!;
      out.push(`${path}/${name} ${c.type} ${c.nlink}`);
      if (c.type === 'dir') modelTree(m, d.children.get(name)!, `${path}/${name}`, out);
    }
    out.push(`${path}/. ${d.nlink}`);
  }

  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: 400 operations agree with the model, and so does the final tree`, async () => {
      const n = await new NsFixture(f).init();
      const m = new Model();
      const rnd = mulberry32(seed);
      const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const names = ['a', 'b', 'c', 'd'];
      const done: Op[] = [];
      for (let step = 0; step < 400; step += 1) {
        const dirs = [...m.nodes].filter(([, v]) => v.type === 'dir').map(([k]) => k);
        const files = [...m.nodes].filter(([, v]) => v.type === 'file').map(([k]) => k);
        const kind = pick(['create', 'mkdir', 'mkdir', 'unlink', 'rmdir', 'rename', 'rename', 'link']);
        const p = pick(dirs);
        const name = pick(names);
        let op: Op;
        let expected: string | null;
        if (kind === 'create' || kind === 'mkdir') {
          const ino = n.ino();
          op = [kind === 'create' ? 'fsCreate' : 'fsMkdir', root, p, name, ino, 0o755];
          expected = m.create(p, name, ino, kind === 'create' ? 'file' : 'dir');
        } else if (kind === 'unlink' || kind === 'rmdir') {
          op = [kind === 'unlink' ? 'fsUnlink' : 'fsRmdir', root, p, name];
          expected = m.unlink(p, name, kind === 'rmdir');
        } else if (kind === 'link' && files.length > 0) {
          const ino = pick(files);
          op = ['fsLink', root, ino, p, name];
          expected = m.link(ino, p, name);
        } else {
          const q = pick(dirs);
          const newName = pick(names);
          op = ['fsRename', root, p, name, q, newName, 0];
          expected = m.rename(p, name, q, newName);
        }
        done.push(op);
        const [method, ...args] = op;
        const r = await f.run(method, 'fs', ...args);
        const got = r.ok ? null : r.error.details?.errno ?? r.error.code;
        assert.equal(got, expected, `seed ${seed} step ${step}: ${JSON.stringify(op)} (ops so far: ${JSON.stringify(done.slice(-20))})`);
      }
      const want: string[] = [];
      modelTree(m, rootIno, '', want);
      const have: string[] = [];
      await tree(n, rootIno, '', have);
      assert.deepEqual(have, want);
      const inodes = (await sm.query('fsStatfs', ['fs']) as { inodes: number }).inodes;
      assert.equal(inodes, m.nodes.size, 'no inode leaked or lost');
      const attr = await sm.query('fsGetattr', ['fs', rootIno]) as FsAttr;
      assert.equal(attr.nlink, m.nodes.get(rootIno)!.nlink);
    });
  }
});
