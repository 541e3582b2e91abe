import { strict as assert } from 'node:assert';
import { MetadataClient } from '../../../metadata/service/client.js';
import { freePort, ProcessCluster, until } from './harness.js';

describe('metadata service: membership changes with real processes', function () {
  this.timeout(120_000);
  const cluster = new ProcessCluster();
  let client: MetadataClient;

  before(async () => {
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3']);
    client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
    for (let k = 1; k <= 3; k++) {
      await client.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9300 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
    }
    await client.createVolume({ name: 'm-1', size: '1M', labels: { before: 'join' } });
  });

  after(async () => {
    client?.close();
    await cluster.destroy();
  });

  it('a fourth member joins as a learner, catches up and is promoted', async () => {
    const port = await freePort();
    const n4 = await cluster.start('n4', `127.0.0.1:${port}`, ['--join', cluster.addresses().join(',')]);
    let st = await client.clusterStatus();
    assert.equal(st.members.find((m) => m.id === 'n4')?.role, 'learner');

    const local = new MetadataClient({ addresses: [n4.address] });
    try {
      await until(async () => (await local.getVolume('m-1', { stale: true })).labels.before === 'join', 'the learner to receive the state');
      const members = await until(async () => {
        try {
          return await client.promoteMember('n4');
        } catch {
          return undefined;
        }
      }, 'promotion of n4');
      assert.equal(members.find((m) => m.id === 'n4')?.role, 'voter');
      await client.updateVolumeLabels('m-1', { after: 'promote' });
      await until(async () => (await local.getVolume('m-1', { stale: true })).labels.after === 'promote', 'n4 to apply new writes');
      st = await client.clusterStatus();
      assert.deepEqual(st.members.filter((m) => m.role === 'voter').map((m) => m.id).sort(), ['n1', 'n2', 'n3', 'n4']);

      // Leadership can move to the new voter.
      await client.transferLeadership('n4');
      await until(async () => (await client.clusterStatus()).leaderId === 'n4', 'n4 to lead');
    } finally {
      local.close();
    }
  });

  it('removing the leader hands leadership over first; the cluster keeps working', async () => {
    const before = await client.clusterStatus();
    const removed = before.leaderId!;
    const members = await client.removeMember(removed);
    assert.ok(!members.some((m) => m.id === removed), `${removed} is no longer a member`);
    const after = await client.clusterStatus();
    assert.notEqual(after.leaderId, removed);
    assert.equal(after.members.filter((m) => m.role === 'voter').length, 3);
    await client.updateVolumeLabels('m-1', { removed });
    assert.equal((await client.getVolume('m-1')).labels.removed, removed);
    await cluster.stop(removed);
    // Still a quorum of the three remaining voters.
    await client.updateVolumeLabels('m-1', { last: 'write' });
    assert.equal((await client.getVolume('m-1')).labels.last, 'write');
  });
});
