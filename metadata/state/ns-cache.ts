/**
 * Cold state (the file-system namespace, `coldTables` in logic/tx.ts) between the pure logic and
 * LevelDB: a bounded LRU of parsed values (absence cached too), the writes of the batch still in
 * flight (write-behind, as the mirror: they win over the database until it has them), and
 * `ColdView`, the StateReader the logic runs against: hot tables from the mirror, cold keys and
 * ranges only once fetched (else MissingKeys, and the shell fetches and runs again).
 *
 * A Map in insertion order is the LRU (a hit re-inserts at the end; eviction takes the first key):
 * a dozen lines, so no dependency. Values are shared with callers and never edited (logic rule).
 */
import type { ClassicLevel } from 'classic-level';
import { invariant } from '../../proto/errors.js';
import { coldTables, keyOf, MissingKeys, rangeKeyOf, type RangeRequest, type StateReader, type Table } from './logic/tx.js';
import type { Mirror } from './mirror.js';

/** Default bound of the cache, in entries (an inode is ~0.5 KiB parsed: ~50 MiB at this bound). */
export const defaultNsCacheMaxEntries = 100_000;

const absent = Symbol('absent');
type Cached = unknown;

export interface NsCacheStats {
  entries: number;
  maxEntries: number;
  hits: number;
  misses: number;
  rangeReads: number;
}

export class NsCache {
  private readonly lru = new Map<string, Cached>();
  /** Cold writes of the batch not yet in LevelDB (at most one batch is in flight). */
  private readonly pending = new Map<string, Cached>();
  private hits = 0;
  private misses = 0;
  private rangeReads = 0;

  constructor(private readonly db: ClassicLevel<string, string>, readonly maxEntries: number) {
    invariant(Number.isSafeInteger(maxEntries) && maxEntries >= 1, `nsCacheMaxEntries must be a positive integer, got ${maxEntries}`);
  }

  async get(key: string): Promise<unknown> {
    if (this.pending.has(key)) return unwrap(this.pending.get(key));
    if (this.lru.has(key)) {
      const v = this.lru.get(key);
      this.lru.delete(key);
      this.lru.set(key, v);
      this.hits += 1;
      return unwrap(v);
    }
    this.misses += 1;
    const raw = await this.db.get(key);
    const v: Cached = raw === undefined ? absent : JSON.parse(raw) as unknown;
    if (!this.pending.has(key)) this.remember(key, v);
    return this.pending.has(key) ? unwrap(this.pending.get(key)) : unwrap(v);
  }

  /** Many keys in one database call for those neither in flight nor cached. */
  async getMany(keys: readonly string[]): Promise<unknown[]> {
    const out: unknown[] = new Array(keys.length);
    const misses: number[] = [];
    keys.forEach((key, i) => {
      if (this.pending.has(key)) out[i] = unwrap(this.pending.get(key));
      else if (this.lru.has(key)) {
        const v = this.lru.get(key);
        this.lru.delete(key);
        this.lru.set(key, v);
        this.hits += 1;
        out[i] = unwrap(v);
      } else misses.push(i);
    });
    if (misses.length === 0) return out;
    this.misses += misses.length;
    const raws = await this.db.getMany(misses.map((i) => keys[i]!));
    misses.forEach((i, j) => {
      const raw = raws[j];
      const v: Cached = raw === undefined ? absent : JSON.parse(raw) as unknown;
      this.remember(keys[i]!, v);
      out[i] = unwrap(v);
    });
    return out;
  }

  /** The database's range with the in-flight batch merged in (its deletes can hide that many rows). */
  async range(req: RangeRequest): Promise<[string, unknown][]> {
    this.rangeReads += 1;
    const tablePrefix = `${req.table}/`;
    const start = tablePrefix + (req.after >= req.prefix ? req.after : req.prefix);
    const full = tablePrefix + req.prefix;
    const mine: [string, Cached][] = [];
    for (const [key, v] of this.pending) {
      if (key.startsWith(full) && key.slice(tablePrefix.length) > req.after) mine.push([key.slice(tablePrefix.length), v]);
    }
    const rows = new Map<string, unknown>();
    const wanted = req.limit + mine.length;
    const range = req.after >= req.prefix ? { gt: start } : { gte: start };
    for await (const [key, value] of this.db.iterator(range)) {
      if (!key.startsWith(full) || rows.size >= wanted) break;
      rows.set(key.slice(tablePrefix.length), JSON.parse(value) as unknown);
    }
    for (const [id, v] of mine) {
      if (v === absent) rows.delete(id);
      else rows.set(id, v);
    }
    return [...rows.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, req.limit);
  }

  /** The cold part of an applied batch, before it lands (`undefined` = delete). */
  commit(writes: Iterable<readonly [key: string, json: string | undefined]>): void {
    for (const [key, json] of writes) {
      const v: Cached = json === undefined ? absent : JSON.parse(json) as unknown;
      this.pending.set(key, v);
      this.remember(key, v);
    }
  }

  /** The in-flight batch is in the database. */
  landed(): void {
    this.pending.clear();
  }

  clear(): void {
    this.lru.clear();
    this.pending.clear();
  }

  stats(): NsCacheStats {
    return { entries: this.lru.size, maxEntries: this.maxEntries, hits: this.hits, misses: this.misses, rangeReads: this.rangeReads };
  }

  private remember(key: string, v: Cached): void {
    this.lru.delete(key);
    this.lru.set(key, v);
    while (this.lru.size > this.maxEntries) {
      const oldest = this.lru.keys().next();
      if (oldest.done === true) break;
      this.lru.delete(oldest.value);
    }
  }
}

function unwrap(v: Cached): unknown {
  return v === absent ? undefined : v;
}

/**
 * What the logic reads during one apply() or one namespace query: hot tables from the mirror,
 * cold keys and ranges only after `fetch()` brought them (the logic's reads stay synchronous and
 * pure; the asynchronous part is here).
 */
export class ColdView implements StateReader {
  private readonly values = new Map<string, unknown>();
  private readonly ranges = new Map<string, [string, unknown][]>();
  rounds = 0;

  constructor(private readonly mirror: Mirror, private readonly cache: NsCache) {}

  get<T>(table: Table, id: string): T | undefined {
    if (!coldTables.has(table)) return this.mirror.get<T>(table, id);
    const key = keyOf(table, id);
    if (!this.values.has(key)) throw new MissingKeys([key], []);
    return this.values.get(key) as T | undefined;
  }

  ids(table: Table): readonly string[] {
    invariant(!coldTables.has(table), `ids() of cold table ${table}`);
    return this.mirror.ids(table);
  }

  range(req: RangeRequest): [id: string, value: unknown][] {
    const rows = this.ranges.get(rangeKeyOf(req));
    if (rows === undefined) throw new MissingKeys([], [req]);
    return rows;
  }

  /** Known keys up front (logic/ns-prefetch.ts), in one database call. */
  async prefetch(keys: readonly string[]): Promise<void> {
    const wanted = [...new Set(keys)].filter((k) => !this.values.has(k));
    if (wanted.length === 0) return;
    const values = await this.cache.getMany(wanted);
    wanted.forEach((k, i) => this.values.set(k, values[i]));
  }

  async fetch(missing: MissingKeys): Promise<void> {
    this.rounds += 1;
    await this.prefetch(missing.keys);
    for (const req of missing.ranges) this.ranges.set(rangeKeyOf(req), await this.cache.range(req));
  }
}
