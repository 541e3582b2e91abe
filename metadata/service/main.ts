/**
 * Process entry of one metadata member (used by the chaos suite and integration tests):
 *
 *   node --import tsx metadata/service/main.ts --id n1 --data-dir D --bind 127.0.0.1:0 \
 *        --peers n1=127.0.0.1:p1,n2=127.0.0.1:p2,n3=127.0.0.1:p3
 *   node --import tsx metadata/service/main.ts --id n4 --data-dir D4 --bind 127.0.0.1:0 --join 127.0.0.1:p1
 *
 * Prints one JSON line {"ready":true,"id":…,"address":…} on stdout once serving; logs go to
 * stderr. SIGTERM/SIGINT stop it cleanly (in-flight work finished, stores synced and closed).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { readTlsDir } from '../../proto/tls.js';
import { installProcessGuard } from '../../proto/process-guard.js';
import { startMetadataMember, type MemberTiming, type PeerSpec } from './member.js';

const numericFlags = {
  'tick-ms': 'tickIntervalMs',
  'election-ticks': 'electionTicks',
  'heartbeat-ticks': 'heartbeatTicks',
  'snapshot-entries': 'snapshotEveryEntries',
  'snapshot-bytes': 'snapshotEveryBytes',
  'snapshot-chunk-bytes': 'snapshotChunkBytes',
  'snapshot-send-bytes-per-sec': 'snapshotSendBytesPerSec',
  'proposal-timeout-ms': 'proposalTimeoutMs',
  'read-timeout-ms': 'readTimeoutMs',
  'data-node-timeout-ms': 'dataNodeHeartbeatTimeoutMs',
  'controller-interval-ms': 'controllerIntervalMs',
} as const satisfies Record<string, keyof MemberTiming>;

function parsePeers(raw: string): PeerSpec[] {
  return raw.split(',').filter((s) => s !== '').map((item) => {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1) {
      throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `peer "${item}" is not id=host:port`, { hint: 'write --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,...' });
    }
    return { id: item.slice(0, eq), address: item.slice(eq + 1) };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      id: { type: 'string' },
      'data-dir': { type: 'string' },
      bind: { type: 'string', default: '127.0.0.1:0' },
      advertise: { type: 'string' },
      'admin-address': { type: 'string' },
      peers: { type: 'string' },
      join: { type: 'string' },
      'auto-promote': { type: 'boolean', default: false },
      'metrics-bind': { type: 'string' },
      'tls-dir': { type: 'string' },
      'allow-unkeyed-encryption': { type: 'boolean', default: false },
      ...Object.fromEntries(Object.keys(numericFlags).map((k) => [k, { type: 'string' as const }])),
    },
    strict: true,
  });
  const id = values.id;
  const dataDir = values['data-dir'];
  if (typeof id !== 'string' || typeof dataDir !== 'string') {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, '--id and --data-dir are required', { hint: 'e.g. --id n1 --data-dir /var/lib/galleon/n1' });
  }
  const timing: Partial<MemberTiming> = {};
  for (const [flag, key] of Object.entries(numericFlags)) {
    const raw = (values as Record<string, unknown>)[flag];
    if (typeof raw !== 'string') continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `--${flag} must be a positive number, got "${raw}"`, { hint: `e.g. --${flag} 100` });
    timing[key] = n;
  }
  const logger = pino({ level: process.env.GALLEON_LOG_LEVEL ?? 'info' }, pino.destination(2));
  const registry = new Registry();
  installProcessGuard({ logger, registry });
  const member = await startMetadataMember({
    registry,
    id,
    dataDir,
    bindAddress: values.bind,
    ...(values.advertise === undefined ? {} : { advertiseAddress: values.advertise }),
    ...(values['admin-address'] === undefined ? {} : { adminAddress: values['admin-address'] }),
    ...(values.peers === undefined ? {} : { peers: parsePeers(values.peers) }),
    ...(values.join === undefined ? {} : { join: values.join.split(',').filter((s) => s !== '') }),
    autoPromote: values['auto-promote'],
    logger,
    timing,
    // Mutual TLS with this folder's certificate (proto/tls.ts); without --tls-dir, plaintext (test harnesses).
    tls: values['tls-dir'] === undefined ? null : await readTlsDir(values['tls-dir']),
    // This process has no key provider: a volume of an encrypted class is refused, unless a test harness
    // whose block clients hold no keys asks for the old behaviour (metadata/service/volume-key-gate.ts).
    allowUnkeyedEncryption: values['allow-unkeyed-encryption'],
  });
  let metricsServer: Server | null = null;
  let metricsAddress: string | null = null;
  if (values['metrics-bind'] !== undefined) {
    metricsServer = await serveMetrics(values['metrics-bind'], registry);
    const a = metricsServer.address() as AddressInfo;
    metricsAddress = `${a.address}:${a.port}`;
  }
  process.stdout.write(`${JSON.stringify({ ready: true, id: member.id, address: member.address, ...(metricsAddress === null ? {} : { metricsAddress }) })}\n`);

  let exiting = false;
  const shutdown = (signal: string): void => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'stopping');
    metricsServer?.close();
    member.stop().then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'stop failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => logger.info({ level: logger.level }, 'SIGHUP: nothing to reload in a standalone member'));
  void member.failed.then(() => {
    exiting = true;
    void member.stop().finally(() => process.exit(70));
  });
}

/** Prometheus text on GET /metrics (the daemon has its own admin endpoint; this is for bare members). */
function serveMetrics(bind: string, registry: Registry): Promise<Server> {
  const colon = bind.lastIndexOf(':');
  const host = bind.slice(0, colon);
  const port = Number(bind.slice(colon + 1));
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType }).end(text);
    }, (err: unknown) => {
      res.writeHead(500).end(String(err));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

main().catch((err: unknown) => {
  if (err instanceof GalleonError) {
    process.stderr.write(`error: ${err.message}\n${err.hint === undefined ? '' : `hint: ${err.hint}\n`}`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  }
  process.exit(1);
});
