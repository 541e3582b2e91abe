/**
 * The mount manager of a node (the daemon's vfs part). With a mount point it keeps every volume
 * of the cluster mounted at `<mountPoint>/<volume-name>`: it reads the volume table, applies
 * `planMounts`, then long-polls the metadata service (`waitForChange`) and does it again —
 * a watch, not a polling loop. At start it clears dead mounts a killed process left under the
 * mount point; at stop it unmounts everything it mounted (and nothing else). Explicit mounts
 * (`vfs mount`, `volume mount`) go through the same table, marked `auto: false`. The watch runs
 * without a mount point too: at each wake the manager answers the flush requests a snapshot made
 * for the volumes it mounts (metadata/state/logic/ns-flush.ts).
 *
 * Access modes: a mount takes a mount lease first. A volume it may not mount (a ReadWriteOnce
 * volume mounted on another node) is skipped and reported as `refused` with the reason; it is
 * tried again at the next change of the volume table. ReadOnlyMany volumes mount read-only.
 */
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { maxMountCacheTimeoutSec } from '../../proto/limits.js';
import type { MetadataApi, Volume } from '../../proto/metadata-types.js';
import type { BlockClient } from '../../dataplane/client/block-client.js';
import { clearStaleMount } from '../fuse/index.js';
import { describeRefusal, mountVolume, type VolumeMount } from '../fs/index.js';
import { autoMountAccess, mountPrincipal, planMounts, safeComponent } from './plan.js';
import type { MountInfo, MountState } from '../../proto/vfs-types.js';
export type { MountInfo, MountState } from '../../proto/vfs-types.js';

/** One long poll waits at most this long before the table is read again anyway. */
export const watchTimeoutMs = 30_000;
/** After a failed round (no leader, network), wait this long before the next. */
export const retryDelayMs = 1_000;
/** Flush requests answered at once (one per mounted volume: a node mounts a volume once). */
export const maxFlushesAnswering = 256;

export interface WatchClient {
  waitForChange(sinceIndex: number, timeoutMs: number): Promise<{ index: number; changed: boolean }>;
}

export interface MountManagerOptions {
  nodeId: string;
  mountPoint: string | null;
  api: () => MetadataApi;
  watch: () => WatchClient;
  blocks: () => BlockClient;
  cacheTimeoutSec?: number;
  log: Logger;
}


interface Entry { mount: VolumeMount; auto: boolean }

export class MountManager {
  private readonly mounts = new Map<string, Entry>();
  private readonly refused = new Map<string, MountInfo>();
  /** Volumes unmounted by request: not auto-mounted again until mounted by request or restart. */
  private readonly heldBack = new Set<string>();
  private running = false;
  private loop: Promise<void> | null = null;
  /** Serializes every change of the mount table (watch rounds and admin requests). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Flush requests being answered (`session:seq`): a watch wake while one runs does not start it twice. */
  private readonly answering = new Set<string>();

  constructor(private readonly o: MountManagerOptions) {}

  get mountPoint(): string | null {
    return this.o.mountPoint;
  }

  /** Without a mount point the watch still runs: explicit mounts answer flush requests before snapshots. */
  async start(): Promise<void> {
    const mp = this.o.mountPoint;
    if (mp !== null) {
      await mkdir(mp, { recursive: true });
      for (const name of await readdir(mp)) {
        if (await clearStaleMount(join(mp, name)).catch(() => false)) this.o.log.warn({ dir: join(mp, name) }, 'cleared a dead mount left by a killed daemon');
      }
    }
    this.running = true;
    this.loop = this.watchLoop(mp);
  }

  private async watchLoop(mp: string | null): Promise<void> {
    let since = 0;
    while (this.running) {
      try {
        const w = await this.o.watch().waitForChange(since, since === 0 ? 0 : watchTimeoutMs);
        if (!this.running) break;
        since = w.index;
        if (mp !== null) await this.serial(() => this.reconcile(mp));
        await this.answerFlushes().catch((err: unknown) => this.o.log.debug({ err }, 'reading flush requests failed; the next change retries'));
      } catch (err) {
        this.o.log.debug({ err }, 'mount manager round failed; retrying');
        since = 0;
        await new Promise((r) => setTimeout(r, retryDelayMs));
      }
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * A snapshot's daemon asked every mount of a volume to flush (metadata/state/logic/ns-flush.ts):
   * ours flushes what `vfs sync` flushes (write-back files and dirty blocks of open files) and
   * answers, with the error when the flush failed. Not awaited: the watch goes on meanwhile.
   */
  private async answerFlushes(): Promise<void> {
    if (this.mounts.size === 0) return;
    for (const req of await this.o.api().fsFlushRequests()) {
      const e = this.mounts.get(req.volumeId);
      const session = e?.mount.session?.();
      if (e === undefined || session === undefined || !req.waiting.includes(session)) continue;
      const key = `${session}:${req.seq}`;
      if (this.answering.has(key) || this.answering.size >= maxFlushesAnswering) continue;
      this.answering.add(key);
      void this.answerFlush(e, session, req.seq).finally(() => this.answering.delete(key));
    }
  }

  private async answerFlush(e: Entry, session: string, seq: number): Promise<void> {
    const volume = e.mount.volume;
    const error = await e.mount.sync().then(
      (files) => { this.o.log.info({ volume: volume.name, seq, files }, 'mount flushed for a snapshot'); return null; },
      (err: unknown) => { this.o.log.warn({ err, volume: volume.name, seq }, 'flush for a snapshot failed'); return `node ${this.o.nodeId}: ${(err as Error).message}`; },
    );
    await this.o.api().fsFlushAck(volume.id, session, seq, error)
      .catch((err: unknown) => this.o.log.warn({ err, volume: volume.name, seq }, 'answering a flush request failed; the snapshot waits until its bound'));
  }

  private async reconcile(mp: string): Promise<void> {
    const volumes = await this.o.api().listVolumes();
    const mounted = [...this.mounts.entries()].map(([volumeId, e]) => ({ volumeId, dir: e.mount.dir, auto: e.auto, readOnly: e.mount.readOnly }));
    const principal = mountPrincipal(this.o.nodeId);
    const plan = planMounts(mp, volumes.filter((v) => !this.heldBack.has(v.id)), mounted, (v) => autoMountAccess(principal, v));
    for (const m of plan.unmount) await this.unmountEntry(m.volumeId, true);
    const live = new Set(volumes.map((v) => v.id));
    for (const id of this.refused.keys()) if (!live.has(id)) this.refused.delete(id);
    for (const { volume, dir } of plan.denied) this.denyByPolicy(volume, dir);
    for (const { volume, dir, readOnly } of plan.mount) {
      await mkdir(dir, { recursive: true });
      // Refused (ReadWriteOnce held elsewhere) or failed: no empty directory left that looks mounted.
      await this.mountOne(volume, dir, readOnly, true).catch(() => rmdir(dir).catch(() => undefined));
    }
  }

  /** A volume whose access policy gives this node's mounts no access: listed as refused, logged once per volume version. */
  private denyByPolicy(volume: Volume, dir: string): void {
    const error = `the access policy of volume ${volume.name} gives this node's mounts (user ${this.o.nodeId}, role operator) no access`;
    const was = this.refused.get(volume.id);
    if (was?.error !== error) this.o.log.warn({ volume: volume.name, version: volume.version }, `${error}: not mounted`);
    this.refused.set(volume.id, { volume: volume.name, volumeId: volume.id, mountPoint: dir, mode: 'rw', raw: false, auto: true, state: 'refused', error, mountedAtMs: null });
  }

  private async mountOne(volume: Volume, dir: string, readOnly: boolean, auto: boolean, raw = false, cacheTimeoutSec = this.o.cacheTimeoutSec): Promise<MountInfo> {
    try {
      const mount = await mountVolume({
        api: this.o.api(), blocks: this.o.blocks(), volume, dir, readOnly, raw, holder: this.o.nodeId, log: this.o.log,
        ...(cacheTimeoutSec === undefined ? {} : { cacheTimeoutSec }),
      });
      this.mounts.set(volume.id, { mount, auto });
      this.refused.delete(volume.id);
      this.o.log.info({ volume: volume.name, dir, readOnly }, 'volume mounted');
      return this.info(volume.id, { mount, auto });
    } catch (err) {
      const e = describeRefusal(err, volume.name);
      const state: MountState = e.code === ErrorCode.LEASE_CONFLICT ? 'refused' : 'failed';
      // Every metadata change retries a refused auto-mount: say it once, not on every retry.
      const again = this.refused.get(volume.id)?.error === e.message;
      this.refused.set(volume.id, {
        volume: volume.name, volumeId: volume.id, mountPoint: dir, mode: readOnly ? 'ro' : 'rw', raw, auto, state, error: e.message, mountedAtMs: null,
      });
      this.o.log[again ? 'debug' : 'warn']({ volume: volume.name, dir, err: e }, 'volume not mounted');
      throw e;
    }
  }

  private async unmountEntry(volumeId: string, removeDir: boolean): Promise<MountInfo | null> {
    const e = this.mounts.get(volumeId);
    if (e === undefined) return null;
    const info = this.info(volumeId, e);
    await e.mount.unmount();
    this.mounts.delete(volumeId);
    if (removeDir && e.auto) await rmdir(e.mount.dir).catch(() => undefined);
    this.o.log.info({ volume: e.mount.volume.name, dir: e.mount.dir }, 'volume unmounted');
    return info;
  }

  private info(volumeId: string, e: Entry): MountInfo {
    return {
      volume: e.mount.volume.name, volumeId, mountPoint: e.mount.dir, mode: e.mount.readOnly ? 'ro' : 'rw', raw: e.mount.raw, auto: e.auto,
      state: 'mounted', error: null, mountedAtMs: e.mount.mountedAtMs,
    };
  }

  // ---- admin requests -----------------------------------------------------------------------

  list(): MountInfo[] {
    const out = [...this.mounts.entries()].map(([id, e]) => this.info(id, e));
    out.push(...this.refused.values());
    return out.sort((a, b) => a.volume.localeCompare(b.volume));
  }

  /** Mounts `ref` at `dir` (explicit); `raw`: the volume as one file (vfs/fs/raw-fs.ts). */
  mount(ref: string, dir: string, readOnly: boolean, raw = false, cacheTimeoutSec?: number): Promise<MountInfo> {
    if (cacheTimeoutSec !== undefined && !(Number.isFinite(cacheTimeoutSec) && cacheTimeoutSec >= 0 && cacheTimeoutSec <= maxMountCacheTimeoutSec)) {
      return Promise.reject(new GalleonError(ErrorCode.INVALID_ARGUMENT, `cache timeout ${cacheTimeoutSec} is not a number of seconds from 0 to ${maxMountCacheTimeoutSec}`, { hint: `use 0 (always ask) to ${maxMountCacheTimeoutSec}, to the millisecond` }));
    }
    return this.serial(async () => {
      const volume = await this.o.api().getVolume(ref);
      if (!safeComponent(volume.name)) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `volume name ${volume.name} cannot be mounted`, { hint: 'rename it' });
      const existing = this.mounts.get(volume.id);
      if (existing !== undefined) {
        throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `volume ${volume.name} is already mounted on this node at ${existing.mount.dir}`, { hint: `unmount it first: galleon volume unmount ${volume.name}` });
      }
      if (volume.accessMode === 'ReadOnlyMany' && !readOnly) {
        throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `volume ${volume.name} is ReadOnlyMany and cannot be mounted read-write`, { hint: 'mount it with -o ro (or --readonly)' });
      }
      this.heldBack.delete(volume.id);
      return this.mountOne(volume, resolve(dir), readOnly, false, raw, cacheTimeoutSec);
    });
  }

  /** Unmounts by volume name/id or by mount point. */
  unmount(refOrPath: string): Promise<MountInfo> {
    return this.serial(async () => {
      const id = this.find(refOrPath);
      const info = await this.unmountEntry(id, false);
      if (info === null) throw notMounted(refOrPath);
      if (this.o.mountPoint !== null) this.heldBack.add(id);
      return info;
    });
  }

  status(ref: string): { info: MountInfo; mount: VolumeMount } {
    const id = this.find(ref);
    const e = this.mounts.get(id);
    if (e === undefined) throw notMounted(ref);
    return { info: this.info(id, e), mount: e.mount };
  }

  async sync(ref: string | null): Promise<{ volume: string; files: number }[]> {
    const ids = ref === null ? [...this.mounts.keys()] : [this.find(ref)];
    const out: { volume: string; files: number }[] = [];
    for (const id of ids) {
      const e = this.mounts.get(id);
      if (e !== undefined) out.push({ volume: e.mount.volume.name, files: await e.mount.sync() });
    }
    return out;
  }

  private find(refOrPath: string): string {
    const abs = resolve(refOrPath);
    for (const [id, e] of this.mounts) {
      if (e.mount.volume.name === refOrPath || id === refOrPath || e.mount.dir === abs) return id;
    }
    throw notMounted(refOrPath);
  }

  /** Unmounts everything this manager mounted (daemon stop, `galleon down`). */
  async stop(): Promise<void> {
    this.running = false;
    await this.serial(async () => {
      await Promise.all([...this.mounts.keys()].map((id) =>
        this.unmountEntry(id, false).catch((err: unknown) => this.o.log.warn({ err, volumeId: id }, 'unmount at stop failed'))));
    });
  }
}

function notMounted(ref: string): GalleonError {
  return new GalleonError(ErrorCode.MOUNT_NOT_FOUND, `${ref} is not mounted on this node`, { hint: 'see `galleon vfs list`' });
}
