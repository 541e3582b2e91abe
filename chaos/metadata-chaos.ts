/**
 * Metadata chaos run: a real three-member quorum under concurrent load while members are
 * SIGKILLed and restarted; then every acknowledged write must still be there and the whole
 * recorded history must be linearizable.
 *
 *   npm run chaos:metadata -- [--seconds 60] [--seed N] [--clients 8] [--kill-interval-ms 5000] [--pause-fraction 0]
 *
 * `--pause-fraction F` turns that fraction of the faults into SIGSTOP … SIGCONT pauses: a paused
 * leader wakes up believing it still leads, which is what stale reads are made of.
 *
 * Prints, last: `kills: K, operations: N, acknowledged writes: W, lost: L, linearizable: yes|no|unknown`
 * and exits 0 only for no loss and a definite "yes".
 *
 * `--inject-lost-write` records one acknowledged write that was never sent, after the load: a
 * self-test that the final reads, the loss check and the checker do catch a lost write.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isGalleonError } from '../proto/errors.js';
import { readTlsDir } from '../proto/tls.js';
import { connectClient, type ChaosClient } from './cluster/client.js';
import { MetadataCluster } from './cluster/metadata-cluster.js';
import { installEmergencyCleanup } from './lib/child.js';
import { printLogTails, retryCall } from './lib/harness.js';
import { Random } from './lib/random.js';
import { delay, withTimeout } from './lib/wait.js';
import { checkHistory, formatViolation, registerModel } from './linearizability/index.js';
import { HistoryRecorder, type ChaosOperation } from './metadata/history-recorder.js';
import { findLostWrites } from './metadata/loss.js';
import { Nemesis } from './metadata/nemesis.js';
import { existsValue, labelKey, labelName, volumeKey, Workload } from './metadata/workload.js';
import { integerFlag, fractionFlag, seedFlag } from './lib/flags.js';

const limits = {
  registerVolumeCount: 6,
  extraVolumeCount: 3,
  dataNodeCount: 3,
  /** The client's own deadline for one call, its retries included. */
  opTimeoutMs: 5_000,
  /** Our hard stop on a call beyond the client's deadline, in case the client hangs. */
  opTimeoutGraceMs: 1_000,
  errorBackoffMs: 50,
  heartbeatIntervalMs: 1_000,
  minOutageMs: 500,
  maxOutageMs: 2_500,
  minUpMs: 1_000,
  /** After healing, the cluster must answer a linearizable read within this. */
  healTimeoutMs: 30_000,
  setupTimeoutMs: 30_000,
  checkMaxStepsPerKey: 20_000_000,
  checkMaxStepsTotal: 100_000_000,
} as const;

interface Args {
  seconds: number;
  seed: number;
  clients: number;
  killIntervalMs: number;
  injectLostWrite: boolean;
  pauseFraction: number;
  /** `--plaintext`: members and clients without TLS (the run is TLS by default, as the product is). */
  plaintext: boolean;
}

function parse(): Args {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string' },
      clients: { type: 'string', default: '8' },
      'kill-interval-ms': { type: 'string', default: '5000' },
      'inject-lost-write': { type: 'boolean', default: false },
      'pause-fraction': { type: 'string', default: '0' },
      plaintext: { type: 'boolean', default: false },
    },
    strict: true,
  });
  return {
    seconds: integerFlag('seconds', values.seconds, 1),
    seed: seedFlag(values.seed),
    clients: integerFlag('clients', values.clients, 1),
    killIntervalMs: integerFlag('kill-interval-ms', values['kill-interval-ms'], 500),
    injectLostWrite: values['inject-lost-write'],
    pauseFraction: fractionFlag('pause-fraction', values['pause-fraction']),
    plaintext: values.plaintext,
  };
}

const log = (line: string): void => console.log(`chaos: ${line}`);

/** Retries an idempotent setup or verification call until it succeeds. */
function retry<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  return retryCall(what, timeoutMs, limits.opTimeoutMs + limits.opTimeoutGraceMs, fn);
}

/**
 * `nodes[i]` speaks for fake data node `chaos-dn<i>`: under mutual TLS with that node's own
 * certificate, since the metadata API binds registrations and heartbeats to the certificate's node.
 */
async function setUp(client: ChaosClient, nodes: readonly ChaosClient[], registerVolumes: string[]): Promise<void> {
  for (let i = 0; i < limits.dataNodeCount; i++) {
    const id = `chaos-dn${i}`;
    const node = nodes[i] ?? client;
    await retry(`registering data node ${id}`, limits.setupTimeoutMs, () =>
      node.registerDataNode({ id, address: `127.0.0.1:${20000 + i}`, zone: `zone-${i}`, capacityBytes: 1 << 40 }));
  }
  for (const name of registerVolumes) {
    await retry(`creating volume ${name}`, limits.setupTimeoutMs, async () => {
      try {
        await client.createVolume({ name, size: '1M' });
      } catch (err) {
        // A retried create whose first attempt applied: the volume is there, which is the point.
        if (!isGalleonError(err, 'VOLUME_EXISTS')) throw err;
      }
      return true;
    });
  }
}

/** Keeps the fake data nodes "up" so volume creation keeps finding places for replicas. */
async function heartbeatLoop(nodes: readonly ChaosClient[], stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    for (let i = 0; i < limits.dataNodeCount; i++) {
      try {
        const node = nodes[i];
        if (node !== undefined) await withTimeout(node.heartbeatDataNode(`chaos-dn${i}`, 0, []), limits.opTimeoutMs);
      } catch {
        // Missed heartbeats during an election are exactly what a real node would see.
      }
    }
    await delay(limits.heartbeatIntervalMs);
  }
}

async function main(): Promise<number> {
  const args = parse();
  const root = await mkdtemp(join(tmpdir(), 'galleon-chaos-'));
  installEmergencyCleanup(() => rmSync(root, { recursive: true, force: true }));
  log(`seed ${args.seed}, ${args.seconds} s, ${args.clients} clients, kill every ~${args.killIntervalMs} ms, ${args.plaintext ? "plaintext" : "mutual TLS"}, dir ${root}`);
  const rnd = new Random(args.seed);
  const registerVolumes = Array.from({ length: limits.registerVolumeCount }, (_, i) => `chaos-k${i}`);
  const extraVolumes = Array.from({ length: limits.extraVolumeCount }, (_, i) => `chaos-x${i}`);
  const clients: ChaosClient[] = [];
  let cluster: MetadataCluster | null = null;
  let success = false;
  try {
    cluster = await MetadataCluster.start({ root, tls: !args.plaintext });
    log(`members up: ${cluster.members.map((m) => `${m.id}@${m.address}`).join(', ')}`);
    const admin = await connectClient(cluster.addresses, { callDeadlineMs: limits.opTimeoutMs, tls: cluster.clientTls });
    clients.push(admin);
    const c = cluster;
    const nodeClients = await Promise.all(Array.from({ length: limits.dataNodeCount }, async (_, i) =>
      connectClient(c.addresses, { callDeadlineMs: limits.opTimeoutMs, tls: c.pki === null ? null : await readTlsDir(await c.pki.dirOf(`chaos-dn${i}`)) })));
    clients.push(...nodeClients);
    await setUp(admin, nodeClients, registerVolumes);
    log(`set up ${limits.dataNodeCount} data nodes and ${registerVolumes.length} volumes`);

    const recorder = new HistoryRecorder();
    const workload = new Workload(recorder, {
      registerVolumes, extraVolumes,
      opTimeoutMs: limits.opTimeoutMs + limits.opTimeoutGraceMs, errorBackoffMs: limits.errorBackoffMs, extraVolumeSize: '1M',
    });
    const workers: Promise<void>[] = [];
    for (let c = 0; c < args.clients; c++) {
      const client = await connectClient(cluster.addresses, { callDeadlineMs: limits.opTimeoutMs, tls: cluster.clientTls });
      clients.push(client);
      workers.push(workload.runClient(c, client, args.seed * 1000 + c + 1));
    }
    let loadStopped = false;
    const heartbeats = heartbeatLoop(nodeClients, () => loadStopped);
    const nemesis = new Nemesis(cluster, admin, rnd, {
      intervalMs: args.killIntervalMs, minOutageMs: limits.minOutageMs, maxOutageMs: limits.maxOutageMs, minUpMs: limits.minUpMs, pauseFraction: args.pauseFraction, leaderQueryTimeoutMs: 2_000,
    }, log);
    const startedAtMs = Date.now();
    const nemesisDone = nemesis.run(startedAtMs);

    await delay(args.seconds * 1000);
    log('stopping load');
    workload.stop();
    nemesis.stop();
    await Promise.all([...workers, nemesisDone]);
    loadStopped = true;
    await heartbeats;
    const longestStallMs = longestGapBetweenAnswers(recorder.operations) / 1e6;

    if (args.injectLostWrite) {
      const at = recorder.now();
      const victim = registerVolumes[0]!;
      recorder.operations.push({ clientId: args.clients, key: labelKey(victim), input: { op: 'write', value: 'injected-never-sent' }, output: {}, outcome: 'ok', callAt: at, returnAt: at + 1 });
      log(`injected an acknowledged write that was never sent, on ${victim}`);
    }

    // Heal: everything up, and a leader that answers a linearizable read.
    for (const id of cluster.downMembers()) await cluster.startMember(id);
    const verifier = await connectClient(cluster.addresses, { callDeadlineMs: limits.opTimeoutMs, tls: cluster.clientTls });
    clients.push(verifier);
    const finalValues = new Map<string, string | null>();
    const finalClientId = args.clients;
    for (const name of registerVolumes) {
      const vol = await retry(`final read of ${name}`, limits.healTimeoutMs, () => verifier.getVolume(name));
      finalValues.set(labelKey(name), vol.labels[labelName] ?? null);
    }
    for (const name of extraVolumes) {
      const exists = await retry(`final read of ${name}`, limits.healTimeoutMs, async () => {
        try {
          await verifier.getVolume(name);
          return true;
        } catch (err) {
          if (isGalleonError(err, 'VOLUME_NOT_FOUND')) return false;
          throw err;
        }
      });
      finalValues.set(volumeKey(name), exists ? existsValue : null);
    }
    // The final reads are part of the history: the checker then also proves nothing
    // acknowledged was rolled back by the crashes.
    for (const [key, value] of finalValues) {
      const at = recorder.now();
      recorder.operations.push({ clientId: finalClientId, key, input: { op: 'read' }, output: { value }, outcome: 'ok', callAt: at, returnAt: at });
    }

    const ops = recorder.operations;
    const acknowledgedWrites = ops.filter((op) => op.input.op !== 'read' && op.outcome === 'ok').length;
    const unknown = ops.filter((op) => op.outcome === 'unknown').length;
    const lost = findLostWrites(ops, finalValues);
    const checkStarted = performance.now();
    const result = checkHistory(registerModel, ops, { maxStepsPerKey: limits.checkMaxStepsPerKey, maxStepsTotal: limits.checkMaxStepsTotal });
    const checkMs = performance.now() - checkStarted;

    const errors = [...recorder.errorsByCode].map(([code, n]) => `${code}=${n}`).join(' ') || 'none';
    const leaderKills = nemesis.kills.filter((k) => k.wasLeader).length;
    log(`kills of the leader: ${leaderKills} of ${nemesis.kills.length}`);
    log(`operations by outcome: ok=${ops.filter((o) => o.outcome === 'ok').length} unknown=${unknown} failed=${ops.filter((o) => o.outcome === 'failed').length}; errors: ${errors}`);
    log(`longest time with no operation answered (the worst failover): ${longestStallMs.toFixed(0)} ms`);
    log(`checker: ${result.verdict} in ${checkMs.toFixed(0)} ms, ${result.steps} steps over ${result.keys.length} keys`);
    for (const l of lost.slice(0, 20)) log(`LOST: ${l.key} acknowledged ${JSON.stringify(l.value)} but the final value is ${JSON.stringify(l.finalValue)}`);
    for (const v of result.violations) console.log(formatViolation(v));
    if (result.unknownKeys.length > 0) log(`undecided (budget exhausted): ${result.unknownKeys.join(', ')}`);
    const linearizable = result.verdict === 'linearizable' ? 'yes' : result.verdict === 'violation' ? 'no' : 'unknown';
    console.log(`kills: ${nemesis.kills.length}, operations: ${ops.length}, acknowledged writes: ${acknowledgedWrites}, lost: ${lost.length}, linearizable: ${linearizable}`);
    success = lost.length === 0 && result.verdict === 'linearizable';
    return success ? 0 : 1;
  } catch (err) {
    console.error(`chaos: run failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    for (const c of clients) {
      try {
        await c.close();
      } catch {
        // Closing a client of a dead cluster can fail; the processes go next anyway.
      }
    }
    if (cluster !== null) {
      if (!success) await printLogTails(cluster.members, 15);
      await cluster.stop();
    }
    rmSync(root, { recursive: true, force: true });
  }
}

/** Longest stretch of the load during which no call returned successfully, in ns. */
function longestGapBetweenAnswers(ops: readonly ChaosOperation[]): number {
  const returns = ops.filter((op) => op.outcome === 'ok').map((op) => op.returnAt!).sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < returns.length; i++) gap = Math.max(gap, returns[i]! - returns[i - 1]!);
  return gap;
}

// Exit explicitly: a gRPC channel left half-open by a killed member must not keep us alive.
process.exit(await main());
