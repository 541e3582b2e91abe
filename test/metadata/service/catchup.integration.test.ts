import { strict as assert } from 'node:assert';
import { MetadataClient } from '../../../metadata/service/client.js';
import { ProcessCluster, until } from './harness.js';

describe('metadata service: a follower down through compaction catches up by snapshot', function () {
  this.timeout(90_000);
  // Low thresholds: every 40 applied entries the members snapshot and compact their logs.
  const flags = ['--snapshot-entries', '40'];
  const cluster = new ProcessCluster();
  let client: MetadataClient;

  before(async () => {
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3'], flags);
    client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
    for (let k = 1; k <= 3; k++) {
      await client.registerDataNode({ id: `d${k}`, address: `127.0.0.1:${9200 + k}`, zone: `z${k}`, capacityBytes: 1e12 });
    }
  });

  after(async () => {
    client?.close();
    await cluster.destroy();
  });

  it('restarts the follower and brings it to the leader state via InstallSnapshot', async () => {
    const st = await client.clusterStatus();
    const follower = [...cluster.procs.values()].find((p) => p.id !== st.leaderId)!;
    const { id, address } = follower;
    await cluster.kill9(id);

    const volumes = 4;
    const labelsPerVolume = 50;
    for (let v = 0; v < volumes; v++) await client.createVolume({ name: `c-${v}`, size: '1M' });
    await Promise.all(Array.from({ length: volumes }, async (_, v) => {
      for (let i = 0; i < labelsPerVolume; i++) await client.updateVolumeLabels(`c-${v}`, { [`k${i}`]: String(i) });
    }));
    const leaderView = await client.clusterStatus();

    const restarted = await cluster.start(id, address, flags, 'info');
    const local = new MetadataClient({ addresses: [restarted.address] });
    try {
      await until(async () => (await local.clusterStatus({ stale: true })).appliedIndex >= leaderView.commitIndex, 'the follower to catch up', 30_000);
      const seen = await local.listVolumes({ stale: true });
      for (let v = 0; v < volumes; v++) {
        const vol = seen.find((x) => x.name === `c-${v}`);
        assert.ok(vol !== undefined, `volume c-${v} on the restarted follower`);
        assert.equal(Object.keys(vol.labels).length, labelsPerVolume);
      }
    } finally {
      local.close();
    }
    assert.ok(restarted.stderr.join('').includes('restored a snapshot from the leader'), 'the follower caught up through a snapshot, not the log');
  });
});
