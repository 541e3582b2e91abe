/**
 * A received snapshot is built in a staging database beside the live one (`<dir>.staging`), one
 * LevelDB batch per chunk as the chunks arrive, so neither the snapshot nor a batch of the whole
 * state is ever held in memory, and the live state keeps serving meanwhile. Once the last chunk
 * is in, a marker file (holding the index) says the staging database is complete; installing it
 * is two renames (`<dir>` → `<dir>.old`, staging → `<dir>`). `recoverDirs()` at open finishes or
 * undoes a switch a crash interrupted, so a crash leaves the old state or the new one, never a mix.
 */
import { ClassicLevel } from 'classic-level';
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import type { SnapshotSink } from './contract.js';
import { keyOf, Table, tables } from './logic/tx.js';
import { metaApplied } from './logic/apply.js';
import { decodeSnapshotChunk } from './snapshot-codec.js';

const markerName = 'GALLEON-STAGED';
export const stagingDirOf = (dir: string): string => `${dir}.staging`;
export const oldDirOf = (dir: string): string => `${dir}.old`;

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

/** The index of the complete staged snapshot beside `dir`, or null (none, or unfinished). */
export async function stagedIndex(dir: string): Promise<number | null> {
  try {
    const n = JSON.parse(await readFile(join(stagingDirOf(dir), markerName), 'utf8')) as unknown;
    return typeof n === 'number' && Number.isSafeInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/** Before opening `dir`: finishes an interrupted switch, drops an unfinished staging database. */
export async function recoverDirs(dir: string): Promise<void> {
  const old = oldDirOf(dir);
  if (await exists(old)) {
    if (!(await exists(dir))) {
      // Crashed between the two renames: finish the switch if the staged state is complete.
      await rename((await stagedIndex(dir)) !== null ? stagingDirOf(dir) : old, dir);
    }
    await rm(old, { recursive: true, force: true });
  }
  await rm(join(dir, markerName), { force: true });
  if ((await stagedIndex(dir)) === null) await rm(stagingDirOf(dir), { recursive: true, force: true });
}

/** Makes the complete staged database the live one; returns the old directory, to delete. */
export async function switchToStaged(dir: string): Promise<string> {
  const old = oldDirOf(dir);
  await rm(old, { recursive: true, force: true });
  await rename(dir, old);
  await rename(stagingDirOf(dir), dir);
  await fsyncPath(dirname(dir));
  await rm(join(dir, markerName), { force: true });
  return old;
}

function corrupt(what: string): GalleonError {
  return new GalleonError(ErrorCode.CHECKSUM_MISMATCH, `state snapshot stream is broken: ${what}`, { hint: 'the transfer restarts from the leader' });
}

/** Receives one snapshot into `<dir>.staging`, a chunk per LevelDB batch. */
export class StagedRestore implements SnapshotSink {
  private nextSeq = 0;
  private index: number | null = null;
  private lastSeen = false;
  private done = false;

  private constructor(private readonly stagingDir: string, private readonly db: ClassicLevel<Buffer, Buffer>) {}

  static async begin(dir: string): Promise<StagedRestore> {
    const stagingDir = stagingDirOf(dir);
    await rm(stagingDir, { recursive: true, force: true });
    const db = new ClassicLevel<Buffer, Buffer>(stagingDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    return new StagedRestore(stagingDir, db);
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.done) throw new GalleonError(ErrorCode.FAILED_PRECONDITION, 'this snapshot transfer is already finished or abandoned', { hint: 'begin a new restore' });
    const chunk = decodeSnapshotChunk(data);
    if (this.lastSeen) throw corrupt(`chunk ${chunk.seq} after the last one`);
    if (chunk.seq !== this.nextSeq) throw corrupt(`chunk ${chunk.seq} where ${this.nextSeq} was expected`);
    if (this.index !== null && chunk.index !== this.index) throw corrupt(`chunk of index ${chunk.index} in a snapshot of index ${this.index}`);
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
