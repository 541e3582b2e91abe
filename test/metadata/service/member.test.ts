import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { startMetadataMember, type MetadataMember } from '../../../metadata/service/member.js';
import { isGalleonError } from '../../../proto/errors.js';
import { freePort, until } from './harness.js';

const logger = pino({ level: 'silent' });
const timing = { tickIntervalMs: 20, electionTicks: 10 };

describe('metadata/service member (in process, as the daemon embeds it)', function () {
  this.timeout(30_000);
  let dir: string;
  let member: MetadataMember | null = null;

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'galleon-member-')); });
  afterEach(async () => {
    await member?.stop();
    member = null;
    await rm(dir, { recursive: true, force: true });
  });

  it('bootstraps a one-member cluster, serves the API, exports metrics and keeps its state across a restart', async () => {
    const port = await freePort();
    const registry = new Registry();
    const opts = { id: 'solo', dataDir: join(dir, 'solo'), bindAddress: `127.0.0.1:${port}`, peers: [{ id: 'solo', address: `127.0.0.1:${port}` }], logger, registry, timing };
    member = await startMetadataMember(opts);
    assert.equal(member.address, `127.0.0.1:${port}`);
    await until(() => member?.status().role === 'leader', 'solo to lead');
    await member.api.registerDataNode({ id: 'd1', address: '127.0.0.1:9601', zone: 'z1', capacityBytes: 1e12 });
    const v = await member.api.createVolume({ name: 'solo-vol', size: '4M', replicas: 1, storageClass: 'fast-local-ssd' });
    assert.equal(v.sizeBytes, 4 * 1024 * 1024);
    const st = await member.api.clusterStatus();
    assert.equal(st.leaderId, 'solo');
    assert.deepEqual(st.members.map((m) => [m.id, m.role, m.isLeader]), [['solo', 'voter', true]]);
    assert.equal(st.dataNodes.length, 1);
    const metrics = await registry.metrics();
    assert.match(metrics, /galleon_raft_is_leader 1/);
    assert.match(metrics, /galleon_raft_proposals_total\{outcome="applied"\} [1-9]/);
    assert.match(metrics, /galleon_raft_frames_sent 0/);

    const applied = member.status().appliedIndex;
    await member.stop();
    member = await startMetadataMember({ ...opts, registry: new Registry() });
    assert.ok(member.status().appliedIndex >= applied, 'applied index survives the restart');
    await until(() => member?.status().role === 'leader', 'solo to lead again');
    assert.equal((await member.api.getVolume('solo-vol')).id, v.id);
  });

  it('a member with no key provider refuses a volume of an encrypted class without a data key; with one it wraps a key itself (issue #12)', async () => {
    const port = await freePort();
    const base = { id: 'k', dataDir: join(dir, 'k'), bindAddress: `127.0.0.1:${port}`, peers: [{ id: 'k', address: `127.0.0.1:${port}` }], logger, timing };
    member = await startMetadataMember(base);
    await until(() => member?.status().role === 'leader', 'k to lead');
    await member.api.registerDataNode({ id: 'd1', address: '127.0.0.1:9601', zone: 'z1', capacityBytes: 1e12 });
    await member.api.createStorageClass({ name: 'enc-one', encryption: true, replicas: 1, writeConcern: 'durable' });
    await assert.rejects(member.api.createVolume({ name: 'bare', size: '4M', storageClass: 'enc-one' }), (e) => isGalleonError(e, 'INVALID_ARGUMENT')
      && e.message === 'storage class enc-one encrypts, and this volume spec has no wrapped data key (dataKey), and this metadata member has no key provider to wrap one');
    assert.deepEqual(await member.api.listVolumes(), [], 'nothing was created');
    await member.stop();
    let wrapped = 0;
    const dataKeys = { wrapNewKey: () => { wrapped += 1; return Promise.resolve({ provider: 'internal' as const, keyId: 'test-kek:1', wrapped: Buffer.alloc(60, wrapped).toString('base64') }); } };
    member = await startMetadataMember({ ...base, dataKeys });
    await until(() => member?.status().role === 'leader', 'k to lead again');
    const v = await member.api.createVolume({ name: 'keyed', size: '4M', storageClass: 'enc-one' });
    assert.equal(v.encrypted, true);
    assert.equal(wrapped, 1);
    assert.equal((await member.api.getVolumeKey(v.id)).keyId, 'test-kek:1');
    const snap = await member.api.createSnapshot('keyed', 's1');
    const clone = await member.api.cloneVolume(snap.name, 'keyed-clone');
    assert.equal(clone.encrypted, true);
    assert.equal(wrapped, 2, 'the clone has its own key');
    // A class without encryption takes no key.
    assert.equal((await member.api.createVolume({ name: 'plain', size: '4M', storageClass: 'fast-local-ssd' })).encrypted, undefined);
    assert.equal(wrapped, 2);
  });

  it('refuses to start without state, peers or join, with a hint', async () => {
    await assert.rejects(startMetadataMember({ id: 'lost', dataDir: join(dir, 'lost'), bindAddress: '127.0.0.1:0', logger }),
      (e) => isGalleonError(e, 'INVALID_ARGUMENT') && e.hint !== undefined && e.hint.includes('--peers'));
  });

  it('refuses peers that do not include the member itself', async () => {
    await assert.rejects(startMetadataMember({ id: 'n9', dataDir: join(dir, 'n9'), bindAddress: '127.0.0.1:0', peers: [{ id: 'n1', address: '127.0.0.1:1' }], logger }),
      (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
  });
});
