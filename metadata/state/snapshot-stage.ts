/**
 * A received snapshot is built in a staging database beside the live one (`<dir>.staging-<index>`),
 * one LevelDB batch per chunk as the chunks arrive, so neither the snapshot nor a batch of the
 * whole state is ever held in memory, and the live state keeps serving meanwhile. Once the last
 * chunk is in, a marker file says the staging database is complete. Installing it is two renames
 * (`<dir>` → `<dir>.old`, staging → `<dir>`) under a `<dir>.switch` file naming the index;
 * `recoverDirs()` at open finishes or undoes a switch a crash interrupted, so a crash leaves the
 * old state or the new one, never a mix. One staging per index: a new transfer (another index)
 * never deletes a finished staging that Raft may be about to install; the same index again
 * reuses the finished one.
 */
import { ClassicLevel } from 'classic-level';
import { open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { SnapshotSink } from './contract.js';
import { keyOf, Table, tables } from './logic/tx.js';
import { metaApplied } from './logic/apply.js';
import { decodeSnapshotChunk } from './snapshot-codec.js';

const markerName = 'GALLEON-STAGED';
export const stagingDirOf = (dir: string, index: number): string => `${dir}.staging-${index}`;
export const oldDirOf = (dir: string): string => `${dir}.old`;
const switchFileOf = (dir: string): string => `${dir}.switch`;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function fsyncPath(path: string): Promise<void> {
  const h = await open(path, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** True when the staging of `index` beside `dir` is complete. */
export async function isStaged(dir: string, index: number): Promise<boolean> {
  try {
    return JSON.parse(await readFile(join(stagingDirOf(dir, index), markerName), 'utf8')) === index;
  } catch {
    return false;
  }
}

/** Indexes of the staging directories beside `dir` (finished or not). */
async function stagings(dir: string): Promise<number[]> {
  const prefix = `${basename(dir)}.staging-`;
  const names = await readdir(dirname(dir)).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(prefix)).map((n) => Number(n.slice(prefix.length))).filter((n) => Number.isSafeInteger(n));
}

/** Before opening `dir`: finishes or undoes an interrupted switch, drops unfinished stagings. */
export async function recoverDirs(dir: string): Promise<void> {
  const old = oldDirOf(dir);
  if (await exists(old)) {
    if (!(await exists(dir))) {
      // Crashed between the two renames: finish the switch if its staged state is complete.
      const index = Number(await readFile(switchFileOf(dir), 'utf8').catch(() => 'NaN'));
      await rename(Number.isSafeInteger(index) && (await isStaged(dir, index)) ? stagingDirOf(dir, index) : old, dir);
    }
    await rm(old, { recursive: true, force: true });
  }
  await rm(switchFileOf(dir), { force: true });
  await rm(join(dir, markerName), { force: true });
  for (const index of await stagings(dir)) {
    if (!(await isStaged(dir, index))) await rm(stagingDirOf(dir, index), { recursive: true, force: true });
  }
}

/** Deletes the finished stagings at or below `applied` (Raft never installs those). */
export async function dropStagingsUpTo(dir: string, applied: number): Promise<void> {
  for (const index of await stagings(dir)) {
    if (index <= applied) await rm(stagingDirOf(dir, index), { recursive: true, force: true });
  }
}

/** Makes the complete staging of `index` the live database; returns the old directory, to delete. */
export async function switchToStaged(dir: string, index: number): Promise<string> {
  const old = oldDirOf(dir);
  await rm(old, { recursive: true, force: true });
  await writeFile(switchFileOf(dir), String(index));
  await fsyncPath(switchFileOf(dir));
  await rename(dir, old);
  await rename(stagingDirOf(dir, index), dir);
  await fsyncPath(dirname(dir));
  await rm(switchFileOf(dir), { force: true });
  await rm(join(dir, markerName), { force: true });
  return old;
}

function corrupt(what: string): GalleonError {
  return new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `state snapshot stream is broken: ${what}`, { hint: 'the transfer restarts from the leader' });
}

/** Receives one snapshot into `<dir>.staging-<index>`, a chunk per LevelDB batch. */
export class StagedRestore implements SnapshotSink {
  private nextSeq = 0;
  private index: number | null = null;
  private lastSeen = false;
  private done = false;

  private constructor(private readonly stagingDir: string, private readonly expected: number, private readonly db: ClassicLevel<Buffer, Buffer>) {}

  static async begin(dir: string, index: number): Promise<StagedRestore> {
    const stagingDir = stagingDirOf(dir, index);
    await rm(stagingDir, { recursive: true, force: true });
    const db = new ClassicLevel<Buffer, Buffer>(stagingDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    return new StagedRestore(stagingDir, index, db);
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.done) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this snapshot transfer is already finished or abandoned', { hint: 'begin a new restore' });
    const chunk = decodeSnapshotChunk(data);
    if (this.lastSeen) throw corrupt(`chunk ${chunk.seq} after the last one`);
    if (chunk.seq !== this.nextSeq) throw corrupt(`chunk ${chunk.seq} where ${this.nextSeq} was expected`);
    if (chunk.index !== this.expected) throw corrupt(`chunk of index ${chunk.index} in a snapshot of index ${this.expected}`);
    const batch = this.db.batch();
    try {
      for (const e of chunk.entries()) {
        const slash = e.key.indexOf(0x2f);
        if (slash <= 0 || !(tables as readonly string[]).includes(e.key.subarray(0, slash).toString('utf8'))) throw corrupt(`unknown key ${JSON.stringify(e.key.toString('utf8'))}`);
        batch.put(e.key, e.value);
      }
      // The last chunk's batch is synced: LevelDB then has every earlier batch on disk too.
      await batch.write({ sync: chunk.last });
    } catch (err) {
      await batch.close().catch(() => undefined);
      throw err;
    }
    this.index = chunk.index;
    this.nextSeq += 1;
    this.lastSeen = chunk.last;
  }

  async finish(): Promise<number> {
    if (!this.lastSeen || this.index === null || this.done) throw corrupt('the last chunk never came');
    const applied = await this.db.get(Buffer.from(keyOf(Table.Meta, metaApplied)));
    if (applied === undefined || Number(applied.toString('utf8')) !== this.index) {
      throw corrupt(`the state says applied index ${applied?.toString('utf8') ?? 'none'}, the chunks ${this.index}`);
    }
    this.done = true;
    await this.db.close();
    const marker = join(this.stagingDir, markerName);
    await writeFile(marker, JSON.stringify(this.index));
    await fsyncPath(marker);
    await fsyncPath(this.stagingDir);
    return this.index;
  }

  /** True once finish() made the staged state complete (a close then keeps it for installRestored). */
  get finished(): boolean {
    return this.done && this.lastSeen;
  }

  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.db.close().catch(() => undefined);
    }
    await rm(this.stagingDir, { recursive: true, force: true });
  }
}

/** The snapshot at this index is staged already (a repeated transfer): chunks are checked and dropped. */
export class AlreadyStaged implements SnapshotSink {
  private nextSeq = 0;
  private lastSeen = false;
  readonly finished = true;

  constructor(private readonly index: number) {}

  write(data: Uint8Array): Promise<void> {
    const chunk = decodeSnapshotChunk(data);
    if (chunk.seq !== this.nextSeq || chunk.index !== this.index || this.lastSeen) return Promise.reject(corrupt(`chunk ${chunk.seq} of index ${chunk.index} out of place`));
    this.nextSeq += 1;
    this.lastSeen = chunk.last;
    return Promise.resolve();
  }

  finish(): Promise<number> {
    return this.lastSeen ? Promise.resolve(this.index) : Promise.reject(corrupt('the last chunk never came'));
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }
}
