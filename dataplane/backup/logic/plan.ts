/**
 * Which earlier backup a new one is compared with, and what each block of it costs. Pure: the
 * engine (../engine.ts) reads and hashes a block, asks here, and acts on the verdict.
 *
 *  - full: compared with nothing; every block is "changed" (carried by this backup).
 *  - incremental: compared with the newest complete backup of the volume on the target.
 *  - differential: compared with the newest complete FULL backup of the volume on the target.
 * With no such backup, incremental and differential fall back to full (the result says so).
 * Whatever the strategy, an object is uploaded only when no complete manifest on the target
 * names its hash and this run has not uploaded it yet: content-addressed, never twice.
 */
import type { BlockEntry, Strategy } from './manifest.js';

export interface PriorBackup {
  id: string;
  strategy: Strategy;
  createdAtMs: number;
  blocks: Readonly<Record<string, BlockEntry>>;
}

export interface ParentChoice {
  strategy: Strategy;
  parent: PriorBackup | null;
}

/** `prior`: the complete backups of this volume on this target, any order. */
export function chooseParent(requested: Strategy, prior: readonly PriorBackup[]): ParentChoice {
  if (requested === 'full') return { strategy: 'full', parent: null };
  const candidates = requested === 'differential' ? prior.filter((b) => b.strategy === 'full') : prior;
  let best: PriorBackup | null = null;
  for (const b of candidates) {
    if (best === null || b.createdAtMs > best.createdAtMs || (b.createdAtMs === best.createdAtMs && b.id > best.id)) best = b;
  }
  return best === null ? { strategy: 'full', parent: null } : { strategy: requested, parent: best };
}

export interface BlockVerdict {
  /** Its content differs from the parent's (or there is no parent): this backup carries it. */
  changed: boolean;
  /** Its object must be written to the target. */
  upload: boolean;
}

export function blockVerdict(
  key: string, entry: BlockEntry, parent: PriorBackup | null,
  trusted: ReadonlySet<string>, uploadedThisRun: ReadonlySet<string>,
): BlockVerdict {
  const before = parent?.blocks[key];
  const changed = before === undefined || before.sha256 !== entry.sha256 || before.bytes !== entry.bytes;
  return { changed, upload: !trusted.has(entry.sha256) && !uploadedThisRun.has(entry.sha256) };
}

/** Hashes every complete manifest names: the objects a new backup may skip. */
export function trustedHashes(complete: readonly { blocks: Readonly<Record<string, BlockEntry>> }[]): Set<string> {
  const out = new Set<string>();
  for (const m of complete) for (const e of Object.values(m.blocks)) out.add(e.sha256);
  return out;
}

/** After deleting backups: objects no remaining complete manifest (nor a running backup) names. */
export function unreferencedObjects(stored: readonly string[], kept: ReadonlySet<string>): string[] {
  return stored.filter((h) => !kept.has(h)).sort();
}

/**
 * The blocks `verify --sample P` reads: every block when P is 100, else a deterministic spread of
 * ceil(P% of n) keys (every k-th in key order, starting at `offset`), at least one when n > 0.
 */
export function sampleKeys(keys: readonly string[], percent: number, offset: number): string[] {
  const sorted = [...keys].sort();
  if (percent >= 100 || sorted.length === 0) return sorted;
  const want = Math.max(1, Math.ceil((sorted.length * percent) / 100));
  const step = sorted.length / want;
  const out: string[] = [];
  for (let i = 0; i < want; i += 1) {
    const k = sorted[(Math.floor(i * step) + offset) % sorted.length];
    if (k !== undefined) out.push(k);
  }
  return [...new Set(out)];
}
