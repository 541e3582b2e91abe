/**
 * Data-plane chaos run: three metadata members and three data nodes (real processes), one
 * volume with 3 replicas at `replicated`, concurrent writers recording every write, and kill -9
 * of data nodes (and now and then the metadata leader) with restarts on the same ports and
 * directories. Then: heal, wait (bounded) until every PG has its full replica set in sync again
 * (a node marked down is dropped from its PGs; it is added back, or another node is, once it
 * registers again), wait for every replica to catch up, and check that
 *   (1) every write acknowledged at `replicated` or stronger reads back (or was legitimately
 *       overwritten by a write that may have come later), and
 *   (2) every replica of every PG holds identical blocks (per-PG digests).
 *
 *   npm run chaos:dataplane -- [--seconds 60] [--seed N] [--writers 4] [--blocks 64]
 *                              [--kill-interval-ms 3500] [--metadata-every 4]
 *                              [--long-outage-every 3] [--long-outage-ms 6000] [--node-loss-every 4] [--node-loss-outage-ms MS]
 *                              [--cold-blocks 32] [--data-nodes 3] [--no-nudge] [--keep-dir]
 *                              [--inject-loss] [--inject-divergence] [--no-snapshots] [--inject-snapshot-loss]
 *
 * Node loss (`--node-loss-every N`, 0 = off): every N-th data-node fault — once every PG has its
 * full replica set in sync again, so one loss at a time — kills a PG primary right after it
 * acknowledged a write and wipes its disk; it comes back as the same id with an empty
 * store (chaos/dataplane/node-loss.ts). Writes acknowledged at `replicated` or stronger must still
 * all read back; weaker acknowledged writes that are gone are counted and listed, not failed on
 * (`acknowledged`/`durable` promise nothing once their node's disk is lost).
 *
 * `--cold-blocks N` blocks are written once at `replicated` before the load and read at the end:
 * the hot blocks are rewritten many times a second, which would hide a PG that lost old data.
 *
 * Prints, last: `kills: K, writes: W, acknowledged: A, lost writes: L, divergent replicas: D`
 * (after a line with the under-replicated PGs U) and exits 0 only when L = 0, D = 0, U = 0 and
 * the cluster settled.
 *
 * `--inject-loss` records one acknowledged replicated write that was never sent, after the
 * load: a self-test that the final reads and the loss check catch a lost write.
 * `--inject-divergence` overwrites one block on one replica behind its primary's back after
 * settling: a self-test that the digest comparison catches a divergent replica.
 *
 * Snapshots (dataplane/snapshots.ts; `--no-snapshots` off): an actor on its own volume writes,
 * takes, deletes and restores snapshots against an exact model; each delete and restore waits for
 * the next strike, which kills a data node or the metadata leader (in turn) as it starts. After
 * healing, every block at every surviving snapshot and live must read as the model says (a line
 * `snapshot reads …: N, not as the model says: P`; P > 0 fails the run). `--inject-snapshot-loss`
 * makes the model expect a value no one wrote at the newest snapshot (self-test: P = 1).
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BlockClient } from '../dataplane/client/block-client.js';
import { MetadataPlacementSource } from '../dataplane/placement.js';
import { isGalleonError } from '../proto/errors.js';
import type { Volume } from '../proto/metadata-types.js';
import { connectClient, type ChaosClient } from './cluster/client.js';
import { DataNodes } from './cluster/data-nodes.js';
import { MetadataCluster } from './cluster/metadata-cluster.js';
import { decodeBlock } from './dataplane/content.js';
import { mustSurvive, WriteHistory } from './dataplane/history.js';
import { injectDivergence } from './dataplane/inject.js';
import { findLostWrites, toRegisterHistory } from './dataplane/loss.js';
import { DataNemesis, type FaultRecord } from './dataplane/nemesis.js';
import { SnapshotChaos } from './dataplane/snapshots.js';
import { NodeLoss } from './dataplane/node-loss.js';
import { diffAtCuts, diffContents, fetchPgContents, nodeAccess, type NodeAccess } from './dataplane/replicas.js';
import type { TlsMaterial } from '../proto/tls.js';
import { settle } from './dataplane/settle.js';
import { blockKey, chaosBlocks, coldBlocks, Workload, writeColdBlocks } from './dataplane/workload.js';
import type { BlockRef } from './dataplane/workload.js';
import { installEmergencyCleanup } from './lib/child.js';
import { printLogTails, retryCall } from './lib/harness.js';
import { Random } from './lib/random.js';
import { delay, withTimeout } from './lib/wait.js';
import { checkHistory, formatViolation, registerModel } from './linearizability/index.js';
import { integerFlag, seedFlag } from './lib/flags.js';

const limits = {
  volumeName: 'chaos-data',
  storageClass: 'chaos-replicated',
  blockSizeBytes: 4096,
  /** Our bound on one write beyond the block client's own retries. */
  opTimeoutMs: 6_000,
  clientRequestTimeoutMs: 5_000,
  clientMaxAttempts: 4,
  errorBackoffMs: 100,
  weakWriteFraction: 0.2,
  minOutageMs: 500,
  maxOutageMs: 2_500,
  minUpMs: 1_500,
  heartbeatIntervalMs: 300,
  /**
   * Failover timings, shortened from the product's defaults (lease 4 s, down after 10 s) so a
   * 60 s run sees primaries move; down-after > lease ttl + its margin, as the lease guard needs.
   */
  leaseTtlMs: 1_500,
  dataNodeDownAfterMs: 3_000,
  controllerIntervalMs: 500,
  setupTimeoutMs: 60_000,
  settleTimeoutMs: 60_000,
  /** After healing, how long every PG may take to get its full replica set back, in sync. */
  reReplicationTimeoutMs: 60_000,
  nudgeAfterMs: 3_000,
  settlePollMs: 250,
  finalReadTimeoutMs: 20_000,
  /** A node loss waits this long for its target primary to acknowledge a write, then strikes anyway. */
  nodeLossAckTimeoutMs: 3_000,
  /** A node loss waits this long for every PG to be fully in sync again (one loss at a time). */
  nodeLossFullReplicasWaitMs: 15_000,
  /**
   * A lost node comes back (empty) after this long by default: past the down-after timeout, so
   * the metadata service has declared it dead first, as when a disk is replaced. Shorter (down
   * to 0 with --node-loss-outage-ms) exercises the wiped-node window (chaos/README.md).
   */
  nodeLossOutageMs: 5_000,
  /** The snapshot actor (dataplane/snapshots.ts): its own volume, blocks and bounds. */
  snapVolumeName: 'chaos-snap',
  snapBlocks: 16,
  snapInode: 5,
  snapMaxSnapshots: 5,
  snapStepTimeoutMs: 60_000,
  snapStepPauseMs: 50,
  /** An armed snapshot operation waits at most this long for a strike, then runs without one. */
  snapArmedWaitMaxMs: 15_000,
  checkMaxStepsPerKey: 5_000_000,
  checkMaxStepsTotal: 50_000_000,
} as const;

interface Args {
  seconds: number;
  seed: number;
  writers: number;
  blocks: number;
  killIntervalMs: number;
  metadataEvery: number;
  longOutageEvery: number;
  longOutageMs: number;
  nodeLossEvery: number;
  coldBlocks: number;
  nodeLossOutageMs: number;
  dataNodes: number;
  nudge: boolean;
  keepDir: boolean;
  /** Mutual TLS off (`--plaintext`); on by default, as in the metadata chaos run. */
  plaintext: boolean;
  injectLoss: boolean;
  injectDivergence: boolean;
  /** The snapshot actor with its strikes during snapshot deletes and restores (`--no-snapshots` off). */
  snapshots: boolean;
  injectSnapshotLoss: boolean;
}

function parse(): Args {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string' },
      writers: { type: 'string', default: '4' },
      blocks: { type: 'string', default: '64' },
      'kill-interval-ms': { type: 'string', default: '3500' },
      'metadata-every': { type: 'string', default: '4' },
      'long-outage-every': { type: 'string', default: '3' },
      'long-outage-ms': { type: 'string', default: '6000' },
      'node-loss-every': { type: 'string', default: '4' },
      'node-loss-outage-ms': { type: 'string' },
      'cold-blocks': { type: 'string', default: '32' },
      'data-nodes': { type: 'string', default: '3' },
      'no-nudge': { type: 'boolean', default: false },
      'keep-dir': { type: 'boolean', default: false },
      plaintext: { type: 'boolean', default: false },
      'inject-loss': { type: 'boolean', default: false },
      'inject-divergence': { type: 'boolean', default: false },
      'no-snapshots': { type: 'boolean', default: false },
      'inject-snapshot-loss': { type: 'boolean', default: false },
    },
    strict: true,
  });
  return {
    seconds: integerFlag('seconds', values.seconds, 1),
    seed: seedFlag(values.seed),
    writers: integerFlag('writers', values.writers, 1),
    blocks: integerFlag('blocks', values.blocks, 1),
    killIntervalMs: integerFlag('kill-interval-ms', values['kill-interval-ms'], 500),
    metadataEvery: integerFlag('metadata-every', values['metadata-every'], 0),
    longOutageEvery: integerFlag('long-outage-every', values['long-outage-every'], 0),
    longOutageMs: integerFlag('long-outage-ms', values['long-outage-ms'], 1),
    nodeLossEvery: integerFlag('node-loss-every', values['node-loss-every'], 0),
    coldBlocks: integerFlag('cold-blocks', values['cold-blocks'], 0),
    nodeLossOutageMs: values['node-loss-outage-ms'] === undefined ? limits.nodeLossOutageMs : integerFlag('node-loss-outage-ms', values['node-loss-outage-ms'], 0),
    dataNodes: integerFlag('data-nodes', values['data-nodes'], 3),
    nudge: !values['no-nudge'],
    keepDir: values['keep-dir'],
    plaintext: values.plaintext,
    injectLoss: values['inject-loss'],
    injectDivergence: values['inject-divergence'],
    snapshots: !values['no-snapshots'],
    injectSnapshotLoss: values['inject-snapshot-loss'],
  };
}

const log = (line: string): void => console.log(`chaos: ${line}`);

function retry<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  return retryCall(what, timeoutMs, limits.opTimeoutMs, fn);
}

async function createVolume(api: ChaosClient): Promise<Volume> {
  await retry('creating the storage class', limits.setupTimeoutMs, async () => {
    try {
      await api.createStorageClass({ name: limits.storageClass, replicas: 3, writeConcern: 'replicated', encryption: false, zoneSpread: 'prefer' });
    } catch (err) {
      if (!isGalleonError(err, 'STORAGE_CLASS_EXISTS')) throw err;
    }
    return true;
  });
  return retry('creating the volume', limits.setupTimeoutMs, async () => {
    try {
      return await api.createVolume({ name: limits.volumeName, size: '1G', storageClass: limits.storageClass, replicas: 3 });
    } catch (err) {
      if (!isGalleonError(err, 'VOLUME_EXISTS')) throw err;
      return api.getVolume(limits.volumeName);
    }
  });
}

function newBlockClient(api: ChaosClient, tls: TlsMaterial | null): BlockClient {
  return new BlockClient({
    placement: new MetadataPlacementSource(api), connectionsPerNode: 2, tls,
    maxAttempts: limits.clientMaxAttempts, requestTimeoutMs: limits.clientRequestTimeoutMs,
  });
}

async function main(): Promise<number> {
  const args = parse();
  const root = await mkdtemp(join(tmpdir(), 'galleon-dchaos-'));
  installEmergencyCleanup(() => { if (!args.keepDir) rmSync(root, { recursive: true, force: true }); });
  log(`seed ${args.seed}, ${args.seconds} s, ${args.writers} writers over ${args.blocks} blocks, a kill every ~${args.killIntervalMs} ms, dir ${root}`);
  const given = process.argv.slice(2);
  // Timing is real, so a replay repeats the choices (targets, outages, writes), not the interleaving.
  log(`replay: npm run chaos:dataplane -- ${[...given, ...(given.includes('--seed') ? [] : ['--seed', String(args.seed)])].join(' ')}`);
  const rnd = new Random(args.seed);
  const metaClients: ChaosClient[] = [];
  const blockClients: BlockClient[] = [];
  let meta: MetadataCluster | null = null;
  let data: DataNodes | null = null;
  let access: NodeAccess = nodeAccess(null);
  let success = false;
  try {
    meta = await MetadataCluster.start({
      root, tls: !args.plaintext, extraArgs: ['--data-node-timeout-ms', String(limits.dataNodeDownAfterMs), '--controller-interval-ms', String(limits.controllerIntervalMs)],
    });
    const api = await connectClient(meta.addresses, { callDeadlineMs: limits.opTimeoutMs, tls: meta.clientTls });
    access = nodeAccess(meta.pki);
    metaClients.push(api);
    data = await DataNodes.start({
      root, metadataAddresses: meta.addresses, nodeCount: args.dataNodes, heartbeatIntervalMs: limits.heartbeatIntervalMs, pki: meta.pki,
      extraArgs: ['--lease-ttl-ms', String(limits.leaseTtlMs)],
    });
    const dataNodes = data;
    await retry('3 data nodes up in the metadata service', limits.setupTimeoutMs, async () => {
      const up = (await api.listDataNodes()).filter((n) => n.state === 'up').length;
      return up === dataNodes.nodes.length ? true : undefined;
    });
    const volume = await createVolume(api);
    log(`transport: ${meta.pki === null ? 'plaintext (--plaintext)' : 'mutual TLS between every process (the run\'s CA)'}`);
    log(`metadata ${meta.addresses.join(', ')}; data nodes ${data.nodes.map((n) => `${n.id}@${n.address}`).join(', ')}; volume ${volume.id} (${volume.pgCount} PGs, ${volume.replicas} replicas, ${volume.writeConcern})`);

    const history = new WriteHistory();
    const blocks = chaosBlocks(args.blocks);
    const workload = new Workload(history, {
      volumeId: volume.id, blocks, blockSizeBytes: limits.blockSizeBytes,
      opTimeoutMs: limits.opTimeoutMs, errorBackoffMs: limits.errorBackoffMs, weakFraction: limits.weakWriteFraction,
    });
    const cold = coldBlocks(args.coldBlocks);
    const coldWriter = newBlockClient(api, meta.clientTls);
    blockClients.push(coldWriter);
    await writeColdBlocks(history, coldWriter, volume.id, cold, limits.blockSizeBytes, limits.opTimeoutMs, args.writers + 1);
    log(`cold blocks: ${cold.length} written once at replicated before the load, read back at the end`);
    const writers: Promise<void>[] = [];
    for (let w = 0; w < args.writers; w++) {
      const client = newBlockClient(api, meta.clientTls);
      blockClients.push(client);
      writers.push(workload.runWriter(w, client, args.seed * 1000 + w + 1));
    }
    const snapWriter = newBlockClient(api, meta.clientTls);
    blockClients.push(snapWriter);
    const snaps = args.snapshots ? new SnapshotChaos(api, snapWriter, (...a) => snapWriter.nodePost(...a), new Random(args.seed * 31 + 7), {
      volumeName: limits.snapVolumeName, storageClass: limits.storageClass, blockSizeBytes: limits.blockSizeBytes, blocks: limits.snapBlocks, inode: limits.snapInode,
      maxSnapshots: limits.snapMaxSnapshots, attemptTimeoutMs: limits.opTimeoutMs, stepTimeoutMs: limits.snapStepTimeoutMs, armedWaitMs: Math.min(4 * args.killIntervalMs, limits.snapArmedWaitMaxMs),
      stepPauseMs: limits.snapStepPauseMs,
    }, log) : null;
    await snaps?.setup();
    const snapActor = snaps?.run() ?? Promise.resolve();
    const nemesis = new DataNemesis(meta, data, api, rnd, {
      intervalMs: args.killIntervalMs, minOutageMs: limits.minOutageMs, maxOutageMs: limits.maxOutageMs,
      minUpMs: limits.minUpMs, metadataEvery: args.metadataEvery, leaderQueryTimeoutMs: 2_000,
      longOutageEvery: args.longOutageEvery, longOutageMs: args.longOutageMs, nodeLossEvery: args.nodeLossEvery,
      nodeLossOutageMs: args.nodeLossOutageMs,
    }, log, new NodeLoss(api, data, history, {
      volumeId: volume.id, pgCount: volume.pgCount, replicas: volume.replicas, ackTimeoutMs: limits.nodeLossAckTimeoutMs,
      placementTimeoutMs: limits.opTimeoutMs, fullReplicasWaitMs: limits.nodeLossFullReplicasWaitMs, pollMs: limits.settlePollMs,
      alsoVolumes: () => (snaps?.volume === null || snaps?.volume === undefined ? [] : [snaps.volume.id]),
    }), snaps);
    const nemesisDone = nemesis.run(Date.now());
    await delay(args.seconds * 1000);
    log('stopping load');
    workload.stop();
    nemesis.stop();
    snaps?.stop();
    await Promise.all([...writers, nemesisDone, snapActor]);

    // The injected loss goes to a block no writer touches: on a written block, an indeterminate
    // write (likely under load) could explain the final value and mask it.
    const untouched: BlockRef = { inode: 3, blockNo: 0 };
    if (args.injectLoss) {
      const at = history.now();
      const victim = blockKey(untouched);
      history.writes.push({ writer: args.writers, key: victim, value: 'injected-never-sent', concern: 'replicated', outcome: 'acked', callAt: at, returnAt: at + 1 });
      log(`injected an acknowledged replicated write that was never sent, on block ${victim}`);
    }

    // Heal: every process up, then wait for the replicas to catch up.
    for (const id of meta.downMembers()) await meta.startMember(id);
    // A node that does not come back still leaves the checks to run: what it did meanwhile is the finding.
    const notReady: string[] = [...nemesis.notReady];
    for (const id of data.downNodes()) {
      await data.startNode(id).catch((err: unknown) => {
        notReady.push(id);
        log(`NOT READY: data node ${id} did not come back: ${err instanceof Error ? err.message : String(err)}`);
      });
    }
    const full = await waitForFullReplicas(api, volume);
    log(`re-replication: ${full.short === 0 ? 'every PG' : 'NOT every PG'} at ${volume.replicas} in-sync replicas after ${full.elapsedMs} ms; under-replicated PGs: ${full.short}, short of in-sync replicas: ${full.outOfSync}`);
    const settled = await settle({
      api, data, access, volumeId: volume.id, replicas: volume.replicas, timeoutMs: limits.settleTimeoutMs,
      nudgeAfterMs: args.nudge ? limits.nudgeAfterMs : 0, pollMs: limits.settlePollMs, log,
    });
    log(`settle: ${settled.settled ? 'yes' : 'NO'} after ${settled.elapsedMs} ms, ${settled.nudges} catch-up nudges; under-replicated PGs: ${settled.underReplicated} of ${settled.groups.length}; epochs: ${epochSummary(settled.groups)}`);
    for (const p of settled.problems.slice(0, 20)) log(`not settled: ${p}`);

    if (args.injectDivergence) log(`injected divergence: ${await injectDivergence(data, volume.id, settled.groups, limits.blockSizeBytes, access)}`);

    // (2) Replicas of every PG hold identical blocks, and read the same at every epoch as a
    // snapshot's cut. This volume is never snapshotted, so never pruned: each node keeps every
    // version its keep rule made, and a read at any cut must not change on failover.
    let divergent = 0;
    let cutDivergent = 0;
    let cutsCompared = 0;
    for (const g of settled.groups) {
      const primary = await fetchPgContents(data.node(g.primary).address, volume.id, g.pg, access, g.primary);
      const cuts = Array.from({ length: g.epoch }, (_, i) => i + 1);
      for (const r of g.replicas) {
        if (r === g.primary) continue;
        const replica = await fetchPgContents(data.node(r).address, volume.id, g.pg, access, r);
        cutsCompared += cuts.length;
        const atCuts = diffAtCuts(primary, replica, cuts);
        if (atCuts.length > 0) {
          cutDivergent++;
          log(`DIVERGENT AT CUTS: pg ${g.pg} replica ${r} vs primary ${g.primary}: ${atCuts.length} reads differ (primary vs replica): ${atCuts.slice(0, 5).join('; ')}`);
        }
        const liveDiffers = replica.digest !== primary.digest;
        if (liveDiffers || atCuts.length > 0) divergent++; // a replica counts once, whichever way it differs
        if (!liveDiffers) continue;
        const diff = diffContents(primary, replica);
        log(`DIVERGENT: pg ${g.pg} replica ${r} digest ${replica.digest} vs primary ${g.primary} ${primary.digest}; ${diff.length} blocks differ (primary vs replica): ${diff.slice(0, 5).join('; ')}`);
      }
    }
    log(`reads at every epoch cut (kept versions), replica vs primary: ${cutsCompared} cuts compared, replicas differing: ${cutDivergent}`);

    // (1) Final reads through the client (from each PG's primary), then the loss check.
    const reader = newBlockClient(api, meta.clientTls);
    blockClients.push(reader);
    const finalValues = new Map<string, string | null>();
    for (const b of [...blocks, ...cold, ...(args.injectLoss ? [untouched] : [])]) {
      const value = await retry(`final read of block ${blockKey(b)}`, limits.finalReadTimeoutMs, async () => {
        try {
          return decodeBlock((await reader.readBlock(volume.id, b.inode, b.blockNo)).data);
        } catch (err) {
          if (isGalleonError(err, 'BLOCK_NOT_FOUND')) return null;
          throw err;
        }
      });
      finalValues.set(blockKey(b), value);
    }
    // (3) Snapshots: every block at every surviving snapshot, and live, as the snapshot actor's model says.
    if (args.injectSnapshotLoss && snaps !== null) log(`injected a snapshot read the model expects and no one wrote: ${snaps.injectLoss()}`);
    const snapCheck = snaps === null ? null : await snaps.check(reader);
    if (snaps !== null && snapCheck !== null) {
      const c = snaps.counts;
      log(`snapshots: ${c.writes} writes, ${c.snapshots} taken, ${c.deletes} deleted, ${c.restores} restores, ${c.prunesFailed} prunes left pending (no daemon here resumes them: the next delete's round covers them); kill -9 during them: ${snaps.struck.length} (${summarizeStrikes(nemesis.faults)})`);
      log(`snapshot reads at every surviving snapshot and live: ${snapCheck.reads}, not as the model says: ${snapCheck.problems.length}${snapCheck.problems.length > 0 ? ' (FAIL)' : ''}`);
      for (const p of snapCheck.problems.slice(0, 20)) log(`SNAPSHOT LOST: ${p}`);
    }
    const writes = history.writes;
    const lost = findLostWrites(writes, finalValues);
    // Allowed losses: acknowledged below `replicated` (a node loss may take them), reported only.
    const weakLost = findLostWrites(writes, finalValues, (w) => !mustSurvive(w.concern));
    const checkStarted = performance.now();
    const result = checkHistory(registerModel, toRegisterHistory(writes, finalValues, history.now()), {
      maxStepsPerKey: limits.checkMaxStepsPerKey, maxStepsTotal: limits.checkMaxStepsTotal,
    });
    const checkMs = performance.now() - checkStarted;

    const acked = writes.filter((w) => w.outcome === 'acked');
    const byConcern = ['acknowledged', 'durable', 'replicated'].map((c) => `${c}=${acked.filter((w) => w.concern === c).length}/${writes.filter((w) => w.concern === c).length}`).join(' ');
    const errors = [...history.errorsByCode].map(([code, n]) => `${code}=${n}`).join(' ') || 'none';
    const leaderKills = nemesis.faults.filter((f) => f.kind === 'metadata-leader').length;
    log(`kills of the metadata leader: ${leaderKills} of ${nemesis.faults.length}`);
    const losses = nemesis.faults.filter((f) => f.kind === 'node-loss');
    log(`node losses: ${losses.length}${losses.map((f) => ` [${f.target} at t=${(f.atMs / 1000).toFixed(1)}s after ${f.loss?.lastAck === null || f.loss === undefined ? 'no ack' : `${f.loss.lastAck.value}@${f.loss.lastAck.concern}`}]`).join('')}`);
    log(`acknowledged below replicated and gone (allowed): ${weakLost.length}${weakLost.length === 0 ? '' : ` (${weakLost.slice(0, 5).map((l) => `${l.key}=${l.value}@${l.concern}`).join(', ')})`}`);
    log(`acknowledged/issued by concern: ${byConcern}; must survive: ${acked.filter((w) => mustSurvive(w.concern)).length}; errors: ${errors}`);
    log(`register check: ${result.verdict} in ${checkMs.toFixed(0)} ms over ${result.keys.length} blocks`);
    for (const l of lost.slice(0, 20)) log(`LOST: block ${l.key} acknowledged ${l.value} (${l.concern}) but reads back ${JSON.stringify(l.finalValue)}`);
    for (const v of result.violations.slice(0, 3)) console.log(formatViolation(v));
    const underReplicated = Math.max(settled.underReplicated, full.short);
    log(`under-replicated PGs once every node is back: ${underReplicated} of ${settled.groups.length}; short of in-sync replicas: ${full.outOfSync}${underReplicated + full.outOfSync > 0 ? ' (FAIL)' : ''}`);
    console.log(`kills: ${nemesis.faults.length}, writes: ${writes.length}, acknowledged: ${acked.length}, lost writes: ${lost.length}, divergent replicas: ${divergent}${settled.settled ? '' : ', not settled'}`);
    if (notReady.length > 0) log(`data nodes that never came back: ${notReady.join(', ')} (FAIL)`);
    success = (snapCheck === null || snapCheck.problems.length === 0) && notReady.length === 0 && settled.settled && lost.length === 0 && divergent === 0 && settled.underReplicated === 0 && full.short === 0 && full.outOfSync === 0 && result.verdict !== 'violation';
    return success ? 0 : 1;
  } catch (err) {
    console.error(`chaos: run failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    for (const c of blockClients) await c.close().catch(() => undefined);
    await access.close().catch(() => undefined);
    for (const c of metaClients) {
      try {
        await c.close();
      } catch {
        // Closing a client of a dead cluster can fail; the processes go next anyway.
      }
    }
    if (!success) await printLogTails([...(data?.nodes ?? []), ...(meta?.members ?? [])], 12);
    await data?.stop();
    await meta?.stop();
    if (args.keepDir) log(`kept the run's directory (logs, stores): ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Every node is back: each PG short of replicas gets them back when a node registers again
 * (re-replication), and the controller marks them in sync once they caught up. Polls until every
 * PG has the volume's replica count, all in sync, or `reReplicationTimeoutMs` passed; returns how
 * many PGs were still short of replicas / of in-sync replicas then.
 */
async function waitForFullReplicas(api: ChaosClient, volume: Volume): Promise<{ short: number; outOfSync: number; elapsedMs: number }> {
  const started = Date.now();
  let last = { short: -1, outOfSync: -1 };
  while (Date.now() - started < limits.reReplicationTimeoutMs) {
    try {
      const groups = await withTimeout(api.getPlacement(volume.id), limits.opTimeoutMs);
      last = {
        short: groups.filter((g) => g.replicas.length < volume.replicas).length,
        outOfSync: groups.filter((g) => g.inSync.length < volume.replicas).length,
      };
      if (last.short === 0 && last.outOfSync === 0) break;
    } catch {
      // The metadata leader may still be coming back: poll again.
    }
    await delay(limits.settlePollMs);
  }
  return { ...last, elapsedMs: Date.now() - started };
}

/** The strikes timed to snapshot operations, by operation and kind: `snapshot delete/data-node=2, …`. */
function summarizeStrikes(faults: readonly FaultRecord[]): string {
  const counts = new Map<string, number>();
  for (const f of faults) if (f.during !== undefined) counts.set(`${f.during}/${f.kind}`, (counts.get(`${f.during}/${f.kind}`) ?? 0) + 1);
  return [...counts].sort().map(([k, n]) => `${k}=${n}`).join(', ') || 'none';
}

/** How far the PGs' epochs moved: each bump is a primary or replica-set change. */
function epochSummary(groups: readonly { epoch: number }[]): string {
  if (groups.length === 0) return 'none';
  const epochs = groups.map((g) => g.epoch);
  return `min ${Math.min(...epochs)}, max ${Math.max(...epochs)}, sum ${epochs.reduce((a, b) => a + b, 0)}`;
}

// Exit explicitly: a connection left half-open by a killed node must not keep us alive.
process.exit(await main());
