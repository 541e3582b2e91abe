/**
 * Streamed InstallSnapshot through the real Raft over gRPC (three member processes): a member
 * that was down catches up from a snapshot of many chunks and holds the same state (a digest of
 * every key and value of its state database), keeps it across a restart, and a transfer cut by
 * a leader change is started over by the new leader.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MetadataClient } from '../../../metadata/service/client.js';
import { appliedOf, ProcessCluster, until, type MemberProc } from './harness.js';

const chunkBytes = 4096;

/** SHA-256 over every key and value of a stopped member's state database. */
async function stateDigest(dataDir: string): Promise<string> {
  const db = new ClassicLevel<Buffer, Buffer>(join(dataDir, 'state'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    const h = createHash('sha256');
    for await (const [k, v] of db.iterator()) h.update(`${k.length}:`).update(k).update(`${v.length}:`).update(v);
    return h.digest('hex');
  } finally {
    await db.close();
  }
}

/** The member's JSON log lines whose msg is `msg`. */
function logLines(p: MemberProc, msg: string): Record<string, unknown>[] {
  return p.stderr.join('').split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function writeClasses(client: MetadataClient, prefix: string, count: number): Promise<void> {
  const inFlight = 8;
  for (let i = 0; i < count; i += inFlight) {
    await Promise.all(Array.from({ length: Math.min(inFlight, count - i) }, (_, k) =>
      client.createStorageClass({ name: `${prefix}-${i + k}`, replicas: 1, writeConcern: 'durable', zoneSpread: 'none' })));
  }
}


/** Waits until every running member has applied the same index, then stops them all and digests each state. */
async function settleAndDigest(cluster: ProcessCluster): Promise<Map<string, string>> {
  const procs = [...cluster.procs.values()];
  await until(async () => {
    const applied = await Promise.all(procs.map((p) => appliedOf(p.address)));
    return applied[0]! > 0 && applied.every((a) => a === applied[0]);
  }, 'every member to apply the same index', 60_000, 100);
  for (const p of procs) await cluster.stop(p.id);
  const digests = new Map<string, string>();
  for (const p of procs) digests.set(p.id, await stateDigest(p.dataDir));
  return digests;
}

describe('metadata service: streamed snapshots over gRPC (integration)', function () {
  this.timeout(180_000);
  let cluster: ProcessCluster;
  let client: MetadataClient | null = null;

  afterEach(async () => {
    client?.close();
    client = null;
    await cluster.destroy();
  });

  it('a member down through compaction catches up from a multi-chunk snapshot, keeps it across a restart, and holds the same state', async () => {
    const flags = ['--snapshot-entries', '40', '--snapshot-chunk-bytes', String(chunkBytes)];
    cluster = new ProcessCluster();
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3'], flags);
    client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 20_000 });
    const leaderId = (await client.clusterStatus()).leaderId;
    const follower = [...cluster.procs.values()].find((p) => p.id !== leaderId)!;
    await cluster.kill9(follower.id);
    await writeClasses(client, 'a', 120);
    const commit = (await client.clusterStatus()).commitIndex;

    const back = await cluster.start(follower.id, follower.address, flags, 'info');
    await until(async () => (await appliedOf(back.address)) >= commit, 'the follower to catch up', 60_000, 100);
    const received = logLines(back, 'received a snapshot');
    assert.equal(received.length, 1, 'caught up through one snapshot');
    assert.ok(Number(received[0]!.bytes) > 4 * chunkBytes, `the snapshot came in many chunks (${String(received[0]!.bytes)} bytes)`);
    assert.equal(logLines(back, 'restored a snapshot from the leader').length, 1);

    // Restart after the install: the state is there, no new transfer.
    await cluster.stop(follower.id);
    const again = await cluster.start(follower.id, follower.address, flags, 'info');
    assert.ok((await appliedOf(again.address)) >= commit, 'the installed state survived the restart');
    await client.createStorageClass({ name: 'after-restart', replicas: 1, writeConcern: 'durable', zoneSpread: 'none' });
    const digests = await settleAndDigest(cluster);
    assert.equal(logLines(again, 'receiving a snapshot').length, 0, 'no second transfer after the restart');
    assert.equal(new Set(digests.values()).size, 1, `one state on every member: ${JSON.stringify([...digests])}`);
  });

  it('a transfer cut by a leader change is started over by the new leader, and the member ends with the same state', async () => {
    // 16 KiB/s: the transfer takes seconds, so the leader can be killed in the middle of it.
    const flags = ['--snapshot-entries', '40', '--snapshot-chunk-bytes', String(chunkBytes), '--snapshot-send-bytes-per-sec', '16384'];
    cluster = new ProcessCluster();
    await cluster.init();
    await cluster.bootstrap(['n1', 'n2', 'n3'], flags);
    client = new MetadataClient({ addresses: cluster.addresses(), callDeadlineMs: 30_000 });
    const oldLeader = (await client.clusterStatus()).leaderId!;
    const follower = [...cluster.procs.values()].find((p) => p.id !== oldLeader)!;
    const other = [...cluster.procs.values()].find((p) => p.id !== oldLeader && p.id !== follower.id)!;
    const leaderProc = cluster.procs.get(oldLeader)!;
    await cluster.kill9(follower.id);
    await writeClasses(client, 'b', 150);

    const back = await cluster.start(follower.id, follower.address, flags, 'info');
    await until(() => logLines(back, 'receiving a snapshot').length > 0, 'the transfer to start', 30_000);
    await cluster.kill9(oldLeader);
    assert.equal(logLines(back, 'received a snapshot').length, 0, 'the leader died before the transfer finished');

    await until(async () => {
      const done = logLines(back, 'received a snapshot');
      return done.length > 0 && (await appliedOf(back.address)) > 0 ? done : null;
    }, 'the new leader to send the snapshot again', 90_000, 100);
    const senders = new Set(logLines(back, 'receiving a snapshot').map((l) => l.from));
    assert.deepEqual([...senders].sort(), [oldLeader, other.id].sort(), 'one transfer from each leader');
    assert.deepEqual(logLines(back, 'received a snapshot').map((l) => l.from), [other.id], 'only the new leader\'s transfer finished');

    await client.createStorageClass({ name: 'after-change', replicas: 1, writeConcern: 'durable', zoneSpread: 'none' });
    await cluster.start(oldLeader, leaderProc.address, flags);
    const digests = await settleAndDigest(cluster);
    assert.equal(new Set(digests.values()).size, 1, `one state on every member: ${JSON.stringify([...digests])}`);
  });
});
