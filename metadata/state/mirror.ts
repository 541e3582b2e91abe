/**
 * The in-memory copy of the state database. It changes only in `commit()`, called right after the
 * LevelDB batch holding the same writes succeeded, with the values parsed back from the bytes
 * written: so it is always exactly what a restart would load.
 */
import { compareIds, splitKey, tables, type StateReader, type Table } from './logic/tx.js';

export class Mirror implements StateReader {
  private readonly data = new Map<Table, Map<string, unknown>>(tables.map((t) => [t, new Map()]));
  private readonly sortedIds = new Map<Table, string[]>();

  get<T>(table: Table, id: string): T | undefined {
    return this.table(table).get(id) as T | undefined;
  }

  ids(table: Table): string[] {
    let ids = this.sortedIds.get(table);
    if (ids === undefined) {
      ids = [...this.table(table).keys()].sort(compareIds);
      this.sortedIds.set(table, ids);
    }
    return [...ids];
  }

  /** Applies encoded writes (`undefined` = delete). */
  commit(writes: Iterable<readonly [key: string, json: string | undefined]>): void {
    for (const [key, json] of writes) {
      const { table, id } = splitKey(key);
      if (json === undefined) this.table(table).delete(id);
      else this.table(table).set(id, JSON.parse(json) as unknown);
      this.sortedIds.delete(table);
    }
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
