/**
 * The PeerTransport conformance suite (../conformance/transport.conformance.ts) for `Peers`: HTTP
 * (undici) to two real block servers on real sockets, each on a LevelBlockStore in a temp dir.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { pgOf } from '../../../dataplane/logic/routing.js';
import { StaticPlacementSource } from '../../../dataplane/placement.js';
import { BlockServer } from '../../../dataplane/server/block-server.js';
import { Peers, replicateAttempts, replicateRetryDelayMs } from '../../../dataplane/server/peers.js';
import { ManualClock } from '../../../dataplane/clock.js';
import { isGalleonError } from '../../../proto/errors.js';
import { LevelBlockStore } from '../../../dataplane/store/level-block-store.js';
import { transportConformance, twoNodePlacement } from '../conformance/transport.conformance.js';
import { removeDir, tempDir, waitFor } from '../helpers.js';

/** A port nothing listens on: bound, then released. */
async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('PeerTransport conformance: Peers (HTTP to real block servers)', function () {
  this.timeout(60_000);
  const log = pino({ level: 'silent' });
  const nodes: { dir: string; store: LevelBlockStore; server: BlockServer; address: string }[] = [];
  let peers: Peers | undefined;
  let dead = '';

  before(async () => {
    for (const [id, zone] of [['n1', 'z1'], ['n2', 'z2']] as const) {
      const dir = await tempDir(`peers-conf-${id}`);
      const store = await LevelBlockStore.open({ dir, minFreeBytes: 0 });
      const server = new BlockServer({ nodeId: id, zone, store, placement: new StaticPlacementSource(), log });
      nodes.push({ dir, store, server, address: await server.listen() });
    }
    const p = twoNodePlacement({ n1: nodes[0]?.address ?? '', n2: nodes[1]?.address ?? '' });
    for (const n of nodes) {
      const res = await request(`http://${n.address}/v1/admin/placement`, { method: 'PUT', body: JSON.stringify(p) });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`installing the placement: ${res.statusCode} ${text}`);
    }
    dead = `127.0.0.1:${await deadPort()}`;
    peers = new Peers();
  });

  after(async () => {
    await peers?.close();
    for (const n of nodes) {
      await n.server.close().catch(() => undefined);
      await n.store.close().catch(() => undefined);
      await removeDir(n.dir);
    }
  });

  transportConformance({
    transport: () => { if (peers === undefined) throw new Error('not started'); return peers; },
    address: (id) => (id === 'n1' ? nodes[0] : nodes[1])?.address ?? '',
    deadAddress: () => dead,
  }, (inode, blockNo) => pgOf(inode, blockNo, 2));
});

describe('Peers: retries wait on the injected clock', function () {
  this.timeout(20_000);

  it('a request to a dead port is retried only as a ManualClock advances, then fails UNAVAILABLE', async () => {
    const clock = new ManualClock();
    const peers = new Peers(null, undefined, clock);
    try {
      const dead = `127.0.0.1:${await deadPort()}`;
      let outcome: unknown = 'pending';
      const call = peers.requestCatchUp(dead, 'v', 0, 'n1', 1).then((r) => { outcome = r; }, (e: unknown) => { outcome = e; });
      for (let attempt = 1; attempt < replicateAttempts; attempt++) {
        // Each refused connection leaves one retry timer on the manual clock; nothing else moves it.
        await waitFor(`attempt ${attempt} to fail and wait on the clock`, () => clock.pendingTimers === 1, 5_000, 1);
        assert.equal(outcome, 'pending', `no answer before retry ${attempt}`);
        clock.advance(replicateRetryDelayMs * attempt - 1);
        assert.equal(clock.pendingTimers, 1, 'not retried before its delay on the clock');
        clock.advance(1);
      }
      await call;
      assert.ok(isGalleonError(outcome, 'UNAVAILABLE'), `failed UNAVAILABLE after ${replicateAttempts} attempts: ${String(outcome)}`);
    } finally {
      await peers.close();
    }
  });
});
