/**
 * The in-memory copy of the state database. It changes only in `commit()`, with the values parsed
 * back from the bytes of the LevelDB batch holding the same writes (apply() writes that batch
 * behind its answer; see the README): once the batch lands it is exactly what a restart loads.
 * Cold tables (the file-system namespace) are not held here: writes to them are skipped.
 */
import { invariant } from '../../proto/errors.js';
import { coldTables, compareIds, splitKey, tables, type RangeRequest, type StateReader, type Table } from './logic/tx.js';

export class Mirror implements StateReader {
  private readonly data = new Map<Table, Map<string, unknown>>(tables.map((t) => [t, new Map()]));
  private readonly sortedIds = new Map<Table, string[]>();

  get<T>(table: Table, id: string): T | undefined {
    invariant(!coldTables.has(table), `cold table ${table} read from the mirror`);
    return this.table(table).get(id) as T | undefined;
  }

  /** Sorted; callers must not modify the array (it is cached until the table changes). */
  ids(table: Table): readonly string[] {
    let ids = this.sortedIds.get(table);
    if (ids === undefined) {
      ids = [...this.table(table).keys()].sort(compareIds);
      this.sortedIds.set(table, ids);
    }
    return ids;
  }

  /** Applies encoded writes (`undefined` = delete). */
  commit(writes: Iterable<readonly [key: string, json: string | undefined]>): void {
    for (const [key, json] of writes) {
      const { table, id } = splitKey(key);
      if (coldTables.has(table)) continue;
      if (json === undefined) this.table(table).delete(id);
      else this.table(table).set(id, JSON.parse(json) as unknown);
      this.sortedIds.delete(table);
    }
  }

  range(req: RangeRequest): [id: string, value: unknown][] {
    invariant(false, `range of ${req.table} asked of the mirror (cold tables are not held here)`);
  }

  clear(): void {
    for (const m of this.data.values()) m.clear();
    this.sortedIds.clear();
  }

  private table(t: Table): Map<string, unknown> {
    const m = this.data.get(t);
    if (m === undefined) throw new Error(`unknown table ${t}`);
    return m;
  }
}
