/**
 * GFS retention (dataplane/backup/logic/retention.ts) on a fixed 400-day timeline: one backup a
 * day at 02:00 UTC from 2025-01-01 (a Wednesday) to 2026-02-04, a full on Sundays and
 * incrementals in between (each the increment of the day before), fulls verified up to
 * 2026-01-11 only. The kept set below is worked out by hand in the comments.
 */
import { strict as assert } from 'node:assert';
import { dayOf, monthOf, planRetention, weekOf, type RetentionItem } from '../../../dataplane/backup/logic/retention.js';

const start = Date.UTC(2025, 0, 1, 2);
const dayMs = 86_400_000;

function iso(day: number): string {
  return new Date(start + day * dayMs).toISOString().slice(0, 10);
}

function timeline(): RetentionItem[] {
  const out: RetentionItem[] = [];
  for (let d = 0; d < 400; d += 1) {
    const at = start + d * dayMs;
    const sunday = new Date(at).getUTCDay() === 0;
    out.push({
      id: `b${iso(d)}`, volumeId: 'v1', createdAtMs: at, strategy: sunday || d === 0 ? 'full' : 'incremental',
      parent: d === 0 || sunday ? null : `b${iso(d - 1)}`, verified: sunday && at <= Date.UTC(2026, 0, 11, 23),
    });
  }
  return out;
}

describe('backup retention (GFS) on a 400-day timeline', () => {
  it('keeps exactly the expected backups, with their reasons', () => {
    const plan = planRetention(timeline(), { keepDaily: 7, keepWeekly: 4, keepMonthly: 3 });
    const kept = Object.fromEntries(plan.keep.map((k) => [k.id, k.reasons.join(',')]));
    assert.deepEqual(kept, {
      // Dec 2025's newest (monthly) is Wed Dec 31, an increment of the full of Sun Dec 28 (base).
      'b2025-12-28': 'base',
      'b2025-12-31': 'monthly',
      // The newest verified full: fulls are verified up to Sun Jan 11 only.
      'b2026-01-11': 'verified-full',
      // Weekly: the newest of ISO weeks Jan 12-18 and Jan 19-25 are their Sundays (fulls).
      'b2026-01-18': 'weekly',
      'b2026-01-25': 'weekly,base',
      // Daily: the seven newest days; Jan 29-31 increment the full of Jan 25; Jan 31 is January's newest.
      'b2026-01-29': 'daily',
      'b2026-01-30': 'daily',
      'b2026-01-31': 'daily,monthly',
      'b2026-02-01': 'daily,weekly,base',
      'b2026-02-02': 'daily',
      'b2026-02-03': 'daily',
      'b2026-02-04': 'newest,daily,weekly,monthly',
    });
    assert.equal(plan.keep.length + plan.drop.length, 400);
    assert.equal(plan.drop.length, 388);
  });

  it('never drops the newest verified full, even with nothing else kept', () => {
    const items = timeline().slice(0, 30);
    const plan = planRetention(items, { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 });
    // Newest (Jan 30, a Thursday) increments the full of Sun Jan 26, which is also the newest verified full.
    assert.deepEqual(plan.keep, [{ id: 'b2025-01-26', reasons: ['verified-full', 'base'] }, { id: 'b2025-01-30', reasons: ['newest'] }]);
  });

  it('keeps per volume', () => {
    const a = timeline().slice(0, 3);
    const b = a.map((i) => ({ ...i, id: `${i.id}-b`, volumeId: 'v2', parent: i.parent === null ? null : `${i.parent}-b` }));
    const plan = planRetention([...a, ...b], { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 });
    assert.deepEqual(plan.keep.map((k) => k.id), ['b2025-01-01', 'b2025-01-01-b', 'b2025-01-03', 'b2025-01-03-b']);
  });

  it('calendar buckets agree with Date over 1970-2100', () => {
    for (let ms = Date.UTC(1969, 11, 1); ms < Date.UTC(2100, 0, 1); ms += 7 * dayMs + 3_600_000) {
      const d = new Date(ms);
      assert.equal(monthOf(ms), d.getUTCFullYear() * 12 + d.getUTCMonth(), d.toISOString());
      assert.equal(dayOf(ms), Math.floor(ms / dayMs));
      // Same ISO week as the Monday before (or on) it.
      const monday = ms - (((d.getUTCDay() + 6) % 7) * dayMs);
      assert.equal(weekOf(ms), weekOf(monday));
      assert.notEqual(weekOf(ms), weekOf(monday - dayMs));
    }
  });
});
