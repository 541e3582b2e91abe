/**
 * Backup targets and policies in the real state machine: targets validated whole; a policy's run
 * is claimed once per due time, taken over only from another scheduler, finished only by its
 * claimer (the rules the leader's scheduler relies on for "no run lost, none doubled").
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { BackupPolicy, BackupTarget } from '../../../proto/metadata-types.js';
import type { Feeder } from './helpers.js';
import { addNodes, t0, useStateMachine } from './helpers.js';

describe('metadata/state machine: backup targets and policy runs', function () {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });

  beforeEach(async () => {
    await addNodes(f, 3);
    await f.ok('createVolume', { name: 'v', replicas: 3 });
  });

  it('validates targets whole and refuses duplicates; secrets only with both keys', async () => {
    const d = await f.ok<BackupTarget>('addBackupTarget', { name: 'local', dir: '/var/backups/' });
    assert.deepEqual(d, { name: 'local', kind: 'dir', path: '/var/backups', createdAtMs: t0 });
    await f.fails('BACKUP_TARGET_EXISTS', 'addBackupTarget', { name: 'local', dir: '/x' });
    await f.fails('INVALID_ARGUMENT', 'addBackupTarget', { name: 'rel', dir: 'x/y' });
    await f.fails('INVALID_ARGUMENT', 'addBackupTarget', { name: 'both', dir: '/x', s3: 'http://h:1', bucket: 'bbb' });
    await f.fails('INVALID_ARGUMENT', 'addBackupTarget', { name: 's', s3: 'http://h:1', bucket: 'B!' });
    await f.fails('INVALID_ARGUMENT', 'addBackupTarget', { name: 's', s3: 'http://h:1', bucket: 'bbb', accessKeyId: 'k' });
    const s = await f.ok<BackupTarget>('addBackupTarget', { name: 's', s3: 'http://127.0.0.1:9000/', bucket: 'bbb', prefix: 'a/b' });
    assert.deepEqual(s, { name: 's', kind: 's3', endpoint: 'http://127.0.0.1:9000', bucket: 'bbb', prefix: 'a/b/', region: 'us-east-1', createdAtMs: t0 });
    assert.deepEqual((await sm.query('listBackupTargets', []) as BackupTarget[]).map((t) => t.name), ['local', 's']);
  });

  it('claims a run once per due time, lets another scheduler take an unfinished one over, and only the claimer finishes it', async () => {
    await f.ok('addBackupTarget', { name: 'local', dir: '/b' });
    const p = await f.ok<BackupPolicy>('createBackupPolicy', { volume: 'v', target: 'local', schedule: '0 2 * * *', firstDueMs: t0 + 1000 });
    assert.equal(p.strategy, 'incremental');
    await f.fails('FAILED_PRECONDITION', 'claimBackupRun', p.id, t0 + 1000, t0 + 2000, 'n1:1'); // not due yet
    f.stampMs = t0 + 1500;
    const c1 = await f.ok<BackupPolicy>('claimBackupRun', p.id, t0 + 1000, t0 + 2000, 'n1:1');
    assert.deepEqual(c1.lastRun, { dueMs: t0 + 1000, claimedBy: 'n1:1', claimedAtMs: t0 + 1500, done: false, backupId: null, error: null });
    assert.equal(c1.nextDueMs, t0 + 2000);
    await f.fails('FAILED_PRECONDITION', 'claimBackupRun', p.id, t0 + 1000, t0 + 2000, 'n1:1'); // the same claim again
    f.stampMs = t0 + 2500;
    await f.fails('FAILED_PRECONDITION', 'claimBackupRun', p.id, t0 + 2000, t0 + 3000, 'n1:1'); // the next one waits for this one
    const taken = await f.ok<BackupPolicy>('claimBackupRun', p.id, t0 + 1000, t0 + 9999, 'n2:2'); // a new leader takes it over
    assert.equal(taken.lastRun?.claimedBy, 'n2:2');
    assert.equal(taken.nextDueMs, t0 + 2000);
    await f.fails('FAILED_PRECONDITION', 'finishBackupRun', p.id, t0 + 1000, 'bk-00000001', null, 'n1:1'); // the deposed one
    const done = await f.ok<BackupPolicy>('finishBackupRun', p.id, t0 + 1000, 'bk-00000002', null, 'n2:2');
    assert.equal(done.lastRun?.done, true);
    assert.equal(done.lastRun?.backupId, 'bk-00000002');
    await f.fails('FAILED_PRECONDITION', 'claimBackupRun', p.id, t0 + 1000, t0 + 2000, 'n3:3'); // done: no takeover
    const c2 = await f.ok<BackupPolicy>('claimBackupRun', p.id, t0 + 2000, t0 + 3000, 'n2:2');
    assert.equal(c2.lastRun?.dueMs, t0 + 2000);
    await f.fails('FAILED_PRECONDITION', 'removeBackupTarget', 'local');
    await f.ok('deleteBackupPolicy', p.id);
    await f.ok('removeBackupTarget', 'local');
    await f.fails('BACKUP_TARGET_NOT_FOUND', 'removeBackupTarget', 'local');
  });
});
