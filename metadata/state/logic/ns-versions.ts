/**
 * The file tree at a snapshot's cut (issue #11): copy-on-write versions of inodes and entries.
 *
 * Each inode `ni/` and entry `nd/` record carries `sg`, the volume's snapshot generation when it
 * was written (`NsVolume.snapGen`: the cut of the volume's newest live snapshot, 0 = none, stored
 * as absent). A record is in snapshot `c` iff `sg < c`. Before a command changes or deletes a
 * record whose `sg` is below the current generation G, its old value is kept under the version key
 * `nx/<record>/<G>` (`versionWrites`, run after every command by `executeCommand`), so:
 * - reading record K at cut c is ONE seek: the first version of K at or above c, else the live
 *   record; the answer is that value if its `sg < c`, else "absent at c" (`readAt`);
 * - taking a snapshot writes no record at all (it only raises `snapGen`): O(1) in the number of files;
 * - a version is needed by snapshot c iff `prev < c <= G` and its `sg < c` (prev = K's previous
 *   version key); `gcStep` deletes the others in paced steps after a snapshot delete.
 * Pure: no I/O, clock or randomness; cold state only through the reader given (MissingKeys).
 */
import { invariant } from '../../../proto/errors.js';
import { hex16 } from './ns-store.js';
import { readAll, Table, type StateReader, type Tx } from './tx.js';

/** Version keys per record: `i` for inodes, `e` for entries. */
const tagOf: Partial<Record<Table, string>> = { [Table.NsInode]: 'i', [Table.NsEntry]: 'e' };
const tableOfTag: Record<string, Table> = { i: Table.NsInode, e: Table.NsEntry };

export interface Stamped { sg?: number }
/** Where a paced walk of a volume's tree at a cut stands: phase 0 inodes, 1 entries, 2 versions. */
export interface TreeCursor { phase: 0 | 1 | 2; after: string; lastKey?: string; lastGen?: number }
/** One record of the tree at a cut; `value` undefined = absent at the cut (live phases only). */
export interface TreeRow { table: Table; id: string; value: Record<string, unknown> | undefined }

export const startCursor = (): TreeCursor => ({ phase: 0, after: '' });

export function snapGenOf(r: StateReader, volumeId: string): number {
  return r.get<{ snapGen?: number }>(Table.NsVolume, volumeId)?.snapGen ?? 0;
}

/** `nx` id prefix of all versions of record `id` of `table` (`<volumeId>/<tag>/<rest>/`). */
export function versionPrefix(table: Table, id: string): string {
  const tag = tagOf[table];
  const slash = id.indexOf('/');
  invariant(tag !== undefined && slash > 0, `no versions for ${table}/${id}`);
  return `${id.slice(0, slash)}/${tag}/${id.slice(slash + 1)}/`;
}

export function parseVersionId(vid: string): { table: Table; id: string; gen: number } {
  const parts = /^([^/]+)\/([ie])\/(.+)\/([0-9a-f]{16})$/.exec(vid);
  invariant(parts !== null, `malformed version id ${vid}`);
  const [, vol, tag, rest, gen] = parts as unknown as [string, string, string, string, string];
  return { table: tableOfTag[tag]!, id: `${vol}/${rest}`, gen: parseInt(gen, 16) };
}

/** The record as handlers and clients see it: without its generation. */
export function unstamped(v: unknown): Record<string, unknown> {
  const { sg: _sg, ...rest } = v as Record<string, unknown> & Stamped;
  return rest;
}

function stamped(v: unknown, gen: number): Record<string, unknown> {
  return gen === 0 ? unstamped(v) : { ...unstamped(v), sg: gen };
}

/**
 * After a command ran in `child` over `parent`: keep the old value of every inode and entry it
 * changed that a snapshot still reads, and stamp what it wrote with the current generation.
 */
export function versionWrites(child: Tx, parent: StateReader): void {
  for (const key of child.changedKeys()) {
    const slash = key.indexOf('/');
    const table = key.slice(0, slash) as Table;
    if (tagOf[table] === undefined) continue;
    const id = key.slice(slash + 1);
    // The generation the command started in: what a createSnapshot writes (a legacy volume's
    // first root) is part of the snapshot it takes.
    const gen = snapGenOf(parent, id.slice(0, id.indexOf('/')));
    const next = child.get<Stamped>(table, id);
    if (gen > 0) {
      const old = parent.get<Stamped>(table, id);
      if (old !== undefined && (old.sg ?? 0) < gen) child.put(Table.NsVersion, versionPrefix(table, id) + hex16(gen), old);
    }
    if (next !== undefined && next.sg !== (gen === 0 ? undefined : gen)) child.put(table, id, stamped(next, gen));
  }
}

/** Record `id` of `table` as it was at `cut` (one seek), without its stamp; undefined = absent. */
export function readAt(r: StateReader, table: Table, id: string, cut: number): Record<string, unknown> | undefined {
  invariant(Number.isSafeInteger(cut) && cut >= 1, `cut ${cut}`);
  const prefix = versionPrefix(table, id);
  // Both reads in one fetch round (the live one is wasted when a version answers).
  const [versions, live] = readAll<unknown>([
    () => r.range({ table: Table.NsVersion, prefix, after: prefix + hex16(cut - 1), limit: 1 }),
    () => r.get(table, id),
  ]);
  const hit = (versions as [string, unknown][])[0];
  const v = (hit === undefined ? live : hit[1]) as Stamped | undefined;
  return v !== undefined && (v.sg ?? 0) < cut ? unstamped(v) : undefined;
}

const liveTables = [Table.NsInode, Table.NsEntry] as const;

/**
 * Up to `limit` records of volume `volumeId`'s tree at `cut`, from `cursor`: first every live
 * record (unchanged since the cut: its value; written since: absent), then every record's first
 * version at or above the cut (records changed or deleted since: their value at the cut). Apply
 * the rows in order and the last one of a record wins; a record changed while the walk runs can
 * come twice, with the same value. Returns the next cursor, null at the end.
 */
export function treePage(r: StateReader, volumeId: string, cut: number, cursor: TreeCursor, limit: number): { rows: TreeRow[]; next: TreeCursor | null } {
  invariant(limit >= 1, `limit ${limit}`);
  if (cursor.phase === 2) return versionPage(r, volumeId, cut, cursor, limit);
  const table = liveTables[cursor.phase];
  const page = r.range({ table, prefix: `${volumeId}/`, after: cursor.after, limit });
  // A live record written before the cut is its value at the cut; one written since comes back
  // absent here, and its value at the cut (if any) from its version in phase 2.
  const rows = page.map(([id, v]): TreeRow => ({ table, id, value: ((v as Stamped).sg ?? 0) < cut ? unstamped(v) : undefined }));
  const last = page[page.length - 1];
  if (page.length === limit && last !== undefined) return { rows, next: { phase: cursor.phase, after: last[0] } };
  return { rows, next: { phase: cursor.phase === 0 ? 1 : 2, after: '' } };
}

function versionPage(r: StateReader, volumeId: string, cut: number, cursor: TreeCursor, limit: number): { rows: TreeRow[]; next: TreeCursor | null } {
  const page = r.range({ table: Table.NsVersion, prefix: `${volumeId}/`, after: cursor.after, limit });
  const rows: TreeRow[] = [];
  let { lastKey, lastGen } = cursor;
  for (const [vid, value] of page) {
    const { table, id, gen } = parseVersionId(vid);
    const prev = id === lastKey ? (lastGen ?? 0) : 0;
    lastKey = id;
    lastGen = gen;
    // The first version at or above the cut is the record's value at the cut (if not newer itself).
    if (prev < cut && cut <= gen && ((value as Stamped).sg ?? 0) < cut) rows.push({ table, id, value: unstamped(value) });
  }
  const last = page[page.length - 1];
  if (page.length < limit || last === undefined) return { rows, next: null };
  return { rows, next: { phase: 2, after: last[0], ...(lastKey === undefined ? {} : { lastKey }), ...(lastGen === undefined ? {} : { lastGen }) } };
}

/** Where a paced collection of a volume's versions stands. */
export interface GcCursor { after: string; lastKey?: string; lastGen?: number }

/**
 * Deletes, among up to `limit` version keys of the volume from `cursor`, those no snapshot at
 * `cuts` reads. Returns how many it looked at and deleted, and the next cursor (null: done).
 */
export function gcStep(tx: Tx, volumeId: string, cuts: readonly number[], cursor: GcCursor, limit: number): { seen: number; deleted: number; next: GcCursor | null } {
  const page = tx.range({ table: Table.NsVersion, prefix: `${volumeId}/`, after: cursor.after, limit });
  let { lastKey, lastGen } = cursor;
  let deleted = 0;
  for (const [vid, value] of page) {
    const { id, gen } = parseVersionId(vid);
    const prev = id === lastKey ? (lastGen ?? 0) : 0;
    lastKey = id;
    lastGen = gen;
    const sg = (value as Stamped).sg ?? 0;
    if (cuts.some((c) => prev < c && c <= gen && sg < c)) continue;
    tx.del(Table.NsVersion, vid);
    deleted += 1;
  }
  const last = page[page.length - 1];
  const next = page.length < limit || last === undefined ? null
    : { after: last[0], ...(lastKey === undefined ? {} : { lastKey }), ...(lastGen === undefined ? {} : { lastGen }) };
  return { seen: page.length, deleted, next };
}

/** Record id `<fromVolume>/<rest>` as the same record of volume `toVolume`. */
export function retarget(id: string, toVolume: string): string {
  return `${toVolume}${id.slice(id.indexOf('/'))}`;
}
