/**
 * A standalone data node process: block store + block server. Until the daemon composes the
 * roles (cli/), this is how tests and the benchmark run data nodes. Placements are installed
 * through PUT /v1/admin/placement (static source).
 *
 *   tsx dataplane/server/main.ts --node-id n1 --zone z1 --data-dir DIR [--port 0] [--layout segments]
 *                                [--scrub-rate blocks/s, 0 = no scrubber] [--reclaim-interval-ms N, 0 = no segment GC/tombstone purge]
 *                                [--metadata host:port,… [--heartbeat-ms 1000] [--capacity-bytes N] [--lease-ttl-ms 4000]]
 *                                [--tls-dir DIR: mutual TLS on the block port and to peers and the metadata service; default plaintext]
 * With --metadata the node registers, heartbeats with PG reports, and takes placements from the
 * metadata service; without it placements are installed by hand (PUT /v1/admin/placement).
 *
 * Prints one JSON line `{"event":"listening","nodeId":…,"address":"host:port"}` on stdout.
 */
import { statfs } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { register } from 'prom-client';
import { installProcessGuard } from '../../proto/process-guard.js';
import { readTlsDir } from '../../proto/tls.js';
import { MetadataClient } from '../../metadata/service/client.js';
import { dataplaneLogger } from '../log.js';
import { MetadataPlacementSource, StaticPlacementSource } from '../placement.js';
import type { PlacementSource } from '../placement.js';
import { LevelBlockStore } from '../store/level-block-store.js';
import { metrics } from '../metrics.js';
import { defaultScrubBlocksPerSecond, Scrubber } from '../store/scrubber.js';
import { defaultReclaimPassIntervalMs, Reclaimer } from '../store/reclaimer.js';
import { DataNodeAgent } from './agent.js';
import { pgsWithDepartedCopies } from './departed.js';
import { defaultHeartbeatIntervalMs, defaultLeaseTtlMs } from '../../proto/limits.js';
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
    'reclaim-interval-ms': { type: 'string', default: String(defaultReclaimPassIntervalMs) },
    /** Comma-separated metadata member addresses: register, heartbeat, take placements from it. */
    metadata: { type: 'string' },
    'heartbeat-ms': { type: 'string', default: String(defaultHeartbeatIntervalMs) },
    'capacity-bytes': { type: 'string' },
    /** pg-primary lease ttl; the metadata service's data-node timeout must exceed it plus its margin. */
    'lease-ttl-ms': { type: 'string', default: String(defaultLeaseTtlMs) },
    /** ca.crt, tls.crt, tls.key: mutual TLS everywhere (proto/tls.ts); absent: plaintext. */
    'tls-dir': { type: 'string' },
  },
});
const nodeId = values['node-id'];
const dir = values['data-dir'];
if (nodeId === undefined || dir === undefined || (values.layout !== 'segments' && values.layout !== 'inline')) {
  process.stderr.write('usage: main.ts --node-id ID --data-dir DIR [--zone Z] [--host H] [--port P] [--layout segments|inline]\n');
  process.exit(2);
}
const log = dataplaneLogger(`data-node-${nodeId}`);
// The last resort (proto/process-guard.ts): counted on the block server's /metrics (default registry).
installProcessGuard({ logger: log, registry: register });
const store = await LevelBlockStore.open({ dir, layout: values.layout, metrics });
const tls = values['tls-dir'] === undefined ? null : await readTlsDir(values['tls-dir']);
const metadata = values.metadata === undefined ? null : new MetadataClient({ addresses: values.metadata.split(',').filter((a) => a !== ''), tls });
const placement: PlacementSource = metadata === null ? new StaticPlacementSource() : new MetadataPlacementSource(metadata);
const server = new BlockServer({
  nodeId, zone: values.zone, store, placement, log, host: values.host, port: Number(values.port), tls,
  // With a metadata service nothing that depends on the store is served before the node registered.
  ...(metadata === null ? {} : { leases: { api: metadata, ttlMs: Number(values['lease-ttl-ms']) }, gated: true }),
});
const address = await server.listen();
const scrubRate = Number(values['scrub-rate']);
const scrubber = scrubRate > 0 ? new Scrubber({ store, repair: new HttpRepairSource(nodeId, placement, tls), log, metrics, maxBlocksPerSecond: scrubRate }) : null;
scrubber?.start();
const reclaimIntervalMs = Number(values['reclaim-interval-ms']);
const reclaimer = reclaimIntervalMs > 0 ? new Reclaimer({
  store, log, metrics, passIntervalMs: reclaimIntervalMs,
  // Tombstones of a PG stay while a node that left it may still hand an older copy back (store/tombstone-purge.ts).
  ...(metadata === null ? {} : { keepTombstonesOf: () => pgsWithDepartedCopies(metadata) }),
}) : null;
reclaimer?.start();
let agent: DataNodeAgent | null = null;
if (metadata !== null) {
  const fsInfo = await statfs(dir);
  const capacityBytes = values['capacity-bytes'] !== undefined ? Number(values['capacity-bytes']) : fsInfo.blocks * fsInfo.bsize;
  agent = new DataNodeAgent({
    api: metadata, store, log, placement, replicator: server.replicator, gate: server, heartbeatIntervalMs: Number(values['heartbeat-ms']),
    registration: { id: nodeId, address, zone: values.zone, capacityBytes },
  });
  await agent.start();
}
process.stdout.write(`${JSON.stringify({ event: 'listening', nodeId, address })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await scrubber?.stop();
  await reclaimer?.stop();
  await agent?.stop();
  metadata?.close();
  await server.close();
  await store.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
// Test and benchmark harnesses set this so a node never outlives a harness that crashed.
if (process.env.GALLEON_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) void stop(); }, 500).unref();
}
process.on('SIGINT', () => void stop());
// A standalone node has nothing to reload; SIGHUP must not kill it silently (its default).
process.on('SIGHUP', () => log.info('SIGHUP: nothing to reload in a standalone data node'));
