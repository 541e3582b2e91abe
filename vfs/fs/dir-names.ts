/**
 * Complete name sets of directories this mount knows: one it made (empty), one it listed, kept
 * up to date with its own changes. A name missing from a set known complete less than `ttlMs`
 * ago (the mount's entry timeout) is answered ENOENT without a round trip: a name another node
 * made since is allowed to show up to `ttlMs` later (the kernel's own negative entries last that
 * long too). `open(O_CREAT)` looks the name up first, so each new file saved a lookup round trip.
 * A set older than that is refreshed by listing the directory again (the caller's job), never
 * trusted. ttl 0 (strict) tracks nothing. Pure: the clock is passed in.
 */
import { invariant } from '../../proto/errors.js';

/** Directories tracked at most (least recently used out). */
export const maxTrackedDirs = 256;
/** A directory with more names is not tracked (a refresh would list it all). */
export const maxTrackedNames = 16_384;
/** Names held over all tracked directories (least recently tracked directories out). */
export const maxTotalNames = 65_536;
/**
 * Lookups that missed under one untracked directory within a ttl after which it is listed and
 * tracked: a scan (`stat` of every entry) then costs one listing per ttl, not a lookup per name.
 */
export const scanMisses = 256;
/** A directory found too large to track is not tried again for this long. */
export const tooLargeRetryMs = 60_000;

interface Dir {
  ino: number;
  names: Set<string>;
  /** The set was complete as of this time (when the listing that made it was asked). */
  asOfMs: number;
  /** This mount's changes since the oldest listing in flight started, replayed onto each listing. */
  sinceRefresh: { name: string; present: boolean }[] | null;
  /** Listings in flight: the log is kept until the last of them lands. */
  inflight: number;
}

export class DirNames {
  private readonly dirs = new Map<string, Dir>();
  private readonly misses = new Map<string, { count: number; sinceMs: number }>();
  private readonly tooLarge = new Map<string, number>();
  private total = 0;

  constructor(private readonly ttlMs: number, private readonly nowMs: () => number, private readonly maxDirs = maxTrackedDirs) {
    invariant(ttlMs >= 0 && maxDirs >= 1, `dir names ttl ${ttlMs} ms, ${maxDirs} dirs`);
  }

  get size(): number {
    return this.dirs.size;
  }

  /** `path` (inode `ino`) held exactly `names` as of `asOfMs`. */
  known(path: string, ino: number, names: Iterable<string>, asOfMs: number): void {
    if (this.ttlMs === 0) return;
    const set = new Set(names);
    const before = this.dirs.get(path);
    const same = before?.ino === ino;
    if (same && before.sinceRefresh !== null) {
      for (const c of before.sinceRefresh) if (c.present) set.add(c.name); else set.delete(c.name);
    }
    const inflight = same ? Math.max(0, before.inflight - 1) : 0;
    this.drop(path);
    if (set.size > maxTrackedNames) return;
    // Another listing still in flight may predate changes this one saw: keep the log for it.
    this.dirs.set(path, { ino, names: set, asOfMs, sinceRefresh: inflight > 0 ? before!.sinceRefresh : null, inflight });
    this.total += set.size;
    while (this.dirs.size > this.maxDirs || this.total > maxTotalNames) {
      const oldest = this.dirs.keys().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
    invariant(this.total >= 0 && this.total <= maxTotalNames, `dir names hold ${this.total} names`);
  }

  private drop(path: string): void {
    const d = this.dirs.get(path);
    if (d === undefined) return;
    this.total -= d.names.size;
    this.dirs.delete(path);
  }

  /** True when `name` is surely not in `path` as of less than the ttl ago. */
  absent(path: string, ino: number, name: string): boolean {
    const d = this.dirs.get(path);
    if (d === undefined || d.ino !== ino || this.nowMs() - d.asOfMs >= this.ttlMs) return false;
    return !d.names.has(name);
  }

  /** Whether `path` is tracked but its set is too old to answer (a refresh would pay). */
  stale(path: string, ino: number): boolean {
    const d = this.dirs.get(path);
    return d !== undefined && d.ino === ino && this.nowMs() - d.asOfMs >= this.ttlMs;
  }

  /**
   * A refresh listing of `path` starts: this mount's changes from now on are replayed onto it.
   * An untracked directory gets a placeholder that answers nothing until the listing lands.
   */
  refreshing(path: string, ino: number): void {
    if (this.ttlMs === 0) return;
    const d = this.dirs.get(path);
    if (d !== undefined && d.ino === ino) {
      d.sinceRefresh ??= [];
      d.inflight++;
    } else {
      this.drop(path);
      this.dirs.set(path, { ino, names: new Set(), asOfMs: -Infinity, sinceRefresh: [], inflight: 1 });
    }
  }

  /** This mount made or removed `name` in `path`. */
  changed(path: string, name: string, present: boolean): void {
    const d = this.dirs.get(path);
    if (d === undefined) return;
    const before = d.names.size;
    if (present) d.names.add(name); else d.names.delete(name);
    this.total += d.names.size - before;
    d.sinceRefresh?.push({ name, present });
    if (d.names.size > maxTrackedNames || this.total > maxTotalNames || (d.sinceRefresh?.length ?? 0) > maxTrackedNames) this.drop(path);
  }

  /** `path` and every directory under it moved or went (their paths no longer name them). */
  dropTree(path: string): void {
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const k of [...this.dirs.keys()]) if (k === path || k.startsWith(prefix)) this.drop(k);
  }

  /** Forget `path` (a refresh failed, or found it too large: then it is not tried for a while). */
  forget(path: string, large = false): void {
    this.drop(path);
    if (!large) return;
    this.tooLarge.set(path, this.nowMs() + tooLargeRetryMs);
    if (this.tooLarge.size > this.maxDirs) this.tooLarge.delete(this.tooLarge.keys().next().value!);
  }

  /** A lookup under untracked `path` went to the namespace; true when it is time to track it. */
  missed(path: string): boolean {
    if (this.ttlMs === 0) return false;
    const now = this.nowMs();
    const until = this.tooLarge.get(path);
    if (until !== undefined && until > now) return false;
    const m = this.misses.get(path);
    if (m === undefined || now - m.sinceMs >= this.ttlMs) {
      this.misses.delete(path);
      this.misses.set(path, { count: 1, sinceMs: now });
      if (this.misses.size > this.maxDirs) this.misses.delete(this.misses.keys().next().value!);
      return false;
    }
    m.count++;
    if (m.count < scanMisses) return false;
    this.misses.delete(path);
    return true;
  }
}
