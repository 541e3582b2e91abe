import assert from 'node:assert/strict';
import type { StateMachine } from '../../../metadata/state/contract.js';
import { openStateMachine } from '../../../metadata/state/index.js';
import type { DataNode, PlacementGroup, StorageClass, Volume } from '../../../proto/metadata-types.js';
import { isGalleonError } from '../../../proto/errors.js';
import { clientIdleForgetMs, clientSweepIntervalMs, maxResultsPerClient } from '../../../metadata/state/logic/apply.js';
import { loadOf } from '../../../metadata/state/logic/placement.js';
import { decodeSnapshot } from '../../../metadata/state/snapshot-codec.js';
import { Feeder, addNodes, openTemp, removeDir, t0, useStateMachine } from './helpers.js';

describe('metadata/state machine: storage classes and volumes', function () {
  let sm: StateMachine;
  let f: Feeder;
  useStateMachine((opened, feeder) => { sm = opened; f = feeder; });

  it('starts empty at index 0 with the two built-in classes', async () => {
    assert.equal(sm.appliedIndex(), 0);
    const classes = await sm.query('listStorageClasses', []) as StorageClass[];
    assert.deepEqual(classes.map((c) => c.name), ['encrypted-storage', 'fast-local-ssd']);
    const enc = await sm.query('getStorageClass', ['encrypted-storage']) as StorageClass;
    assert.deepEqual([enc.encryption, enc.encryptionAlgorithm, enc.replicas, enc.zoneSpread, enc.writeConcern, enc.reclaimPolicy, enc.volumeBindingMode, enc.builtIn],
      [true, 'AES-256-GCM', 3, 'prefer', 'replicated', 'Retain', 'WaitForFirstConsumer', true]);
    const fast = await sm.query('getStorageClass', ['fast-local-ssd']) as StorageClass;
    assert.deepEqual([fast.encryption, fast.replicas, fast.writeConcern, fast.reclaimPolicy, fast.volumeBindingMode],
      [false, 1, 'durable', 'Delete', 'Immediate']);
  });

  it('creates, refuses duplicates of, and deletes a user storage class', async () => {
    const sc = await f.ok<StorageClass>('createStorageClass', { name: 'gold', replicas: 2, writeConcern: 'replicated', zoneSpread: 'none' });
    assert.equal(sc.createdAtMs, t0);
    assert.equal(sc.builtIn, false);
    await f.fails('STORAGE_CLASS_EXISTS', 'createStorageClass', { name: 'gold' });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'Bad Name' });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'x', replicas: 9 });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'x', writeConcern: 'eventually' });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'x', replicas: 1, writeConcern: 'replicated' });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'x', colour: 'blue' });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'x', encryption: true, parameters: { encryption_algorithm: 'DES' } });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'x', zoneSpread: 'everywhere' });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', { name: 'x', mountOptions: 'noatime' });
    await f.fails('INVALID_ARGUMENT', 'createStorageClass', 'gold');
    const enc = await f.ok<StorageClass>('createStorageClass', { name: 'vault', encryption: true, writeConcern: 'distributed' });
    assert.deepEqual([enc.encryptionAlgorithm, enc.zoneSpread, enc.replicas], ['AES-256-GCM', 'require', 3]);
    assert.equal(await f.ok('deleteStorageClass', 'gold'), null);
    await f.fails('STORAGE_CLASS_NOT_FOUND', 'deleteStorageClass', 'gold');
    await assert.rejects(sm.query('getStorageClass', ['gold']), (e) => isGalleonError(e, 'STORAGE_CLASS_NOT_FOUND'));
  });

  it('never deletes a built-in class or a class in use', async () => {
    await f.fails('FAILED_PRECONDITION', 'deleteStorageClass', 'encrypted-storage');
    await addNodes(f, 1);
    await f.ok('createStorageClass', { name: 'single', replicas: 1, writeConcern: 'durable' });
    await f.ok('createVolume', { name: 'v1', storageClass: 'single' });
    const err = await f.fails('STORAGE_CLASS_IN_USE', 'deleteStorageClass', 'single');
    assert.match(err.message, /v1/);
  });

  it('creates a volume with the spec defaults and places 16 PGs on 3 zones', async () => {
    await addNodes(f, 3);
    const vol = await f.ok<Volume>('createVolume', { name: 'db-data', size: '10G' });
    assert.match(vol.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(
      [vol.name, vol.type, vol.sizeBytes, vol.accessMode, vol.storageClass, vol.replicas, vol.writeConcern, vol.state, vol.version, vol.pgCount, vol.blockSizeBytes],
      ['db-data', 'persistent', 10 * 2 ** 30, 'ReadWriteOnce', 'encrypted-storage', 3, 'replicated', 'available', 1, 16, 131072]);
    assert.deepEqual(await sm.query('getVolume', ['db-data']), vol);
    assert.deepEqual(await sm.query('getVolume', [vol.id]), vol);
    const pgs = await sm.query('getPlacement', [vol.id]) as PlacementGroup[];
    assert.equal(pgs.length, 16);
    for (const pg of pgs) {
      assert.equal(new Set(pg.replicas).size, 3);
      assert.equal(pg.primary, pg.replicas[0]);
      assert.equal(pg.epoch, 1);
      assert.deepEqual(pg.inSync, pg.replicas);
    }
    const primaries = new Map<string, number>();
    for (const pg of pgs) primaries.set(pg.primary, (primaries.get(pg.primary) ?? 0) + 1);
    assert.ok(Math.max(...primaries.values()) - Math.min(...primaries.values()) <= 1, `primaries unbalanced: ${JSON.stringify([...primaries])}`);
  });

  it('fixes a volume\'s block size at creation: a power of two from 4 KiB to 1 MiB, refused otherwise with nothing created', async () => {
    await addNodes(f, 3);
    const big = await f.ok<Volume>('createVolume', { name: 'media', blockSize: '1M' });
    assert.equal(big.blockSizeBytes, 1024 * 1024);
    assert.equal((await f.ok<Volume>('createVolume', { name: 'small', blockSize: 4096 })).blockSizeBytes, 4096);
    for (const bad of ['3000', 2048, '2M', '96K', 'huge']) await f.fails('INVALID_SIZE', 'createVolume', { name: 'bad', blockSize: bad });
    assert.equal(await sm.query('getVolume', ['bad']).catch(() => null), null);
  });

  it('generates a name, applies type defaults, replicas override and labels', async () => {
    await addNodes(f, 2);
    const shared = await f.ok<Volume>('createVolume', { type: 'shared', size: '512M', replicas: 2, labels: { team: 'web', app: 'x' } });
    assert.match(shared.name, /^vol-[0-9a-f]{8}$/);
    assert.equal(shared.name, `vol-${shared.id.slice(0, 8)}`);
    assert.equal(shared.accessMode, 'ReadWriteMany');
    assert.equal(shared.replicas, 2);
    assert.deepEqual(Object.keys(shared.labels), ['app', 'team']);
    const local = await f.ok<Volume>('createVolume', { name: 'scratch', type: 'ephemeral', storageClass: 'fast-local-ssd', accessMode: 'ReadOnlyMany' });
    assert.deepEqual([local.replicas, local.writeConcern, local.sizeBytes, local.accessMode], [1, 'durable', 2 ** 30, 'ReadOnlyMany']);
    const list = await sm.query('listVolumes', []) as Volume[];
    assert.deepEqual(list.map((v) => v.name), ['scratch', shared.name]);
  });

  it('rejects bad volume specs with stable codes and changes nothing', async () => {
    await addNodes(f, 3);
    await f.ok('createVolume', { name: 'taken' });
    const before = await sm.snapshot();
    await f.fails('VOLUME_EXISTS', 'createVolume', { name: 'taken' });
    await f.fails('INVALID_SIZE', 'createVolume', { name: 'a', size: '0' });
    await f.fails('INVALID_SIZE', 'createVolume', { name: 'a', size: '-5G' });
    await f.fails('INVALID_SIZE', 'createVolume', { name: 'a', size: 'lots' });
    const nf = await f.fails('STORAGE_CLASS_NOT_FOUND', 'createVolume', { name: 'a', storageClass: 'platinum' });
    assert.match(nf.hint ?? '', /galleon storage-class list/);
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'Has_Caps' });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'x'.repeat(64) });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'a', type: 'forever' });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'a', accessMode: 'ReadWriteSometimes' });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'a', replicas: 8 });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'a', replicas: 1 });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'a', labels: { 'bad key': 'v' } });
    await f.fails('INVALID_ARGUMENT', 'createVolume', { name: 'a', sizee: '1G' });
    const short = await f.fails('INSUFFICIENT_NODES', 'createVolume', { name: 'a', replicas: 4 });
    assert.match(short.message, /4 replicas but 3 data node/);
    // Only the applied index and the client table moved: compare the user-visible state.
    const after = await sm.query('listVolumes', []) as Volume[];
    assert.deepEqual(after.map((v) => v.name), ['taken']);
    assert.ok(before.index < sm.appliedIndex());
  });

  it('needs distinct zones for a class that requires zone spread', async () => {
    await addNodes(f, 3, ['zone-a', 'zone-a', 'zone-b']);
    await f.ok('createStorageClass', { name: 'spread', replicas: 3, zoneSpread: 'require' });
    const err = await f.fails('INSUFFICIENT_NODES', 'createVolume', { name: 'a', storageClass: 'spread' });
    assert.match(err.message, /2 zone/);
    const two = await f.ok<Volume>('createVolume', { name: 'b', storageClass: 'spread', replicas: 2 });
    const zoneOf: Record<string, string> = { n1: 'zone-a', n2: 'zone-a', n3: 'zone-b' };
    for (const pg of await sm.query('getPlacement', [two.name]) as PlacementGroup[]) {
      assert.equal(new Set(pg.replicas.map((id) => zoneOf[id])).size, 2);
    }
  });

  it('fails with INSUFFICIENT_NODES when no data node is up', async () => {
    const err = await f.fails('INSUFFICIENT_NODES', 'createVolume', { name: 'a' });
    assert.match(err.hint ?? '', /galleon daemon start/);
  });

  it('updates labels (null removes), expands only upward, deletes by name or id', async () => {
    await addNodes(f, 3);
    const vol = await f.ok<Volume>('createVolume', { name: 'web', size: '1G', labels: { a: '1', b: '2' } });
    f.stampMs += 1000;
    const relabelled = await f.ok<Volume>('updateVolumeLabels', 'web', { a: null, c: '3' });
    assert.deepEqual(relabelled.labels, { b: '2', c: '3' });
    assert.deepEqual([relabelled.version, relabelled.updatedAtMs, relabelled.createdAtMs], [2, t0 + 1000, t0]);
    await f.fails('INVALID_ARGUMENT', 'updateVolumeLabels', 'web', { b: 5 });
    await f.fails('INVALID_ARGUMENT', 'updateVolumeLabels', 'web', 'b=5');
    const many = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v']));
    await f.fails('INVALID_ARGUMENT', 'updateVolumeLabels', 'web', many);
    await f.fails('VOLUME_NOT_FOUND', 'updateVolumeLabels', 'nope', {});
    const grown = await f.ok<Volume>('expandVolume', vol.id, '2G');
    assert.deepEqual([grown.sizeBytes, grown.version], [2 * 2 ** 30, 3]);
    await f.fails('INVALID_SIZE', 'expandVolume', 'web', '2G');
    await f.fails('INVALID_SIZE', 'expandVolume', 'web', '1G');
    await f.fails('INVALID_SIZE', 'expandVolume', 'web', 'huge');
    await f.fails('VOLUME_NOT_FOUND', 'expandVolume', 'nope', '5G');
    const gone = await f.ok<Volume>('deleteVolume', 'web');
    assert.equal(gone.state, 'deleting');
    await f.fails('VOLUME_NOT_FOUND', 'deleteVolume', 'web');
    await f.fails('VOLUME_NOT_FOUND', 'deleteVolume', vol.id);
    await assert.rejects(sm.query('getVolume', ['web']), (e) => isGalleonError(e, 'VOLUME_NOT_FOUND'));
    await assert.rejects(sm.query('getPlacement', [vol.id]), (e) => isGalleonError(e, 'VOLUME_NOT_FOUND'));
    // The name is free again.
    const again = await f.ok<Volume>('createVolume', { name: 'web' });
    assert.notEqual(again.id, vol.id);
    assert.equal(((await sm.query('listVolumes', [])) as Volume[]).length, 1);
  });

  it('answers an unknown command with INVALID_ARGUMENT and an unknown query with an error', async () => {
    await f.fails('INVALID_ARGUMENT', 'formatDisk');
    await assert.rejects(sm.query('nope' as never, []), (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
  });

  it('registers, heartbeats and lists data nodes', async () => {
    const n = await f.ok<DataNode>('registerDataNode', { id: 'n1', address: '127.0.0.1:9001', zone: 'zone-a', capacityBytes: 1000 });
    assert.deepEqual([n.state, n.usedBytes, n.registeredAtMs, n.lastHeartbeatAtMs], ['up', 0, t0, t0]);
    f.stampMs += 500;
    const hb = await f.ok<DataNode>('heartbeatDataNode', 'n1', 300, [{ volumeId: 'v', pg: 0, epoch: 1, appliedSeq: 9 }]);
    assert.deepEqual([hb.usedBytes, hb.lastHeartbeatAtMs], [300, t0 + 500]);
    f.stampMs += 500;
    const moved = await f.ok<DataNode>('registerDataNode', { id: 'n1', address: '127.0.0.1:9100', zone: 'zone-a', capacityBytes: 2000 });
    assert.deepEqual([moved.address, moved.capacityBytes, moved.usedBytes, moved.registeredAtMs], ['127.0.0.1:9100', 2000, 300, t0]);
    await f.fails('NODE_NOT_FOUND', 'heartbeatDataNode', 'n9', 0, []);
    await f.fails('INVALID_ARGUMENT', 'heartbeatDataNode', 'n1', -1, []);
    await f.fails('INVALID_ARGUMENT', 'heartbeatDataNode', 'n1', 0, [{ pg: 'x' }]);
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: 'n2', address: 'nowhere', zone: 'a', capacityBytes: 1 });
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: 'n2', address: 'h:1', zone: '', capacityBytes: 1 });
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: 'n2', address: 'h:1', zone: 'a', capacityBytes: 0 });
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: 'bad id', address: 'h:1', zone: 'a', capacityBytes: 1 });
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: 'n2', address: 'h:1', zone: 'a', capacityBytes: 1, rack: 'r1' });
    await f.fails('INVALID_ARGUMENT', 'registerDataNode', { id: 'n2', address: 'h:70000', zone: 'a', capacityBytes: 1 });
    const nodes = await sm.query('listDataNodes', []) as DataNode[];
    assert.deepEqual(nodes.map((x) => x.id), ['n1']);
  });

  it('keeps members from member records', async () => {
    await sm.apply([
      { index: 1, kind: 'member', change: 'add-voter', memberId: 'm1', address: '127.0.0.1:7001', adminAddress: '127.0.0.1:8091' },
      { index: 2, kind: 'member', change: 'add-learner', memberId: 'm2', address: '127.0.0.1:7002', adminAddress: null },
      { index: 3, kind: 'member', change: 'promote-learner', memberId: 'm2', address: null, adminAddress: null },
      { index: 4, kind: 'noop' },
    ]);
    assert.deepEqual(await sm.members(), [
      { id: 'm1', address: '127.0.0.1:7001', adminAddress: '127.0.0.1:8091' },
      { id: 'm2', address: '127.0.0.1:7002', adminAddress: null },
    ]);
    await sm.apply([{ index: 5, kind: 'member', change: 'remove-node', memberId: 'm1', address: null, adminAddress: null }]);
    assert.deepEqual((await sm.members()).map((m) => m.id), ['m2']);
    assert.equal(sm.appliedIndex(), 5);
  });

  it('returns copies: editing a query answer does not change the state', async () => {
    const c = await sm.query('getStorageClass', ['fast-local-ssd']) as StorageClass;
    c.replicas = 99;
    assert.equal((await sm.query('getStorageClass', ['fast-local-ssd']) as StorageClass).replicas, 1);
  });
});

describe('metadata/state machine: apply semantics', function () {
  const dirs: string[] = [];
  const open: StateMachine[] = [];
  async function fresh(): Promise<{ dir: string; sm: StateMachine }> {
    const r = await openTemp();
    dirs.push(r.dir);
    open.push(r.sm);
    return r;
  }
  afterEach(async () => {
    for (const sm of open.splice(0)) await sm.close().catch(() => undefined);
    for (const d of dirs.splice(0)) await removeDir(d);
  });

  it('applies a retried command (same clientId, seq) once and returns the first result', async () => {
    const { sm } = await fresh();
    const f = new Feeder(sm);
    await addNodes(f, 3);
    const first = f.record('createVolume', [{ size: '1G' }]);
    const [r1] = await sm.apply([first]);
    // The retry arrives later in the log under a new index, after a leader change.
    f.stampMs += 5000;
    const retry = f.record('createVolume', [{ size: '1G' }], { seq: first.kind === 'command' ? first.command.seq : 0 });
    const [r2] = await sm.apply([retry]);
    assert.deepEqual(r2, r1);
    assert.equal(((await sm.query('listVolumes', [])) as Volume[]).length, 1);
    assert.equal(sm.appliedIndex(), retry.index);
    // A failed command is remembered too: its retry fails the same way even though it would now succeed.
    await f.ok('createStorageClass', { name: 'late', replicas: 1, writeConcern: 'durable' });
    const [firstLate] = await sm.apply([f.record('createStorageClass', [{ name: 'late' }], { clientId: 'c2', seq: 1 })]);
    assert.equal(firstLate?.ok, false);
    await f.ok('deleteStorageClass', 'late');
    const [retriedLate] = await sm.apply([f.record('createStorageClass', [{ name: 'late' }], { clientId: 'c2', seq: 1 })]);
    assert.deepEqual(retriedLate, firstLate);
    await assert.rejects(sm.query('getStorageClass', ['late']), (e) => isGalleonError(e, 'STORAGE_CLASS_NOT_FOUND'));
  });

  it('keeps a bounded window of results per client and forgets idle clients by leader stamps', async () => {
    const { sm } = await fresh();
    const f = new Feeder(sm);
    for (let i = 1; i <= maxResultsPerClient + 1; i += 1) await f.ok('expireLeases');
    // seq 1 fell out of the window: it may not run again, and it says so.
    const tooOld = await sm.apply([f.record('createStorageClass', [{ name: 'zombie', replicas: 1 }], { seq: 1 })]);
    assert.equal(tooOld[0]?.ok === false && tooOld[0].error.code, 'FAILED_PRECONDITION');
    // seq 2 is still remembered.
    const kept = await sm.apply([f.record('createStorageClass', [{ name: 'zombie', replicas: 1 }], { seq: 2 })]);
    assert.deepEqual(kept[0], { ok: true, value: { expired: 0 } });
    // Another client is active much later: the sweep drops client-a, so its seq 2 would run anew.
    const g = new Feeder(sm, 'client-b');
    g.index = f.index;
    g.stampMs = t0 + clientIdleForgetMs + clientSweepIntervalMs;
    await g.ok('expireLeases');
    f.index = g.index;
    f.stampMs = g.stampMs;
    const fresh2 = await sm.apply([f.record('createStorageClass', [{ name: 'zombie', replicas: 1 }], { seq: 2 })]);
    assert.equal(fresh2[0]?.ok, true);
    assert.equal((fresh2[0]?.value as StorageClass).name, 'zombie');
  });

  it('gives a new volume id to a forgotten client that reuses a seq', async () => {
    const { sm } = await fresh();
    const f = new Feeder(sm, 'admin');
    await addNodes(f, 1);
    const [first] = await sm.apply([f.record('createVolume', [{ storageClass: 'fast-local-ssd' }], { clientId: 'cli', seq: 1 })]);
    f.stampMs += clientIdleForgetMs + clientSweepIntervalMs;
    await f.ok('expireLeases');
    const [second] = await sm.apply([f.record('createVolume', [{ storageClass: 'fast-local-ssd' }], { clientId: 'cli', seq: 1 })]);
    assert.ok(first?.ok === true && second?.ok === true);
    assert.notEqual((first.value as Volume).id, (second.value as Volume).id);
    assert.equal(((await sm.query('listVolumes', [])) as Volume[]).length, 2);
  });

  it('refuses a command without a valid clientId or seq', async () => {
    const { sm } = await fresh();
    const f = new Feeder(sm);
    const [r] = await sm.apply([f.record('expireLeases', [], { clientId: '', seq: 1 })]);
    assert.equal(r?.ok === false && r.error.code, 'INVALID_ARGUMENT');
    const [r2] = await sm.apply([f.record('expireLeases', [], { seq: 0 })]);
    assert.equal(r2?.ok === false && r2.error.code, 'INVALID_ARGUMENT');
    assert.equal(sm.appliedIndex(), 2);
  });

  it('answers UNAVAILABLE once closed', async () => {
    const { sm } = await fresh();
    await sm.close();
    await assert.rejects(sm.query('listVolumes', []), (e) => isGalleonError(e, 'UNAVAILABLE'));
    await assert.rejects(sm.apply([{ index: 1, kind: 'noop' }]), (e) => isGalleonError(e, 'UNAVAILABLE'));
  });

  it('skips records at or below the applied index and answers them from the client table', async () => {
    const { sm } = await fresh();
    const f = new Feeder(sm);
    const r1 = f.record('createStorageClass', [{ name: 'one', replicas: 1 }]);
    const r2 = f.record('createStorageClass', [{ name: 'two', replicas: 1 }]);
    const results = await sm.apply([r1, r2]);
    assert.equal(sm.appliedIndex(), 2);
    const again = await sm.apply([r1, r2]);
    assert.deepEqual(again, results);
    assert.equal(sm.appliedIndex(), 2);
    assert.equal(((await sm.query('listStorageClasses', [])) as StorageClass[]).length, 4);
  });

  it('refuses a gap in the indexes loudly and writes nothing of that batch', async () => {
    const { sm } = await fresh();
    await assert.rejects(sm.apply([{ index: 1, kind: 'noop' }, { index: 3, kind: 'noop' }]), (e) => isGalleonError(e, 'INVARIANT_VIOLATION'));
    assert.equal(sm.appliedIndex(), 0);
  });

  it('lets an unexpected exception in a command throw instead of recording it', async () => {
    const { sm } = await fresh();
    // A record without stampMs can only come from a broken driver.
    const bad = { index: 1, kind: 'command' as const, command: { clientId: 'c', seq: 1, stampMs: Number.NaN, method: 'expireLeases' as const, args: [] } };
    await assert.rejects(sm.apply([bad]), (e) => isGalleonError(e, 'INVARIANT_VIOLATION'));
    assert.equal(sm.appliedIndex(), 0);
    // A TypeError inside a handler (args that are not a list) is reported as an invariant violation.
    const broken = { index: 1, kind: 'command' as const, command: { clientId: 'c', seq: 1, stampMs: t0, method: 'createVolume' as const, args: null as never } };
    await assert.rejects(sm.apply([broken]), (e) => isGalleonError(e, 'INVARIANT_VIOLATION') && e.cause instanceof TypeError);
    assert.equal(sm.appliedIndex(), 0);
    assert.deepEqual(await sm.query('listVolumes', []), []);
  });

  it('gives byte-identical snapshots on two replicas fed the same records in different batches', async () => {
    const a = await fresh();
    const b = await fresh();
    const f = new Feeder(a.sm);
    await addNodes(f, 5);
    for (let i = 0; i < 6; i += 1) {
      f.stampMs += 1000;
      await f.run('createVolume', { name: `v${i}`, size: `${i + 1}G`, replicas: 1 + (i % 3) });
    }
    await f.run('createVolume', { name: 'v0' });
    await f.run('acquireLease', 'mount', 'v1', 'host-1', 30_000, 'rw');
    await f.run('acquireLease', 'mount', 'v0', 'host-2', 1_000, 'rw');
    await f.run('acquireLease', 'pg-primary', `${((await a.sm.query('getVolume', ['v2'])) as Volume).id}/1`, 'n2', 30_000);
    await f.run('acquireLease', 'pg-primary', `${((await a.sm.query('getVolume', ['v4'])) as Volume).id}/1`, 'n3', 30_000);
    await f.run('markDataNodeDown', 'n2');
    await f.run('updateVolumeLabels', 'v3', { k: 'v' });
    // Replica b gets the same log in batches of 3.
    for (let i = 0; i < f.log.length; i += 3) await b.sm.apply(f.log.slice(i, i + 3));
    const [sa, sb] = [await a.sm.snapshot(), await b.sm.snapshot()];
    assert.equal(sa.index, f.log.length);
    assert.equal(sb.index, sa.index);
    assert.ok(Buffer.from(sa.data).equals(Buffer.from(sb.data)), 'snapshots differ');
    // The per-node load table is exactly the sum over all placements after creates, deletes and failover.
    await f.ok('deleteVolume', 'v4');
    const entries = decodeSnapshot((await a.sm.snapshot()).data).entries.map((e) => [e.key.toString(), JSON.parse(e.value.toString()) as unknown] as const);
    const placements = entries.filter(([k]) => k.startsWith('pg/')).flatMap(([, v]) => v as PlacementGroup[]);
    const expected = loadOf(placements);
    const stored = new Map(entries.filter(([k]) => k.startsWith('nl/')).map(([k, v]) => [k.slice(3), v as { pgs: number; primaries: number }]));
    const ids = new Set([...expected.pgs.keys(), ...expected.primaries.keys(), ...stored.keys()]);
    assert.ok(ids.size >= 4);
    for (const id of ids) {
      assert.deepEqual(stored.get(id), { pgs: expected.pgs.get(id) ?? 0, primaries: expected.primaries.get(id) ?? 0 }, `load of ${id}`);
    }
    // Likewise the lease index by resource is exactly the leases there are.
    const leases = entries.filter(([k]) => k.startsWith('ls/')).map(([, v]) => v as { id: string; kind: string; resource: string });
    assert.ok(leases.length > 0);
    const index = new Map<string, string[]>();
    for (const l of leases) index.set(`lr/${l.kind}:${l.resource}`, [...(index.get(`lr/${l.kind}:${l.resource}`) ?? []), l.id].sort());
    assert.deepEqual(new Map(entries.filter(([k]) => k.startsWith('lr/')).map(([k, v]) => [k, v as string[]])), index);
  });

  it('answers from the mirror at once, and a snapshot or close right after holds every applied record (write-behind)', async () => {
    const { dir, sm } = await fresh();
    const f = new Feeder(sm);
    await addNodes(f, 3);
    // Many applies back to back, none waiting for the database in between.
    const pending = Array.from({ length: 40 }, (_, i) => sm.apply([f.record('createVolume', [{ name: `wb-${i}`, size: '1M' }])]));
    const results = await Promise.all(pending);
    assert.ok(results.every(([r]) => r?.ok === true));
    assert.equal((await sm.query('getVolume', ['wb-39']) as Volume).name, 'wb-39');
    // The snapshot reads the database: it must already hold the last batch.
    const snap = await sm.snapshot();
    assert.equal(snap.index, sm.appliedIndex());
    assert.equal(decodeSnapshot(snap.data).index, f.index);
    const index = sm.appliedIndex();
    await sm.close();
    const reopened = await openStateMachine(dir);
    open.push(reopened);
    assert.equal(reopened.appliedIndex(), index);
    assert.equal((await reopened.query('getVolume', ['wb-39']) as Volume).name, 'wb-39');
  });

  it('keeps the applied index across a restart and never re-applies', async () => {
    const { dir, sm } = await fresh();
    const f = new Feeder(sm);
    await addNodes(f, 3);
    const vol = await f.ok<Volume>('createVolume', { name: 'keep' });
    const index = sm.appliedIndex();
    const before = await sm.snapshot();
    await sm.close();
    const reopened = await openStateMachine(dir);
    open.push(reopened);
    assert.equal(reopened.appliedIndex(), index);
    assert.deepEqual(await reopened.query('getVolume', ['keep']), vol);
    // The driver replays its log from an older point: nothing changes.
    await reopened.apply(f.log);
    assert.equal(reopened.appliedIndex(), index);
    const after = await reopened.snapshot();
    assert.ok(Buffer.from(after.data).equals(Buffer.from(before.data)));
    // And the next record continues from there.
    const g = new Feeder(reopened, 'client-b');
    await g.ok('createVolume', { name: 'next' });
    assert.equal(reopened.appliedIndex(), index + 1);
  });

  it('restores a snapshot on another instance with the same answers, replacing what was there', async () => {
    const a = await fresh();
    const b = await fresh();
    const f = new Feeder(a.sm);
    await addNodes(f, 3);
    const vol = await f.ok<Volume>('createVolume', { name: 'data', size: '3G' });
    await f.ok('createStorageClass', { name: 'silver', replicas: 2 });
    await a.sm.apply([{ index: f.index += 1, kind: 'member', change: 'add-voter', memberId: 'm1', address: 'h:1', adminAddress: null }]);
    // b has state of its own that must disappear.
    const g = new Feeder(b.sm, 'other');
    await g.ok('createStorageClass', { name: 'bronze', replicas: 1 });
    const snap = await a.sm.snapshot();
    await b.sm.restore(snap.index, snap.data);
    assert.equal(b.sm.appliedIndex(), a.sm.appliedIndex());
    for (const [method, args] of [['listVolumes', []], ['getVolume', ['data']], ['getPlacement', [vol.id]], ['listStorageClasses', []], ['listDataNodes', []], ['clusterSummary', []]] as const) {
      assert.deepEqual(await b.sm.query(method, [...args]), await a.sm.query(method, [...args]), method);
    }
    assert.deepEqual(await b.sm.members(), await a.sm.members());
    await assert.rejects(b.sm.query('getStorageClass', ['bronze']), (e) => isGalleonError(e, 'STORAGE_CLASS_NOT_FOUND'));
    // Dedupe state travels with the snapshot: a retry after restore is not re-applied.
    const last = f.log.at(-1);
    assert.ok(last?.kind === 'command');
    const [retry] = await b.sm.apply([{ ...last, index: b.sm.appliedIndex() + 1 }]);
    assert.equal(retry?.ok, true);
    assert.equal(((await b.sm.query('listStorageClasses', [])) as StorageClass[]).length, 3);
    // The restored state survives a restart of b.
    await b.sm.close();
    const b2 = await openStateMachine(b.dir);
    open.push(b2);
    assert.deepEqual(await b2.query('getVolume', ['data']), vol);
  });

  it('refuses a corrupt snapshot or one with the wrong index, leaving the state alone', async () => {
    const a = await fresh();
    const f = new Feeder(a.sm);
    await f.ok('createStorageClass', { name: 'silver', replicas: 2 });
    const snap = await a.sm.snapshot();
    const b = await fresh();
    const flipped = Buffer.from(snap.data);
    flipped[20] = (flipped[20] ?? 0) ^ 0xff;
    await assert.rejects(b.sm.restore(snap.index, flipped), (e) => isGalleonError(e, 'CHECKSUM_MISMATCH'));
    await assert.rejects(b.sm.restore(snap.index, snap.data.subarray(0, 10)), (e) => isGalleonError(e, 'CHECKSUM_MISMATCH'));
    await assert.rejects(b.sm.restore(snap.index + 1, snap.data), (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
    assert.equal(b.sm.appliedIndex(), 0);
    assert.equal(((await b.sm.query('listStorageClasses', [])) as StorageClass[]).length, 2);
  });
});
