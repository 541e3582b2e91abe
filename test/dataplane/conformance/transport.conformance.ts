/**
 * One conformance suite for `PeerTransport` (dataplane/server/peers.ts): what replication relies
 * on from the network between data nodes — a request reaches the node at an address and its
 * answer (or its error, by code) comes back; an address nobody serves fails UNAVAILABLE. Run by
 * test/dataplane/server/peers.conformance.test.ts (`Peers` over HTTP to real block servers on
 * LevelDB) and test/dataplane/server/memory-transport.test.ts (`MemoryTransport`). Not a test
 * file itself.
 *
 * The world: volume `tv`, two PGs on nodes n1 and n2 (n1 primary of both) at epoch 1; the
 * transport speaks as n1 (`from` is n1, it connects from n1's host).
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import type { VolumePlacement } from '../../../dataplane/placement.js';
import type { PeerTransport } from '../../../dataplane/server/peers.js';
import type { BlockAddress } from '../../../dataplane/store/types.js';
import { pattern } from '../helpers.js';

export interface TransportWorld {
  /** The transport under test, as node n1 uses it. */
  transport: () => PeerTransport;
  /** Addresses of n1 and n2. */
  address: (id: 'n1' | 'n2') => string;
  /** An address no node serves. */
  deadAddress: () => string;
}

export const volume = 'tv';
/** PG 0 takes client writes through n1; PG 1 only forwards the tests send themselves. */
export const pgWritten = 0;
export const pgForwarded = 1;

/** The suite's placement over the two nodes' addresses. */
export function twoNodePlacement(addresses: Record<'n1' | 'n2', string>): VolumePlacement {
  return {
    volumeId: volume, pgCount: 2,
    groups: [0, 1].map((pg) => ({ volumeId: volume, pg, replicas: ['n1', 'n2'], primary: 'n1', epoch: 1, inSync: ['n1', 'n2'] })),
    nodes: { n1: { id: 'n1', address: addresses.n1, zone: 'z1' }, n2: { id: 'n2', address: addresses.n2, zone: 'z2' } },
  };
}

/** A block of `volume` that routes to `pg` (2 PGs: `pgOf` spreads inodes over them). */
export function blockIn(pg: number, seed: number, pgOf: (inode: number, blockNo: number) => number): BlockAddress {
  for (let inode = seed; ; inode++) if (pgOf(inode, 0) === pg) return { volumeId: volume, inode, blockNo: 0 };
}

const isCode = (code: string) => (e: unknown): boolean => isGalleonError(e) && e.code === code;

/** Registers the suite's tests in the calling `describe` (a fresh world per test is not needed: they build on each other in order). */
export function transportConformance(w: TransportWorld, pgOf: (inode: number, blockNo: number) => number): void {
  const a1 = blockIn(pgWritten, 1, pgOf);
  const a2 = blockIn(pgWritten, a1.inode + 1, pgOf);
  const f1 = blockIn(pgForwarded, 1, pgOf);

  it('a client write to the primary is answered once the replica holds it, which then reports its version', async () => {
    await w.transport().writeAsClient(w.address('n1'), a1, pattern(1, 4096), 1, 'replicated');
    assert.deepEqual(await w.transport().blockVersion(w.address('n2'), a1), { epoch: 1, seq: 1 });
    assert.deepEqual(await w.transport().blockVersion(w.address('n1'), a1), { epoch: 1, seq: 1 });
  });

  it('reports no version for a block a node does not hold', async () => {
    assert.equal(await w.transport().blockVersion(w.address('n2'), a2), null);
  });

  it('a forward is applied by the replica and answered with its contiguous applied seq', async () => {
    const t = w.transport();
    const opts = { sync: true, primary: w.address('n1'), trimSeq: 0 };
    await t.waitForRoom(w.address('n2'));
    assert.deepEqual(await t.replicate(w.address('n2'), { kind: 'put', address: f1, pg: pgForwarded, seq: 1, epoch: 1, data: pattern(7, 512) }, opts), { appliedSeq: 1 });
    // Seq 3 before 2: the applied seq stays at the gap until 2 arrives.
    assert.deepEqual(await t.replicate(w.address('n2'), { kind: 'put', address: f1, pg: pgForwarded, seq: 3, epoch: 1, data: pattern(9, 512) }, opts), { appliedSeq: 1 });
    assert.deepEqual(await t.replicate(w.address('n2'), { kind: 'delete', address: blockIn(pgForwarded, f1.inode + 1, pgOf), pg: pgForwarded, seq: 2, epoch: 1 }, opts), { appliedSeq: 3 });
    assert.deepEqual(await t.blockVersion(w.address('n2'), f1), { epoch: 1, seq: 3 });
  });

  it('peering answers the replica\'s progress on the PG', async () => {
    const p = await w.transport().peer(w.address('n2'), volume, pgForwarded, 1, 'n1', 5_000);
    assert.deepEqual(p, { appliedSeq: 3, highestSeq: 3, epoch: 1 });
  });

  it('the journal of a node comes back entry by entry, bodies included', async () => {
    await w.transport().writeAsClient(w.address('n1'), a2, pattern(2, 100), 1, 'durable');
    const frames = await w.transport().fetchJournal(w.address('n1'), volume, pgWritten, 1, 1, 1 << 20);
    assert.deepEqual(frames.map((f) => [f.meta.seq, f.meta.kind, f.meta.inode, f.meta.epoch]), [[1, 'put', a1.inode, 1], [2, 'put', a2.inode, 1]]);
    assert.deepEqual(frames[1]?.data, pattern(2, 100));
  });

  it('every live block of a PG is streamed with the watermark', async () => {
    const { appliedSeq, frames } = await w.transport().fetchPgBlocks(w.address('n2'), volume, pgForwarded, 1);
    const got: [number, number][] = [];
    for await (const f of frames) got.push([f.meta.inode, f.meta.seq]);
    assert.equal(appliedSeq, 3);
    assert.deepEqual(got, [[f1.inode, 3]]);
  });

  it('a client write to a node that is not the primary fails NOT_PRIMARY and stores nothing', async () => {
    const a3 = blockIn(pgWritten, a2.inode + 1, pgOf);
    await assert.rejects(w.transport().writeAsClient(w.address('n2'), a3, pattern(3, 64), 1, 'durable'), (e: unknown) =>
      isCode('NOT_PRIMARY')(e) && isGalleonError(e) && e.details.primary === 'n1');
    assert.equal(await w.transport().blockVersion(w.address('n2'), a3), null);
  });

  it('a write or a forward at an epoch older than the node has seen fails STALE_EPOCH', async () => {
    const t = w.transport();
    await assert.rejects(t.writeAsClient(w.address('n1'), a1, pattern(4, 64), 0, 'durable'), isCode('STALE_EPOCH'));
    await assert.rejects(t.replicate(w.address('n2'), { kind: 'put', address: f1, pg: pgForwarded, seq: 4, epoch: 0, data: pattern(5, 64) }, { sync: false, primary: w.address('n1'), trimSeq: 0 }), isCode('STALE_EPOCH'));
    assert.deepEqual(await t.blockVersion(w.address('n2'), f1), { epoch: 1, seq: 3 }, 'nothing applied');
  });

  it('an address no node serves fails UNAVAILABLE', async () => {
    const t = w.transport();
    await assert.rejects(t.blockVersion(w.deadAddress(), a1), isCode('UNAVAILABLE'));
    await assert.rejects(t.replicate(w.deadAddress(), { kind: 'delete', address: f1, pg: pgForwarded, seq: 9, epoch: 1 }, { sync: false, primary: w.address('n1'), trimSeq: 0 }), isCode('UNAVAILABLE'));
  });
}
