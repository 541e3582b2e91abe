/** The pure rule that picks the snapshots backup runs left behind (dataplane/backup/logic/orphans.ts). */
import assert from 'node:assert/strict';
import { backupIdOfSnapshot, orphanBackupSnapshots, type OrphanInputs } from '../../../dataplane/backup/logic/orphans.js';

const minute = 60_000;
const now = 100 * minute;
const snap = (name: string, ageMs = 10 * minute): OrphanInputs['snapshots'][number] => ({ id: `id-${name}`, name, createdAtMs: now - ageMs });
const names = (o: Partial<OrphanInputs>): string[] =>
  orphanBackupSnapshots({ snapshots: [], records: [], runningHere: new Set(), nowMs: now, graceMs: 2 * minute, ...o }).map((s) => s.name);

describe('backup: snapshots left by dead runs', () => {
  it('knows a backup run\'s snapshot name, and nothing else', () => {
    assert.equal(backupIdOfSnapshot('backup-bk-00abcdefg12345678'), 'bk-00abcdefg12345678');
    assert.equal(backupIdOfSnapshot('backup-nightly'), null);
    assert.equal(backupIdOfSnapshot('db-snap-1'), null);
    assert.equal(backupIdOfSnapshot('backup-bk-../x'), null);
  });

  it('deletes one no run will use again: no record, an ended one, a complete backup\'s', () => {
    const snapshots = [snap('backup-bk-aaaaaaaa1'), snap('backup-bk-bbbbbbbb2'), snap('user-kept'), snap('backup-nightly')];
    assert.deepEqual(names({ snapshots, records: [{ id: 'bk-bbbbbbbb2', ended: { state: 'failed' } }] }), ['backup-bk-aaaaaaaa1', 'backup-bk-bbbbbbbb2']);
  });

  it('keeps one a run still needs: running here, to be resumed, a live scheduled run, or younger than the grace', () => {
    const snapshots = [snap('backup-bk-here00001'), snap('backup-bk-resume001'), snap('backup-bk-sched0001'), snap('backup-bk-young0001', 30_000), snap('backup-bk-deadsch01')];
    const records = [
      { id: 'bk-resume001' },
      { id: 'bk-sched0001', scheduled: {}, progress: { updatedAtMs: now - 5_000 } },
      { id: 'bk-deadsch01', scheduled: {}, progress: { updatedAtMs: now - 5 * minute } },
    ];
    assert.deepEqual(names({ snapshots, records, runningHere: new Set(['bk-here00001']) }), ['backup-bk-deadsch01'], 'only the scheduled run that stopped moving');
  });
});
