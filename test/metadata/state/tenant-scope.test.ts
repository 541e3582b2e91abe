/**
 * The tenant check inside the command (issue #12, metadata/state/logic/lookup.ts
 * `requireScopedVolume`): the race the guard alone lost — tenant A's guard reads volume "db"
 * (A's), "db" is deleted and tenant B creates a namesake, then A's delete is applied — is replayed
 * here as the state machine sees it. The command carries A's scope, so the apply refuses it as
 * if the volume did not exist and B's volume is untouched; the same command with B's scope (the
 * control) or none (the node credential, a cluster-wide admin) goes through.
 */
import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import type { Snapshot, Volume } from '../../../proto/metadata-types.js';
import { guardCall, scopedArgIndex, type GuardLookups } from '../../../metadata/service/auth-guard.js';
import type { Feeder } from './helpers.js';
import { addNodes, useStateMachine } from './helpers.js';

const plain = { storageClass: 'fast-local-ssd', replicas: 1, size: '1M' };

describe('metadata/state machine: tenant scope checked in the apply', () => {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });
  beforeEach(async () => { await addNodes(f, 3); });

  it('a delete+recreate between the guard\'s read and the apply cannot let tenant A act on B\'s namesake', async () => {
    await f.ok<Volume>('createVolume', { ...plain, name: 'db', tenant: 'a' });
    // A's guard has read "db" (A's) here; meanwhile it is deleted and B makes a namesake.
    await f.ok('deleteVolume', 'db');
    const theirs = await f.ok<Volume>('createVolume', { ...plain, name: 'db', tenant: 'b' });
    const scopeA = { tenant: 'a' };
    const refusals: [string, unknown[]][] = [
      ['deleteVolume', ['db', scopeA]], ['expandVolume', ['db', '2M', scopeA]], ['updateVolumeLabels', ['db', { owner: 'a' }, scopeA]],
      ['setVolumePolicy', ['db', [{ user: 'mallory', access: 'rw' }], scopeA]],
    ];
    for (const [method, args] of refusals) {
      const e = await f.fails('VOLUME_NOT_FOUND', method, ...args);
      assert.equal(e.message, 'volume "db" not found', 'answered exactly as a missing volume');
    }
    const still = await sm.query('getVolume', ['db']) as Volume;
    assert.deepEqual(still, theirs, 'B\'s volume is unchanged');
    // The controls: B's own scope, and no scope (node credential / cluster-wide admin).
    assert.deepEqual((await f.ok<Volume>('updateVolumeLabels', 'db', { owner: 'b' }, { tenant: 'b' })).labels, { owner: 'b' });
    assert.equal((await f.ok<Volume>('expandVolume', 'db', '2M')).sizeBytes, 2 * 1024 * 1024);
    await f.fails('VOLUME_NOT_FOUND', 'deleteVolume', 'db', { tenant: 'a' });
    await f.ok('deleteVolume', 'db', { tenant: 'b' });
  });

  it('the snapshot commands carry the scope too: A cannot snapshot, restore, clone or delete B\'s namesake snapshot', async () => {
    await f.ok<Volume>('createVolume', { ...plain, name: 'db', tenant: 'a' });
    await f.ok<Snapshot>('createSnapshot', 'db', 's1');
    // A's guard has read "s1" (A's) here; meanwhile it goes and B makes a snapshot of that name of its own volume.
    await f.ok('deleteSnapshot', 's1');
    await f.ok<Volume>('createVolume', { ...plain, name: 'dbb', tenant: 'b' });
    const theirs = await f.ok<Snapshot>('createSnapshot', 'dbb', 's1');
    const scopeA = { tenant: 'a' };
    for (const [method, args] of [['deleteSnapshot', ['s1', scopeA]], ['cloneVolume', ['s1', 'mine', null, scopeA]], ['restoreVolume', ['db', 's1', scopeA]]] as const) {
      const e = await f.fails('SNAPSHOT_NOT_FOUND', method, ...args);
      assert.equal(e.message, 'snapshot "s1" not found', `${method}: answered exactly as a missing snapshot`);
    }
    await f.fails('VOLUME_NOT_FOUND', 'createSnapshot', 'dbb', 's2', scopeA);
    await f.fails('VOLUME_NOT_FOUND', 'restoreVolume', 'dbb', 's1', scopeA);
    assert.deepEqual(await sm.query('getSnapshot', ['s1']), { ...theirs, clones: [] }, 'B\'s snapshot is unchanged (and has no clone)');
    assert.deepEqual((await sm.query('listVolumes', []) as Volume[]).map((v) => v.name).sort(), ['db', 'dbb'], 'no clone was made');
    // The control: B's own scope goes through, and the clone is B's.
    assert.equal((await f.ok<Volume>('cloneVolume', 's1', 'theirs', null, { tenant: 'b' })).tenant, 'b');
  });

  it('the guard pins a tenant\'s snapshot to the id it checked, and hides another tenant\'s as missing', async () => {
    const volumes: Record<string, Volume> = { v1: { id: 'v1', name: 'db', tenant: 'a' } as Volume, v2: { id: 'v2', name: 'dbb', tenant: 'b' } as Volume };
    const snaps: Record<string, Snapshot> = { s1: { id: 'id-1', name: 's1', volumeId: 'v1' } as Snapshot, s2: { id: 'id-2', name: 's2', volumeId: 'v2' } as Snapshot };
    const look: GuardLookups = {
      volume: (ref) => Promise.resolve(volumes[ref] ?? null), storageClass: () => Promise.resolve(null), snapshot: (ref) => Promise.resolve(snaps[ref] ?? null),
      volumes: () => Promise.resolve(Object.values(volumes)), user: () => Promise.resolve(null), tokens: () => Promise.resolve([]),
    };
    const userA = { kind: 'user' as const, user: 'alice', role: 'operator' as const, tenant: 'a', tokenId: 't' };
    assert.deepEqual((await guardCall(userA, 'getSnapshot', ['s1'], look)).args, ['id-1']);
    assert.deepEqual((await guardCall(userA, 'deleteSnapshot', ['s1'], look)).args, ['id-1', { tenant: 'a' }]);
    assert.deepEqual((await guardCall(userA, 'cloneVolume', ['s1', 'c'], look)).args, ['id-1', 'c', null, { tenant: 'a' }]);
    assert.deepEqual((await guardCall(userA, 'getSnapshot', ['nope'], look)).args, ['nope'], 'a missing one is left to the call');
    for (const [method, args] of [['getSnapshot', ['s2']], ['deleteSnapshot', ['s2']], ['cloneVolume', ['s2', 'c']], ['restoreVolume', ['db', 's2']], ['getSnapshotTree', ['s2', null, 10]]] as const) {
      await assert.rejects(guardCall(userA, method, [...args], look), (e: Error & { code?: string }) => e.code === 'SNAPSHOT_NOT_FOUND' && e.message === 'snapshot "s2" not found', method);
    }
    const listed = (await guardCall(userA, 'listSnapshots', [], look)).filter(Object.values(snaps)) as Snapshot[];
    assert.deepEqual(listed.map((x) => x.name), ['s1']);
  });

  it('a volume without a tenant is out of every tenant\'s scope; a malformed scope is refused', async () => {
    await f.ok<Volume>('createVolume', { ...plain, name: 'shared' });
    await f.fails('VOLUME_NOT_FOUND', 'deleteVolume', 'shared', { tenant: 'a' });
    await f.fails('INVALID_ARGUMENT', 'deleteVolume', 'shared', { tenant: 7 });
    await f.ok('deleteVolume', 'shared', null);
  });

  it('the guard puts the caller\'s tenant into every command it checks against a volume (replacing any the caller sent)', async () => {
    const own: Volume = { id: 'v1', name: 'db', tenant: 'a' } as Volume;
    const look: GuardLookups = {
      volume: () => Promise.resolve(own), storageClass: () => Promise.resolve(null), snapshot: () => Promise.resolve(null), volumes: () => Promise.resolve([own]), user: () => Promise.resolve(null), tokens: () => Promise.resolve([]),
    };
    const userA = { kind: 'user' as const, user: 'alice', role: 'admin' as const, tenant: 'a', tokenId: 't' };
    const cases: [string, unknown[], unknown[]][] = [
      ['deleteVolume', ['db'], ['db', { tenant: 'a' }]],
      ['deleteVolume', ['db', { tenant: 'b' }], ['db', { tenant: 'a' }]],
      ['expandVolume', ['db', '2M'], ['db', '2M', { tenant: 'a' }]],
      ['updateVolumeLabels', ['db', { k: 'v' }], ['db', { k: 'v' }, { tenant: 'a' }]],
      ['setVolumePolicy', ['db', []], ['db', [], { tenant: 'a' }]],
      ['createSnapshot', ['db'], ['db', null, { tenant: 'a' }]],
      ['deleteSnapshot', ['s1'], ['s1', { tenant: 'a' }]],
      ['cloneVolume', ['s1', 'c'], ['s1', 'c', null, { tenant: 'a' }]],
      ['restoreVolume', ['db', 's1'], ['db', 's1', { tenant: 'a' }]],
    ];
    for (const [method, args, want] of cases) assert.deepEqual((await guardCall(userA, method, args, look)).args, want, method);
    assert.equal(scopedArgIndex.size, cases.length - 1);
    // Tenantless principals are not scoped: their calls are as they sent them.
    assert.deepEqual((await guardCall({ kind: 'node' }, 'deleteVolume', ['db'], look)).args, ['db']);
  });
});
