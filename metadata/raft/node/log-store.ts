/**
 * Durable Raft state in one classic-level database: hard state, log entries, and the latest
 * snapshot (metadata and data). Every `save()` is one atomic batch written with `sync: true`,
 * so one Ready costs one fsync however many entries it carries (group commit).
 *
 * Invariants (checked): entries are contiguous; an appended run never leaves a gap after the
 * last stored entry; nothing at or below the snapshot index is ever stored as an entry.
 */
import { ClassicLevel } from 'classic-level';
import type { ConfState, Entry, HardState, RaftInitialState, Snapshot, SnapshotMeta } from '../core/types.js';
import { ErrorCode, GalleonError, invariant } from '../../../proto/errors.js';
import { decodeEntry, encodeEntry } from './entry-codec.js';

const keyHardState = 'h';
const keySnapshotMeta = 'm';
const keySnapshotData = 'd';
const entryKeyPrefix = 'e';
const userKeyPrefix = 'u';
const indexHexDigits = 14; // 2^53 fits in 14 hex digits

type BatchOp = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

function entryKey(index: number): string {
  return entryKeyPrefix + index.toString(16).padStart(indexHexDigits, '0');
}

export const emptyHardState: HardState = { term: 0, vote: null, commit: 0 };

export interface LogStoreSaveInput {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
}

export class LogStore {
  private snapshotMeta: SnapshotMeta;
  private lastIndexValue: number;
  private hardStateValue: HardState;

  private constructor(private readonly db: ClassicLevel<string, Buffer>, snapshotMeta: SnapshotMeta, lastIndex: number, hardState: HardState) {
    this.snapshotMeta = snapshotMeta;
    this.lastIndexValue = lastIndex;
    this.hardStateValue = hardState;
  }

  /** Opens (creating if needed) the store in `dir`. `initialConf` is the conf of a brand-new member. */
  static async open(dir: string, initialConf: ConfState = { voters: [], learners: [] }): Promise<LogStore> {
    const db = new ClassicLevel<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    try {
      await db.open();
    } catch (err) {
      throw new GalleonError(ErrorCode.IO_ERROR, `cannot open the raft log store at ${dir}`, {
        cause: err, hint: 'check that no other member process uses this data dir and that the disk is writable',
      });
    }
    const metaRaw = await db.get(keySnapshotMeta);
    const snapshotMeta: SnapshotMeta = metaRaw === undefined
      ? { index: 0, term: 0, conf: { voters: [...initialConf.voters], learners: [...initialConf.learners] } }
      : JSON.parse(metaRaw.toString('utf8')) as SnapshotMeta;
    const hsRaw = await db.get(keyHardState);
    const hardState: HardState = hsRaw === undefined ? { ...emptyHardState } : JSON.parse(hsRaw.toString('utf8')) as HardState;
    let lastIndex = snapshotMeta.index;
    for await (const key of db.keys({ gt: entryKeyPrefix, lt: entryKeyPrefix + '~', reverse: true, limit: 1 })) {
      lastIndex = parseInt(key.slice(1), 16);
    }
    return new LogStore(db, snapshotMeta, lastIndex, hardState);
  }

  firstIndex(): number { return this.snapshotMeta.index + 1; }
  lastIndex(): number { return this.lastIndexValue; }
  hardState(): HardState { return this.hardStateValue; }
  currentSnapshotMeta(): SnapshotMeta { return this.snapshotMeta; }

  /** The state exactly as persisted. `applied` is the snapshot index: the driver raises it to the state machine's. */
  async load(): Promise<RaftInitialState> {
    const entries: Entry[] = [];
    for await (const value of this.db.values({ gt: entryKey(this.snapshotMeta.index), lte: entryKey(this.lastIndexValue) })) {
      entries.push(decodeEntry(value));
    }
    for (let i = 0; i < entries.length; i++) {
      invariant(entries[i]?.index === this.snapshotMeta.index + 1 + i, `log store entries are not contiguous at position ${i}`);
    }
    return {
      hardState: { ...this.hardStateValue },
      snapshotMeta: structuredClone(this.snapshotMeta),
      entries,
      applied: this.snapshotMeta.index,
    };
  }

  /** Entries in [lo, hi] (inclusive), from disk. */
  async entries(lo: number, hi: number): Promise<Entry[]> {
    const out: Entry[] = [];
    for await (const value of this.db.values({ gte: entryKey(lo), lte: entryKey(hi) })) out.push(decodeEntry(value));
    return out;
  }

  /** The latest snapshot with its data, or null when none was ever taken or received. */
  async snapshot(): Promise<Snapshot | null> {
    if (this.snapshotMeta.index === 0) return null;
    const data = await this.db.get(keySnapshotData);
    return { meta: structuredClone(this.snapshotMeta), data: data ?? new Uint8Array(0) };
  }

  /**
   * Persists one Ready's durable part in ONE synced batch: a received snapshot replaces the
   * whole log; entries replace any stored suffix from entries[0].index on; then the hard state.
   */
  async save(input: LogStoreSaveInput): Promise<void> {
    const ops: BatchOp[] = [];
    let snapshotMeta = this.snapshotMeta;
    let lastIndex = this.lastIndexValue;
    if (input.snapshot !== null) {
      const meta = input.snapshot.meta;
      invariant(meta.index > snapshotMeta.index, `received snapshot ${meta.index} is not newer than stored snapshot ${snapshotMeta.index}`);
      // A received snapshot supersedes the whole log (the core only hands one over when its log
      // does not already contain the snapshot's last entry).
      for (let i = snapshotMeta.index + 1; i <= lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) });
      ops.push({ type: 'put', key: keySnapshotMeta, value: Buffer.from(JSON.stringify(meta)) });
      ops.push({ type: 'put', key: keySnapshotData, value: Buffer.from(input.snapshot.data) });
      snapshotMeta = structuredClone(meta);
      lastIndex = meta.index;
    }
    const first = input.entries[0];
    if (first !== undefined) {
      invariant(first.index > snapshotMeta.index, `entry ${first.index} is at or below the snapshot index ${snapshotMeta.index}`);
      invariant(first.index <= lastIndex + 1, `entry ${first.index} would leave a gap after last index ${lastIndex}`);
      for (let i = 0; i < input.entries.length; i++) {
        const e = input.entries[i]!;
        invariant(e.index === first.index + i, 'entries to save are not contiguous');
        ops.push({ type: 'put', key: entryKey(e.index), value: encodeEntry(e) });
      }
      const newLast = first.index + input.entries.length - 1;
      // Truncate a conflicting suffix the new entries did not overwrite.
      for (let i = newLast + 1; i <= lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) });
      lastIndex = newLast;
    }
    if (input.hardState !== null) {
      ops.push({ type: 'put', key: keyHardState, value: Buffer.from(JSON.stringify(input.hardState)) });
    }
    if (ops.length === 0) return;
    await this.writeBatch(ops);
    this.snapshotMeta = snapshotMeta;
    this.lastIndexValue = lastIndex;
    if (input.hardState !== null) this.hardStateValue = { ...input.hardState };
  }

  /**
   * Records a snapshot the local state machine took at `meta.index` and drops the entries it
   * covers. Entries after it stay.
   */
  async compact(meta: SnapshotMeta, data: Uint8Array): Promise<void> {
    if (meta.index <= this.snapshotMeta.index) return;
    invariant(meta.index <= this.lastIndexValue, `cannot compact to ${meta.index} beyond last index ${this.lastIndexValue}`);
    const ops: BatchOp[] = [];
    for (let i = this.snapshotMeta.index + 1; i <= meta.index; i++) ops.push({ type: 'del', key: entryKey(i) });
    ops.push({ type: 'put', key: keySnapshotMeta, value: Buffer.from(JSON.stringify(meta)) });
    ops.push({ type: 'put', key: keySnapshotData, value: Buffer.from(data) });
    await this.writeBatch(ops);
    this.snapshotMeta = structuredClone(meta);
  }

  /** Small application values kept beside the log (e.g. the member's peer address book). */
  async getUserValue(name: string): Promise<string | undefined> {
    const raw = await this.db.get(userKeyPrefix + name);
    return raw?.toString('utf8');
  }

  async putUserValue(name: string, value: string): Promise<void> {
    await this.writeBatch([{ type: 'put', key: userKeyPrefix + name, value: Buffer.from(value) }]);
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  private async writeBatch(ops: BatchOp[]): Promise<void> {
    const maxAttempts = 3;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.db.batch(ops, { sync: true });
        return;
      } catch (err) {
        if (attempt >= maxAttempts || this.db.status !== 'open') {
          throw new GalleonError(ErrorCode.IO_ERROR, `raft log store write failed after ${attempt} attempts`, {
            cause: err, hint: 'check the disk of this member (space, permissions); the member stops rather than acknowledge unsynced state',
          });
        }
      }
    }
  }
}
