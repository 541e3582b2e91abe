/**
 * `galleon down --purge`: removes only what `galleon up` made. `up` writes a marker file
 * (`.galleon-up.json`) into a cluster folder, saying whether it created the folder itself. Purge
 * removes the node folders named in cluster.json (only direct children of the folder, named as
 * `up` names them), cluster.json (and its .tmp), and the marker; then the folder itself only when
 * `up` created it and nothing else is left in it. A file of the user's is never touched, and the
 * folder holding it stays.
 *
 * A folder from before the marker existed (cluster.json, no marker) is taken as made by `up`:
 * cluster.json is only ever written by `up`, and its node folders are the daemons' own. A folder
 * with neither is not a cluster folder: nothing is removed.
 */
import { lstat, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export const markerFileName = '.galleon-up.json';
/** The folder of a local cluster's CA and client certificate (cli/lib/tls.ts localCaDir, localClientTlsDir). */
export const localTlsFolderName = 'tls';
/** The folder of the nodes' mount points (cluster.ts `mountDirName`): only emptied folders go. */
const mountsFolderName = 'mnt';
/** What `up` names its node folders (cluster.ts): anything else in the folder is not ours. */
const nodeFolderPattern = /^node\d{1,2}$/;

export interface UpMarker {
  /** `up` made the folder (it did not exist or was empty), so purge may remove it once it is empty. */
  createdDir: boolean;
  createdAtMs: number;
}

export interface PurgeResult {
  /** The folder itself was removed. */
  removedDir: boolean;
  /** Entries of the folder that were removed (names, not paths). */
  removed: string[];
  /** Entries left because galleon did not make them. */
  kept: string[];
}

/** True when `dir` does not exist or is empty: `up` may then call the folder its own. */
export async function isAbsentOrEmpty(dir: string): Promise<boolean> {
  const entries = await entriesOf(dir);
  return entries === null || entries.length === 0;
}

export async function writeUpMarker(dir: string, marker: UpMarker): Promise<void> {
  await writeFile(join(dir, markerFileName), `${JSON.stringify(marker)}\n`, { flag: 'wx' });
}

async function readMarker(dir: string): Promise<UpMarker | null> {
  try {
    const raw = JSON.parse(await readFile(join(dir, markerFileName), 'utf8')) as Partial<UpMarker>;
    return { createdDir: raw.createdDir === true, createdAtMs: Number(raw.createdAtMs ?? 0) };
  } catch {
    return null;
  }
}

async function entriesOf(dir: string): Promise<string[] | null> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

/** The entries of `dir` that `up` made, given the node storage paths cluster.json names. */
export function ownedEntries(dir: string, entries: readonly string[], nodeStoragePaths: readonly string[], hasMarker: boolean): string[] {
  const nodeFolders = new Set(nodeStoragePaths
    .map((p) => resolve(dir, p))
    .filter((p) => dirname(p) === resolve(dir) && nodeFolderPattern.test(basename(p)))
    .map((p) => basename(p)));
  // node-token and admin-token (issue #12) are written only by `up` and its daemons, like cluster.json;
  // tls: the local CA and the operator's certificate (cluster.ts ensureLocalPki).
  const files = new Set(['cluster.json', 'cluster.json.tmp', localTlsFolderName, ...(hasMarker ? [markerFileName, 'cluster.key', 'node-token', 'admin-token'] : [])]);
  return entries.filter((e) => nodeFolders.has(e) || files.has(e));
}

/** Removes what `up` made in `dir` (see the header); `nodeStoragePaths` from cluster.json, null when there is none. */
export async function purgeClusterDir(dir: string, nodeStoragePaths: readonly string[] | null): Promise<PurgeResult> {
  const entries = await entriesOf(dir);
  if (entries === null) return { removedDir: false, removed: [], kept: [] };
  const marker = await readMarker(dir);
  if (marker === null && nodeStoragePaths === null) return { removedDir: false, removed: [], kept: entries };
  // Without cluster.json (an `up` that failed early), a folder `up` created holds only its own node folders.
  const nodePaths = nodeStoragePaths ?? (marker?.createdDir === true ? entries.filter((e) => nodeFolderPattern.test(e)) : []);
  // Mount points: a daemon killed with -9 can leave one mounted, and a recursive rm would walk
  // into the volume and delete its files. Only empty folders are removed; while one stays, so
  // does the marker, so that a later purge still knows the folder as ours.
  const mountsLeft = entries.includes(mountsFolderName) && !(await removeEmptyFolders(join(dir, mountsFolderName)));
  const owned = ownedEntries(dir, entries, nodePaths, marker !== null && !mountsLeft);
  for (const e of owned) await rm(join(dir, e), { recursive: true, force: true });
  if (entries.includes(mountsFolderName) && !mountsLeft) owned.push(mountsFolderName);
  const kept = entries.filter((e) => !owned.includes(e));
  // A folder from before the marker was made by `up` too (it wrote cluster.json into it).
  const mayRemoveDir = kept.length === 0 && (marker?.createdDir ?? true);
  if (mayRemoveDir) await rmdir(dir);
  return { removedDir: mayRemoveDir, removed: owned, kept };
}

/**
 * Removes `path` and the folders below it when they hold nothing but folders: never a file, and
 * never anything on another device (a live mount: its folders are the volume's). True when
 * `path` is gone.
 */
async function removeEmptyFolders(path: string, device?: number): Promise<boolean> {
  try {
    const st = await lstat(path);
    if (!st.isDirectory() || (device !== undefined && st.dev !== device)) return false;
    for (const e of await readdir(path)) await removeEmptyFolders(join(path, e), st.dev);
    await rmdir(path);
    return true;
  } catch {
    return false; // not empty, a mount (EBUSY), a dead mount (ENOTCONN): left where it is
  }
}
