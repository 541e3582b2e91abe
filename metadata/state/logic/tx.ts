/**
 * The state as tables of JSON values, and a transaction overlay on top of it.
 *
 * Commands run against a `Tx`: reads see the transaction's own writes, writes stay in the overlay
 * until `commitTo()` folds them into the parent (another Tx, or the shell that turns them into one
 * LevelDB batch). A failed command's overlay is simply dropped, so it changes nothing.
 * Values are treated as immutable: handlers build new objects instead of editing what they read.
 */
import { invariant } from '../../../proto/errors.js';

/** Key prefixes of the tables (see README: the on-disk key is `<table>/<id>`). */
export const Table = {
  StorageClass: 'sc',
  Volume: 'v',
  VolumeName: 'vn',
  DataNode: 'dn',
  PgReports: 'rp',
  Placement: 'pg',
  /** Per PG: the epoch its primary last claimed, and catch-up floors of replicas taken out of sync. */
  PgSync: 'ps',
  NodeLoad: 'nl',
  /** Snapshots by id, and their names (issue #11). */
  Snapshot: 'sn',
  SnapshotName: 'snn',
  Lease: 'ls',
  LeaseIndex: 'lr',
  Client: 'cl',
  Member: 'm',
  Meta: 'meta',
  /** Backup targets by name, and backup policies by id (dataplane/backup). */
  BackupTarget: 'bt',
  BackupPolicy: 'bp',
  /** Users by name (issue #12). */
  User: 'us',
  /** Tokens by the SHA-256 (hex) of their secret. */
  Token: 'tk',
  /** File-system namespace, per volume: counters, next free inode (hot: one per volume). */
  NsVolume: 'nv',
  /** Open-file handles of an inode, per mount session (hot: bounded by open files). */
  NsOpen: 'no',
  /** Directory delegations `ng/<volumeId>/<dir hex16>` (hot: bounded by sessions × maxDelegationsPerSession). */
  NsDelegation: 'ng',
  /** Flush requests before a snapshot `fr/<volumeId>` (hot: one per volume, ns-flush.ts). */
  FlushRequest: 'fr',
  /**
   * Inode ranges a mount session took, `nr/<volumeId>/<session>` (hot: bounded by sessions ×
   * maxRangesPerSession): at its end holding delegations, their blocks without an inode are reclaimed.
   */
  NsInodeRanges: 'nr',
  /** Inodes `ni/<volumeId>/<ino hex16>` (cold: read from LevelDB through the cache, never in the mirror). */
  NsInode: 'ni',
  /** Directory entries `nd/<volumeId>/<parent hex16>/<name>` (cold). */
  NsEntry: 'nd',
  /** Data blocks to free `nf/<volumeId>/<seq hex16>` (cold). */
  NsFree: 'nf',
  /**
   * Older versions of inodes and entries that snapshots still read (cold, ns-versions.ts):
   * `nx/<volumeId>/i/<ino hex16>/<gen hex16>` and `nx/<volumeId>/e/<parent hex16>/<name>/<gen hex16>`.
   */
  NsVersion: 'nx',
  /** Wrapped data keys of encrypted volumes, by volume id (volume-keys.ts). */
  VolumeKey: 'vk',
} as const;
export type Table = (typeof Table)[keyof typeof Table];
export const tables: readonly Table[] = Object.values(Table);
/**
 * Tables too large for the in-memory mirror: read from LevelDB (through the shell's cache) by key
 * or by key range, and only what the shell prefetched; listing their ids is not offered.
 */
export const coldTables: ReadonlySet<Table> = new Set<Table>([Table.NsInode, Table.NsEntry, Table.NsFree, Table.NsVersion]);

export function isColdKey(key: string): boolean {
  const slash = key.indexOf('/');
  return slash > 0 && coldTables.has(key.slice(0, slash) as Table);
}

/** Up to `limit` ids of `table` that start with `prefix` and sort after `after`, ascending. */
export interface RangeRequest {
  table: Table;
  prefix: string;
  after: string;
  limit: number;
}

export function rangeKeyOf(r: RangeRequest): string {
  return `${r.table}\u0000${r.prefix}\u0000${r.after}\u0000${r.limit}`;
}

/**
 * Thrown by a reader asked for cold keys or ranges it was not given. Not an error: the shell
 * fetches them (asynchronously, from its cache or LevelDB) and runs the command again from the
 * start on a fresh child transaction, so the pure logic only ever reads values it was handed.
 */
export class MissingKeys extends Error {
  constructor(readonly keys: readonly string[], readonly ranges: readonly RangeRequest[]) {
    super(`cold state not prefetched: ${keys.length} key(s), ${ranges.length} range(s)`);
    this.name = 'MissingKeys';
  }
}

export function keyOf(table: Table, id: string): string {
  return `${table}/${id}`;
}

export function splitKey(key: string): { table: Table; id: string } {
  const slash = key.indexOf('/');
  const table = key.slice(0, slash) as Table;
  invariant(slash > 0 && tables.includes(table), `unknown state key ${JSON.stringify(key)}`);
  return { table, id: key.slice(slash + 1) };
}

/**
 * Runs every read, then throws one MissingKeys naming all the cold state they lacked (so a
 * listing fetches its entries' inodes in one round, not one round each).
 */
export function readAll<T>(reads: (() => T)[]): T[] {
  const keys: string[] = [];
  const ranges: RangeRequest[] = [];
  const out: T[] = [];
  for (const read of reads) {
    try {
      out.push(read());
    } catch (err) {
      if (!(err instanceof MissingKeys)) throw err;
      keys.push(...err.keys);
      ranges.push(...err.ranges);
    }
  }
  if (keys.length > 0 || ranges.length > 0) throw new MissingKeys(keys, ranges);
  return out;
}

export interface StateReader {
  get<T>(table: Table, id: string): T | undefined;
  /** Ids of a table in ascending (code unit) order: iteration order never depends on history. Read-only. */
  ids(table: Table): readonly string[];
  /** Cold tables only: see RangeRequest. Values as stored. */
  range(req: RangeRequest): [id: string, value: unknown][];
}

/** A change to one key: a new value, or `undefined` for a delete. */
export type Write = readonly [key: string, value: unknown];

const deleted = Symbol('deleted');

export class Tx implements StateReader {
  private readonly overlay = new Map<string, unknown>();

  constructor(private readonly base: StateReader) {}

  get<T>(table: Table, id: string): T | undefined {
    const key = keyOf(table, id);
    if (this.overlay.has(key)) {
      const v = this.overlay.get(key);
      return v === deleted ? undefined : (v as T);
    }
    return this.base.get<T>(table, id);
  }

  ids(table: Table): readonly string[] {
    invariant(!coldTables.has(table), `ids() of cold table ${table}: use range()`);
    const prefix = `${table}/`;
    let touched = false;
    for (const key of this.overlay.keys()) {
      if (key.startsWith(prefix)) {
        touched = true;
        break;
      }
    }
    // Most commands list tables they have not written: the base's sorted ids are the answer.
    if (!touched) return this.base.ids(table);
    const out = new Set(this.base.ids(table));
    for (const [key, v] of this.overlay) {
      if (!key.startsWith(prefix)) continue;
      const id = key.slice(prefix.length);
      if (v === deleted) out.delete(id);
      else out.add(id);
    }
    return [...out].sort(compareIds);
  }

  /** The base's range with this transaction's own writes merged in (see RangeRequest). */
  range(req: RangeRequest): [id: string, value: unknown][] {
    invariant(coldTables.has(req.table) && req.limit >= 1, `range() of ${req.table} (limit ${req.limit})`);
    const tablePrefix = `${req.table}/`;
    const mine: [string, unknown][] = [];
    for (const [key, v] of this.overlay) {
      if (!key.startsWith(tablePrefix)) continue;
      const id = key.slice(tablePrefix.length);
      if (id.startsWith(req.prefix) && id > req.after) mine.push([id, v]);
    }
    if (mine.length === 0) return this.base.range(req);
    // Our deletes can hide at most mine.length of the base's ids: ask for that many more.
    const merged = new Map(this.base.range({ ...req, limit: req.limit + mine.length }));
    for (const [id, v] of mine) {
      if (v === deleted) merged.delete(id);
      else merged.set(id, v);
    }
    return [...merged.entries()].sort((a, b) => compareIds(a[0], b[0])).slice(0, req.limit);
  }

  list<T>(table: Table): T[] {
    return this.ids(table).map((id) => {
      const v = this.get<T>(table, id);
      invariant(v !== undefined, `listed id ${table}/${id} has no value`);
      return v;
    });
  }

  put(table: Table, id: string, value: unknown): void {
    invariant(value !== undefined, `put of undefined at ${table}/${id}`);
    this.overlay.set(keyOf(table, id), value);
  }

  del(table: Table, id: string): void {
    this.overlay.set(keyOf(table, id), deleted);
  }

  /** The overlay as writes, in key order (so the batch, too, is the same on every replica). */
  writes(): Write[] {
    return [...this.overlay.keys()].sort(compareIds).map((key) => {
      const v = this.overlay.get(key);
      return [key, v === deleted ? undefined : v] as const;
    });
  }

  /** Keys this transaction wrote or deleted (insertion order). */
  changedKeys(): string[] {
    return [...this.overlay.keys()];
  }

  commitTo(parent: Tx): void {
    for (const [key, v] of this.overlay) parent.overlay.set(key, v);
  }
}

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
