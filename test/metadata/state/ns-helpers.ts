/** Helpers for the namespace suites: a volume with an inode range, and errno assertions. */
import assert from 'node:assert/strict';
import type { FsAttr, FsCaller, FsInodeRange, Volume } from '../../../proto/metadata-types.js';
import { addNodes, type Feeder } from './helpers.js';

export const root: FsCaller = { uid: 0, gid: 0 };
export const alice: FsCaller = { uid: 1000, gid: 1000 };
export const bob: FsCaller = { uid: 1001, gid: 1001 };

/** A volume `fs` on three data nodes and a range of inode numbers handed out one by one. */
export class NsFixture {
  vol!: Volume;
  private next = 0;
  private end = 0;

  constructor(readonly f: Feeder, readonly volume = 'fs') {}

  /** `spec`: more createVolume fields (e.g. an access mode that lets two mounts hold leases). */
  async init(rangeSize = 10_000, withNodes = true, spec: Record<string, unknown> = {}): Promise<this> {
    if (withNodes) await addNodes(this.f, 3);
    this.vol = await this.f.ok<Volume>('createVolume', { name: this.volume, size: '1G', blockSize: '4K', ...spec });
    const r = await this.f.ok<FsInodeRange>('fsAllocateInodes', this.volume, rangeSize);
    this.next = r.start;
    this.end = r.end;
    return this;
  }

  ino(): number {
    assert.ok(this.next < this.end, 'test inode range used up');
    return this.next++;
  }

  async create(parent: number, name: string, caller: FsCaller = root, mode = 0o644): Promise<FsAttr> {
    return (await this.f.ok<{ attr: FsAttr }>('fsCreate', this.volume, caller, parent, name, this.ino(), mode)).attr;
  }

  async mkdir(parent: number, name: string, caller: FsCaller = root, mode = 0o755): Promise<FsAttr> {
    return (await this.f.ok<{ attr: FsAttr }>('fsMkdir', this.volume, caller, parent, name, this.ino(), mode)).attr;
  }

  getattr(ino: number): Promise<FsAttr> {
    return this.f.sm.query('fsGetattr', [this.volume, ino]) as Promise<FsAttr>;
  }

  lookup(parent: number, name: string): Promise<FsAttr> {
    return this.f.sm.query('fsLookup', [this.volume, parent, name]) as Promise<FsAttr>;
  }

  /** Runs a namespace command that must fail with POSIX `errno`; returns nothing. */
  async errno(errno: string, method: string, ...args: unknown[]): Promise<void> {
    const r = await this.f.run(method, this.volume, ...args);
    if (r.ok) assert.fail(`${method} succeeded, expected ${errno}: ${JSON.stringify(r.value)}`);
    assert.equal(r.error.code, 'POSIX', `${method}: ${r.error.code} ${r.error.message}`);
    assert.equal(r.error.details?.errno, errno, r.error.message);
    assert.ok((r.error.hint ?? '').length > 0 && !r.error.message.includes('\n'));
  }

  /** A query that must fail with POSIX `errno`. */
  async queryErrno(errno: string, method: string, ...args: unknown[]): Promise<void> {
    await assert.rejects(this.f.sm.query(method as never, [this.volume, ...args]), (e: unknown) => {
      const err = e as { code?: string; details?: Record<string, unknown> };
      assert.equal(err.code, 'POSIX');
      assert.equal(err.details?.errno, errno);
      return true;
    });
  }

  /** `session`: list as that mount session (a directory it holds the delegation of). */
  async names(dir: number, session?: string): Promise<string[]> {
    const out: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await this.f.sm.query('fsReaddir', [this.volume, dir, cursor, 7, ...(session === undefined ? [] : [session])]) as { entries: { name: string }[]; cursor: string | null };
      out.push(...page.entries.map((e) => e.name));
      cursor = page.cursor;
    } while (cursor !== null);
    return out;
  }
}
