/**
 * A standalone data node process: block store + block server. Until the daemon composes the
 * roles (cli/), this is how tests and the benchmark run data nodes. Placements are installed
 * through PUT /v1/admin/placement (static source).
 *
 *   tsx dataplane/server/main.ts --node-id n1 --zone z1 --data-dir DIR [--port 0] [--layout segments]
 *                                [--scrub-rate blocks/s, 0 = no scrubber]
 *
 * Prints one JSON line `{"event":"listening","nodeId":…,"address":"host:port"}` on stdout.
 */
import { parseArgs } from 'node:util';
import { dataplaneLogger } from '../log.js';
import { StaticPlacementSource } from '../placement.js';
import { LevelBlockStore } from '../store/level-block-store.js';
import { defaultScrubBlocksPerSecond, Scrubber } from '../store/scrubber.js';
import { BlockServer } from './block-server.js';
import { HttpRepairSource } from './repair-source.js';

const { values } = parseArgs({
  options: {
    'node-id': { type: 'string' },
    zone: { type: 'string', default: 'zone-a' },
    'data-dir': { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    layout: { type: 'string', default: 'segments' },
    'scrub-rate': { type: 'string', default: String(defaultScrubBlocksPerSecond) },
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
const placement = new StaticPlacementSource();
const server = new BlockServer({ nodeId, zone: values.zone, store, placement, log, host: values.host, port: Number(values.port) });
const address = await server.listen();
const scrubRate = Number(values['scrub-rate']);
const scrubber = scrubRate > 0 ? new Scrubber({ store, repair: new HttpRepairSource(nodeId, placement), log, maxBlocksPerSecond: scrubRate }) : null;
scrubber?.start();
process.stdout.write(`${JSON.stringify({ event: 'listening', nodeId, address })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await scrubber?.stop();
  await server.close();
  await store.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
