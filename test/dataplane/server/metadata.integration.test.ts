/**
 * Data nodes with a real metadata quorum (three member processes): they register and heartbeat
 * with PG reports, a volume created through the metadata API is placed on them, and the block
 * client routes by the placement it reads from the metadata service.
 */
import assert from 'node:assert/strict';
import { MetadataClient } from '../../../metadata/service/client.js';
import { BlockClient } from '../../../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../../../dataplane/placement.js';
import { ProcessCluster } from '../../metadata/service/harness.js';
import { TestCluster } from '../cluster.js';
import { pattern, waitFor } from '../helpers.js';

describe('data nodes with the metadata service (3 + 3 processes)', function () {
  this.timeout(90_000);
  const meta = new ProcessCluster();
  const data = new TestCluster();
  let api: MetadataClient | undefined;
  let client: BlockClient | undefined;

  before(async () => {
    await meta.init();
    const members = await meta.bootstrap(['m1', 'm2', 'm3']);
    const addresses = members.map((m) => m.address);
    api = new MetadataClient({ addresses });
    const flags = ['--metadata', addresses.join(','), '--heartbeat-ms', '200'];
    await Promise.all([data.start('d1', 'z1', undefined, flags), data.start('d2', 'z2', undefined, flags), data.start('d3', 'z3', undefined, flags)]);
  });
  after(async () => {
    await client?.close();
    api?.close();
    await data.stopAll();
    await meta.destroy();
  });

  it('registers the data nodes, places a volume on them and serves replicated blocks', async () => {
    assert.ok(api);
    const m = api;
    const nodes = await waitFor('3 data nodes up', async () => {
      const list = await m.listDataNodes();
      return list.filter((n) => n.state === 'up').length === 3 ? list : undefined;
    }, 30_000);
    assert.deepEqual(nodes.map((n) => n.zone).sort(), ['z1', 'z2', 'z3']);
    assert.equal(nodes.find((n) => n.id === 'd1')?.address, data.node('d1').address);

    const volume = await m.createVolume({ name: 'dp-vol', size: '1G', replicas: 3 });
    client = new BlockClient({ placement: new MetadataPlacementSource(m) });
    const blocks = Array.from({ length: 48 }, (_, i) => ({ inode: 1 + (i % 3), blockNo: i * 64, data: pattern(i, 4096) }));
    const acks = await client.writeBlocks(volume.id, blocks, 'replicated');
    assert.equal(acks.length, blocks.length);
    const back = await client.readBlocks(volume.id, blocks);
    back.forEach((r, i) => assert.deepEqual(r.data, blocks[i]?.data));

    // Heartbeats carry each node's PG progress to the service.
    await waitFor('heartbeats after the writes', async () => {
      const list = await m.listDataNodes();
      return list.every((n) => n.lastHeartbeatAtMs > n.registeredAtMs) ? true : undefined;
    }, 10_000);
  });
});
