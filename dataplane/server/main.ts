/**
 * A standalone data node process: block store + block server. Until the daemon composes the
 * roles (cli/), this is how tests and the benchmark run data nodes. Placements are installed
 * through PUT /v1/admin/placement (static source).
 *
 *   tsx dataplane/server/main.ts --node-id n1 --zone z1 --data-dir DIR [--port 0] [--layout segments]
 *
 * Prints one JSON line `{"event":"listening","nodeId":…,"address":"host:port"}` on stdout.
 */
import { parseArgs } from 'node:util';
import { dataplaneLogger } from '../log.js';
import { StaticPlacementSource } from '../placement.js';
import { LevelBlockStore } from '../store/level-block-store.js';
import { BlockServer } from './block-server.js';

const { values } = parseArgs({
  options: {
    'node-id': { type: 'string' },
    zone: { type: 'string', default: 'zone-a' },
    'data-dir': { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    layout: { type: 'string', default: 'segments' },
  },
});
const nodeId = values['node-id'];
const dir = values['data-dir'];
if (nodeId === undefined || dir === undefined || (values.layout !== 'segments' && values.layout !== 'inline')) {
  process.stderr.write('usage: main.ts --node-id ID --data-dir DIR [--zone Z] [--host H] [--port P] [--layout segments|inline]\n');
  process.exit(2);
}
const log = dataplaneLogger(`data-node-${nodeId}`);
const store = await LevelBlockStore.open({ dir, layout: values.layout });
const server = new BlockServer({ nodeId, zone: values.zone, store, placement: new StaticPlacementSource(), log, host: values.host, port: Number(values.port) });
const address = await server.listen();
process.stdout.write(`${JSON.stringify({ event: 'listening', nodeId, address })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  await store.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
