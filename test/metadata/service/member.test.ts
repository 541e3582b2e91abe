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

  it('refuses to start without state, peers or join, with a hint', async () => {
    await assert.rejects(startMetadataMember({ id: 'lost', dataDir: join(dir, 'lost'), bindAddress: '127.0.0.1:0', logger }),
      (e) => isGalleonError(e, 'INVALID_ARGUMENT') && e.hint !== undefined && e.hint.includes('--peers'));
  });

  it('refuses peers that do not include the member itself', async () => {
    await assert.rejects(startMetadataMember({ id: 'n9', dataDir: join(dir, 'n9'), bindAddress: '127.0.0.1:0', peers: [{ id: 'n1', address: '127.0.0.1:1' }], logger }),
      (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
  });
});
