import { strict as assert } from 'node:assert';
import { MetadataClient } from '../../../metadata/service/client.js';
import { ProcessCluster, until } from './harness.js';

describe('metadata service: leader controllers', function () {
  this.timeout(60_000);
  const cluster = new ProcessCluster();
  let client: MetadataClient;

  before(async () => {
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3'], ['--data-node-timeout-ms', '1500', '--controller-interval-ms', '200']);
    client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
  });

  after(async () => {
    client?.close();
    await cluster.destroy();
  });

  it('marks a data node down once its heartbeats stop, and keeps a heartbeating one up', async () => {
    await client.registerDataNode({ id: 'quiet', address: '127.0.0.1:9501', zone: 'z1', capacityBytes: 1e12 });
    await client.registerDataNode({ id: 'alive', address: '127.0.0.1:9502', zone: 'z2', capacityBytes: 1e12 });
    let beating = true;
    const beat = (async () => {
      while (beating) {
        await client.heartbeatDataNode('alive', 0, []).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const nodes = await until(async () => {
        const list = await client.listDataNodes();
        return list.find((n) => n.id === 'quiet')?.state === 'down' ? list : undefined;
      }, 'the silent node to be marked down', 20_000);
      assert.equal(nodes.find((n) => n.id === 'alive')?.state, 'up');
    } finally {
      beating = false;
      await beat;
    }
  });
});
