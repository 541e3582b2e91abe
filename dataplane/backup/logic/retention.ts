/**
 * Grandfather-father-son retention: which backups a policy keeps. Pure and by UTC calendar
 * (no Date objects: the civil date comes from the day number), so a timeline gives the same
 * kept set on every machine, fixed by test/dataplane/backup/retention.test.ts.
 *
 * Per volume, newest first: the newest backup is always kept; then the newest backup of each of
 * the last `keepDaily` days that have one, of each of the last `keepWeekly` ISO weeks (Monday to
 * Sunday), of each of the last `keepMonthly` months. A kept incremental or differential keeps the
 * full backup its chain starts from ('base'), and the newest verified full backup is never
 * deleted while any backup of the volume remains ('verified-full').
 *
 * The backups between a kept one and its base may go: every manifest holds the whole block map
 * and objects are shared by content, so a restore needs its own manifest only, and deleting a
 * backup frees just the objects no remaining manifest names (engine.ts deleteBackup).
 */
import type { Strategy } from './manifest.js';

export interface RetentionItem {
  id: string;
  volumeId: string;
  createdAtMs: number;
  strategy: Strategy;
  parent: string | null;
  verified: boolean;
}

export interface RetentionRule {
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
}

export type KeepReason = 'newest' | 'daily' | 'weekly' | 'monthly' | 'base' | 'verified-full';

export interface RetentionPlan {
  keep: { id: string; reasons: KeepReason[] }[];
  drop: string[];
}

const dayMs = 86_400_000;

export const dayOf = (ms: number): number => Math.floor(ms / dayMs);
/** ISO weeks start on Monday; day 0 (1970-01-01) was a Thursday. */
export const weekOf = (ms: number): number => Math.floor((dayOf(ms) + 3) / 7);

/** Year * 12 + month (0-based) of a UTC instant (Hinnant's days-to-civil). */
export function monthOf(ms: number): number {
  const z = dayOf(ms) + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return year * 12 + (month - 1);
}

export function planRetention(items: readonly RetentionItem[], rule: RetentionRule): RetentionPlan {
  const reasons = new Map<string, KeepReason[]>();
  const add = (id: string, r: KeepReason): void => { reasons.set(id, [...(reasons.get(id) ?? []), r]); };
  const volumes = [...new Set(items.map((i) => i.volumeId))].sort();
  for (const v of volumes) {
    const mine = items.filter((i) => i.volumeId === v).sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1));
    const newest = mine[0];
    if (newest === undefined) continue;
    add(newest.id, 'newest');
    keepPerBucket(mine, dayOf, rule.keepDaily, 'daily', add);
    keepPerBucket(mine, weekOf, rule.keepWeekly, 'weekly', add);
    keepPerBucket(mine, monthOf, rule.keepMonthly, 'monthly', add);
    const verifiedFull = mine.find((i) => i.strategy === 'full' && i.verified);
    if (verifiedFull !== undefined) add(verifiedFull.id, 'verified-full');
  }
  keepBases(items, reasons, add);
  const keep = items.filter((i) => reasons.has(i.id)).map((i) => ({ id: i.id, reasons: reasons.get(i.id) ?? [] }));
  const drop = items.filter((i) => !reasons.has(i.id)).map((i) => i.id);
  return { keep: keep.sort((a, b) => (a.id < b.id ? -1 : 1)), drop: drop.sort() };
}

function keepPerBucket(newestFirst: readonly RetentionItem[], bucketOf: (ms: number) => number, count: number, reason: KeepReason, add: (id: string, r: KeepReason) => void): void {
  const seen = new Set<number>();
  for (const i of newestFirst) {
    if (seen.size >= count) return;
    const b = bucketOf(i.createdAtMs);
    if (seen.has(b)) continue;
    seen.add(b);
    add(i.id, reason);
  }
}

function keepBases(items: readonly RetentionItem[], reasons: Map<string, KeepReason[]>, add: (id: string, r: KeepReason) => void): void {
  const byId = new Map(items.map((i) => [i.id, i]));
  for (const id of [...reasons.keys()]) {
    let at = byId.get(id);
    // Each step follows a parent created earlier, so the walk ends; the bound guards bad records.
    for (let steps = 0; at !== undefined && at.strategy !== 'full' && at.parent !== null && steps < items.length; steps += 1) at = byId.get(at.parent);
    if (at !== undefined && at.strategy === 'full' && at.id !== id && !(reasons.get(at.id) ?? []).includes('base')) add(at.id, 'base');
  }
}
