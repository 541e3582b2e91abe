/**
 * The StateMachine over classic-level: the thin shell around `logic/`. It owns the database, the
 * in-memory mirror, and the ordering of mutations (apply and restore run one at a time).
 */
import { ClassicLevel } from 'classic-level';
import { rm } from 'node:fs/promises';
import { ErrorCode, GalleonError, invariant } from '../../proto/errors.js';
import type { AppliedRecord, CommandResult, InternalQueryMethod, MemberRecord, QueryMethod, SnapshotSink, SnapshotStream, StateMachine } from './contract.js';
import { deriveUuid } from './ids.js';
import { appliedIndexOf, applyRecord, metaApplied, resultOfApplied, seedBuiltIns } from './logic/apply.js';
import { listOf } from './logic/lookup.js';
import { readsColdState, runQuery } from './logic/queries.js';
import { prefetchKeysOf } from './logic/ns-prefetch.js';
import { MissingKeys, Table, Tx, coldTables, isColdKey, keyOf, splitKey, tables, type Write } from './logic/tx.js';
import { Mirror } from './mirror.js';
import { ColdView, NsCache, defaultNsCacheMaxEntries, type NsCacheStats } from './ns-cache.js';
import { SnapshotChunkEncoder, SnapshotWriter, openSnapshot, snapshotChunkBytes } from './snapshot-codec.js';
import { AlreadyStaged, StagedRestore, dropStagingsUpTo, isStaged, recoverDirs, switchToStaged } from './snapshot-stage.js';

export interface StateMachineOptions {
  /** Attempts at writing one batch before the error reaches the caller. */
  batchAttempts?: number;
  /** Wait before the first retry; doubles each time. */
  batchRetryDelayMs?: number;
  /** Bound of the namespace cache, in entries (inodes, directory entries, absences). */
  nsCacheMaxEntries?: number;
  /** LevelDB memtable size (`defaultWriteBufferBytes` when unset). */
  writeBufferBytes?: number;
}

/**
 * The state database's memtable. Why not classic-level's 4 MiB: at size, what a create costs
 * beyond an empty volume is LevelDB's compaction (flushes merged into ever larger levels, in
 * this process's threads). Measured at 300,000 inodes in one state machine (rounds of 10,000
 * creates, CPU of the process per create, medians of 6 rounds, two runs side by side): 80 µs
 * with 4 MiB against 58 µs with 32 MiB (30 µs on an empty volume either way; a round in which no
 * flush happened cost 34 µs). Memory: at most two memtables of this size.
 */
export const defaultWriteBufferBytes = 32 * 2 ** 20;

/**
 * Fetch-and-rerun rounds one record or namespace query may take (rename's subtree check costs one
 * round per level of the destination; see logic/ns-rename.ts maxRenameDepth).
 */
export const maxPrefetchRounds = 8_192;

/** Entries read from the iterator per call while streaming a snapshot. */
const snapshotIteratorBatchEntries = 1_000;

const defaultBatchAttempts = 3;
const defaultBatchRetryDelayMs = 20;

type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

function openDb(dir: string, options: StateMachineOptions): ClassicLevel<string, string> {
  const writeBufferSize = options.writeBufferBytes ?? defaultWriteBufferBytes;
  invariant(Number.isSafeInteger(writeBufferSize) && writeBufferSize >= 2 ** 20, `writeBufferBytes must be at least 1 MiB, got ${writeBufferSize}`);
  return new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8', writeBufferSize });
}

export async function openStateMachine(dir: string, options: StateMachineOptions = {}): Promise<StateMachine> {
  await recoverDirs(dir);
  const db = openDb(dir, options);
  await db.open();
  const machine = new LevelStateMachine(dir, db, options);
  try {
    await machine.load();
    await dropStagingsUpTo(dir, machine.appliedIndex());
  } catch (err) {
    await db.close();
    throw err;
  }
  return machine;
}

class LevelStateMachine implements StateMachine {
  private readonly mirror = new Mirror();
  private cache: NsCache;
  /** The snapshot being received, if any (one at a time). */
  private staging: StagedRestore | AlreadyStaged | null = null;
  /** Deletion of the state a restore replaced (close waits for it). */
  private cleanup: Promise<void> = Promise.resolve();
  /** Namespace queries in progress: apply/restore change the mirror and cache only once they are done. */
  private readonly readers = new Set<Promise<unknown>>();
  /** Tail of the mutation queue: apply/restore wait for the one before them. */
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  /**
   * The database batch of the last apply(), landing behind its answer (the mirror is updated
   * first). The next mutation, snapshot and close wait for it; its failure is kept in
   * `writeFailure` and fails every later mutation, so the driver stops the member.
   */
  private pendingWrite: Promise<void> = Promise.resolve();
  private writeFailure: unknown = null;
  private readonly batchAttempts: number;
  private readonly batchRetryDelayMs: number;

  constructor(private readonly dir: string, private db: ClassicLevel<string, string>, private readonly options: StateMachineOptions) {
    this.batchAttempts = options.batchAttempts ?? defaultBatchAttempts;
    this.batchRetryDelayMs = options.batchRetryDelayMs ?? defaultBatchRetryDelayMs;
    invariant(this.batchAttempts >= 1, 'batchAttempts must be at least 1');
    this.cache = new NsCache(db, options.nsCacheMaxEntries ?? defaultNsCacheMaxEntries);
  }

  /** The mirror holds the hot tables only: the namespace stays on disk (and in the bounded cache). */
  async load(): Promise<void> {
    const writes: [string, string][] = [];
    for (const table of tables) {
      if (coldTables.has(table)) continue;
      // '0' follows '/': the range is exactly the keys `<table>/...`.
      for await (const [key, value] of this.db.iterator({ gte: `${table}/`, lt: `${table}0` })) writes.push([key, value]);
    }
    this.mirror.commit(writes);
    if (appliedIndexOf(this.mirror) === 0) {
      const tx = new Tx(this.mirror);
      seedBuiltIns(tx);
      await this.write(tx.writes());
    }
  }

  appliedIndex(): number {
    return appliedIndexOf(this.mirror);
  }

  apply(records: AppliedRecord[]): Promise<CommandResult[]> {
    return this.exclusive(async () => {
      await this.settleWrite();
      const view = new ColdView(this.mirror, this.cache);
      const tx = new Tx(view);
      const results: CommandResult[] = [];
      await view.prefetch(records.flatMap((r) => (r.kind === 'command' ? prefetchKeysOf(this.mirror, r.command.method, r.command.args) : [])));
      for (const record of records) results.push(await this.applyOne(tx, view, record));
      // Namespace queries that began before this apply read a consistent state: let them finish.
      await Promise.all(this.readers);
      // Write-behind: the mirror (which queries read) changes now and the batch lands behind the
      // answer. The Raft log is the durable record: after a crash the database is at or below
      // the mirror's index and the log replays the rest. Measured: awaiting the batch was ~40 %
      // of the apply stage on the leader's commit path (README).
      const encoded = encodeWrites(tx.writes());
      this.mirror.commit(encoded);
      this.cache.commit(encoded.filter(([key]) => isColdKey(key)));
      this.pendingWrite = this.writeBatch(encoded).then(() => this.cache.landed(), (err: unknown) => { this.writeFailure = err; });
      // Callers get their own copies: the mirror's objects must never be edited from outside.
      return JSON.parse(JSON.stringify(results)) as CommandResult[];
    });
  }

  /**
   * One record in a child of the batch's transaction. The logic reads cold state only from the
   * view; when it asks for keys the view does not hold yet (MissingKeys) the child is dropped, the
   * keys are fetched, and the record runs again from the start: what it finally reads is the
   * batch's state, the same on every replica.
   */
  private async applyOne(tx: Tx, view: ColdView, record: AppliedRecord): Promise<CommandResult> {
    for (let round = 0; ; round += 1) {
      const child = new Tx(tx);
      try {
        const result = record.index <= appliedIndexOf(child) ? resultOfApplied(child, record) : applyRecord(child, record, deriveUuid);
        child.commitTo(tx);
        return result;
      } catch (err) {
        if (!(err instanceof MissingKeys)) throw err;
        invariant(round < maxPrefetchRounds, `record ${record.index} still asks for state after ${round} fetches`);
        await view.fetch(err);
      }
    }
  }

  query(method: QueryMethod | InternalQueryMethod, args: unknown[]): Promise<unknown> {
    if (readsColdState(method)) return this.coldQuery(method, args);
    return this.read(() => runQuery(this.mirror, method, args));
  }

  /** Bounded cache figures (tests and the bench check the bound). */
  cacheStats(): NsCacheStats {
    return this.cache.stats();
  }

  /**
   * A namespace query: after the mutations queued before it (so it sees their state), alongside
   * other queries; an apply commits only once the queries that started before it are done.
   */
  private coldQuery(method: string, args: unknown[]): Promise<unknown> {
    try {
      this.checkOpen();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // Counted as a reader only once it runs: a waiting reader counted by the apply it waits for
    // would deadlock the two.
    return this.tail.then(() => {
      const body = this.runColdQuery(method, args);
      const tracked = body.catch(() => undefined);
      this.readers.add(tracked);
      void tracked.then(() => this.readers.delete(tracked));
      return body;
    });
  }

  private async runColdQuery(method: string, args: unknown[]): Promise<unknown> {
    const view = new ColdView(this.mirror, this.cache);
    await view.prefetch(prefetchKeysOf(this.mirror, method, args));
    for (let round = 0; ; round += 1) {
      try {
        return structuredClone(runQuery(view, method, args));
      } catch (err) {
        if (!(err instanceof MissingKeys)) throw err;
        invariant(round < maxPrefetchRounds, `query ${method} still asks for state after ${round} fetches`);
        await view.fetch(err);
      }
    }
  }

  members(): Promise<MemberRecord[]> {
    return this.read(() => listOf<MemberRecord>(this.mirror, Table.Member));
  }

  /** Reads answer from the mirror, as copies: the mirror's objects must never be edited from outside. */
  private read<T>(fn: () => T): Promise<T> {
    try {
      this.checkOpen();
      return Promise.resolve(structuredClone(fn()));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async snapshot(): Promise<{ index: number; data: Uint8Array }> {
    this.checkOpen();
    // The snapshot reads the database: it must hold every applied record first.
    await this.settleWrite();
    // One iterator reads from one implicit LevelDB snapshot, so the entries and the applied index
    // they carry belong to the same moment even while apply() goes on.
    const writer = new SnapshotWriter();
    let index = 0;
    const appliedKey = Buffer.from(keyOf(Table.Meta, metaApplied), 'utf8');
    for await (const [key, value] of this.db.iterator<Buffer, Buffer>({ keyEncoding: 'buffer', valueEncoding: 'buffer' })) {
      writer.add(key, value);
      if (key.equals(appliedKey)) index = JSON.parse(value.toString('utf8')) as number;
    }
    return { index, data: writer.finish(index) };
  }

  restore(index: number, data: Uint8Array): Promise<void> {
    return this.exclusive(async () => {
      await this.settleWrite();
      const snap = openSnapshot(data);
      if (snap.index !== index) {
        throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot holds index ${snap.index}, not ${index}`,
          { hint: 'pass the index the snapshot was taken at' });
      }
      for (const e of snap.entries()) splitKey(e.key.toString('utf8'));
      await Promise.all(this.readers);
      await this.restoreBatch(snap.entries);
      this.cache.clear();
      this.mirror.clear();
      const hot: [string, string][] = [];
      for (const e of snap.entries()) {
        const key = e.key.toString('utf8');
        if (!isColdKey(key)) hot.push([key, e.value.toString('utf8')]);
      }
      this.mirror.commit(hot);
      invariant(appliedIndexOf(this.mirror) === index, `restored state reports index ${appliedIndexOf(this.mirror)}, expected ${index}`);
    });
  }

  /**
   * The database becomes the snapshot in ONE chained batch (LevelDB makes it all-or-nothing, so a
   * crash leaves the old state or the new, never a mix), built by walking the database's keys and
   * the snapshot's entries side by side (both in key order): keys the snapshot lacks are deleted,
   * its entries put as views into its buffer. No map of every key is held.
   */
  private async restoreBatch(entries: () => Generator<{ key: Buffer; value: Buffer }>): Promise<void> {
    const bin = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
    for (let attempt = 1; ; attempt += 1) {
      const batch = this.db.batch();
      try {
        const incoming = entries();
        let next = incoming.next();
        for await (const key of this.db.keys<Buffer>({ keyEncoding: 'buffer' })) {
          while (next.done !== true && Buffer.compare(next.value.key, key) < 0) {
            batch.put<Buffer, Buffer>(next.value.key, next.value.value, bin);
            next = incoming.next();
          }
          // An entry out of order is deleted here and put later in the batch: the later op wins.
          if (next.done === true || !next.value.key.equals(key)) batch.del<Buffer>(key, { keyEncoding: 'buffer' });
        }
        for (; next.done !== true; next = incoming.next()) batch.put<Buffer, Buffer>(next.value.key, next.value.value, bin);
        await batch.write();
        return;
      } catch (err) {
        await batch.close().catch(() => undefined);
        if (attempt >= this.batchAttempts) {
          throw new GalleonError(ErrorCode.IO_ERROR, `state database restore failed after ${attempt} attempts`,
            { cause: err, hint: 'check the disk holding the metadata directory' });
        }
        await new Promise((resolve) => setTimeout(resolve, this.batchRetryDelayMs * 2 ** (attempt - 1)));
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail.catch(() => undefined);
    await this.pendingWrite;
    // An unfinished transfer is dropped; a finished one stays for installRestored after a restart.
    if (this.staging !== null && !this.staging.finished) await this.staging.abort().catch(() => undefined);
    await this.db.close();
    await this.cleanup;
  }

  checkpoint(): Promise<number> {
    return this.exclusive(async () => {
      await this.settleWrite();
      const index = appliedIndexOf(this.mirror);
      // Rewrites the applied index with its own value: a synced write makes every earlier
      // (unsynced) batch durable too, without changing a byte of the state.
      if (index > 0) await this.db.put(keyOf(Table.Meta, metaApplied), JSON.stringify(index), { sync: true });
      return index;
    });
  }

  openSnapshotStream(maxChunkBytes = snapshotChunkBytes): Promise<SnapshotStream> {
    return this.exclusive(async () => {
      // The iterator reads one implicit LevelDB snapshot taken here, once the last batch landed
      // and before the next apply: its entries are exactly the state at `index`.
      await this.settleWrite();
      const index = appliedIndexOf(this.mirror);
      const encoder = new SnapshotChunkEncoder(index, maxChunkBytes);
      const it = this.db.iterator<Buffer, Buffer>({ keyEncoding: 'buffer', valueEncoding: 'buffer' });
      let closed = false;
      const close = async (): Promise<void> => {
        if (closed) return;
        closed = true;
        await it.close();
      };
      async function* chunks(): AsyncGenerator<Uint8Array> {
        try {
          for (let batch = await it.nextv(snapshotIteratorBatchEntries); batch.length > 0; batch = await it.nextv(snapshotIteratorBatchEntries)) {
            for (const [key, value] of batch) {
              const full = encoder.add(key, value);
              if (full !== null) yield full;
            }
          }
          yield encoder.finish();
        } finally {
          await close();
        }
      }
      return { index, chunks: chunks(), close };
    });
  }

  async beginRestore(index: number): Promise<SnapshotSink> {
    this.checkOpen();
    if (!Number.isSafeInteger(index) || index <= 0) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `snapshot index ${index} is not a positive integer`, { hint: 'pass the index the snapshot was taken at' });
    const previous = this.staging;
    this.staging = null;
    if (previous !== null && !previous.finished) await previous.abort();
    await dropStagingsUpTo(this.dir, this.appliedIndex());
    const sink = (await isStaged(this.dir, index)) ? new AlreadyStaged(index) : await StagedRestore.begin(this.dir, index);
    this.staging = sink;
    return sink;
  }

  installRestored(index: number): Promise<void> {
    return this.exclusive(async () => {
      await this.settleWrite();
      if (!(await isStaged(this.dir, index))) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `no finished staged snapshot at index ${index}`,
          { hint: 'receive the snapshot again from the leader' });
      }
      await Promise.all(this.readers);
      this.staging = null;
      await this.db.close();
      const old = await switchToStaged(this.dir, index);
      this.db = openDb(this.dir, this.options);
      await this.db.open();
      this.cache = new NsCache(this.db, this.options.nsCacheMaxEntries ?? defaultNsCacheMaxEntries);
      this.mirror.clear();
      await this.load();
      invariant(appliedIndexOf(this.mirror) === index, `installed state reports index ${appliedIndexOf(this.mirror)}, expected ${index}`);
      const previous = this.cleanup;
      this.cleanup = previous.then(async () => {
        await rm(old, { recursive: true, force: true });
        await dropStagingsUpTo(this.dir, index);
      }).catch(() => undefined);
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new GalleonError(ErrorCode.UNAVAILABLE, 'state machine is closed', { hint: 'open it again' }));
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private checkOpen(): void {
    if (this.closed) throw new GalleonError(ErrorCode.UNAVAILABLE, 'state machine is closed', { hint: 'open it again' });
  }

  /** Waits for the previous apply's batch; rethrows its failure (the database is behind the mirror). */
  private async settleWrite(): Promise<void> {
    await this.pendingWrite;
    if (this.writeFailure !== null) {
      throw new GalleonError(ErrorCode.IO_ERROR, 'an earlier state database write failed; the database is behind the applied state',
        { cause: this.writeFailure, hint: 'check the disk holding the metadata directory, then restart the member (the Raft log replays the rest)' });
    }
  }

  private async write(writes: Write[]): Promise<void> {
    await this.writeEncoded(encodeWrites(writes));
  }

  /** One atomic batch, then the mirror. */
  private async writeEncoded(writes: EncodedWrite[]): Promise<void> {
    await this.writeBatch(writes);
    this.mirror.commit(writes);
  }

  /** One atomic batch; a failing disk gets a few tries before the error surfaces. */
  private async writeBatch(writes: EncodedWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const ops: BatchOp[] = writes.map(([key, value]) => (value === undefined ? { type: 'del', key } : { type: 'put', key, value }));
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.db.batch(ops);
        break;
      } catch (err) {
        if (attempt >= this.batchAttempts) {
          throw new GalleonError(ErrorCode.IO_ERROR, `state database write failed after ${attempt} attempts`,
            { cause: err, hint: 'check the disk holding the metadata directory' });
        }
        await new Promise((resolve) => setTimeout(resolve, this.batchRetryDelayMs * 2 ** (attempt - 1)));
      }
    }
  }
}

type EncodedWrite = readonly [key: string, json: string | undefined];

function encodeWrites(writes: Write[]): EncodedWrite[] {
  return writes.map(([key, v]) => [key, v === undefined ? undefined : JSON.stringify(v)] as const);
}
