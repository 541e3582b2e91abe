/**
 * The block server's write decisions come from the replication core (issue #13): a data node
 * started with one of the core's deliberate breaks (`GALLEON_TEST_CORE_FAULTS`, the simulator's
 * `CoreFaults`) behaves broken on real processes. With `ackReplicatedAfterLocalWrite` the primary
 * acknowledges a `replicated` write while both other replicas are frozen (SIGSTOP) — nothing is
 * replicated; a node with the intact core does not. On the server before it drove the core the
 * variable changed nothing and the first case failed (no 200 while the replicas were frozen).
 * 1 metadata member, 3 data nodes (heartbeats 200 ms, lease ttl 1 s, down after 8 s).
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import { pgOf } from '../../../dataplane/logic/routing.js';
import type { PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import { Header } from '../../../dataplane/wire.js';
import { pattern, waitFor } from '../helpers.js';
import { useMetaAndData } from './meta-and-data.js';

const zones: Record<string, string> = { d1: 'z1', d2: 'z2', d3: 'z3' };
/** How long a primary is given to answer with its replicas frozen (well below the 8 s after which they are marked down). */
const answerWindowMs = 4_000;

describe('the block server decides by the replication core (a break in the core breaks the server)', function () {
  this.timeout(150_000);
  const env = useMetaAndData(zones, { heartbeatMs: 200, leaseTtlMs: 1000, downAfterMs: 8000 });
  const frozen = new Set<string>();

  after(() => { for (const id of frozen) env.data.nodes.get(id)?.proc.kill('SIGCONT'); });

  function freeze(id: string, on: boolean): void {
    env.data.node(id).proc.kill(on ? 'SIGSTOP' : 'SIGCONT');
    if (on) frozen.add(id); else frozen.delete(id);
  }

  async function groupLedBy(vol: Volume, primary: string): Promise<PlacementGroup> {
    return waitFor(`a PG led by ${primary}`, async () => (await env.api.getPlacement(vol.id)).find((g) => g.primary === primary), 20_000, 100);
  }

  function blockIn(vol: Volume, pg: number): number {
    for (let b = 0; ; b++) if (pgOf(0, b, vol.pgCount) === pg) return b;
  }

  /** Reads at the PG's current epoch until the primary serves them: it peered and holds its lease. */
  async function peered(vol: Volume, pg: number, primary: string, blockNo: number): Promise<number> {
    const address = env.data.node(primary).address;
    return waitFor(`${primary} serves PG ${pg} as primary`, async () => {
      const g = (await env.api.getPlacement(vol.id)).find((x) => x.pg === pg);
      if (g?.primary !== primary) return undefined;
      const res = await request(`http://${address}/v1/blocks/${vol.id}/0/${blockNo}?epoch=${g.epoch}`);
      await res.body.dump();
      return res.statusCode === 404 ? g.epoch : undefined;
    }, 20_000, 100);
  }

  /** A replicated PUT to `primary`; the status, or 'no answer' within `windowMs`. */
  async function putReplicated(primary: string, vol: Volume, blockNo: number, epoch: number, windowMs: number): Promise<number | 'no answer'> {
    const url = `http://${env.data.node(primary).address}/v1/blocks/${vol.id}/0/${blockNo}?epoch=${epoch}&concern=replicated`;
    try {
      const res = await request(url, { method: 'PUT', body: pattern(5, 4096), headersTimeout: windowMs, bodyTimeout: windowMs });
      await res.body.dump();
      return res.statusCode;
    } catch {
      return 'no answer';
    }
  }

  it('a primary whose core acknowledges replicated after the local write acknowledges with every replica frozen', async () => {
    await env.data.kill('d1');
    await env.startNode('d1', { GALLEON_TEST_CORE_FAULTS: 'ackReplicatedAfterLocalWrite' });
    const vol = await env.api.createVolume({ name: 'broken-core', size: '1G', replicas: 3 });
    const g = await groupLedBy(vol, 'd1');
    const blockNo = blockIn(vol, g.pg);
    const epoch = await peered(vol, g.pg, 'd1', blockNo);
    for (const id of g.replicas) if (id !== 'd1') freeze(id, true);
    const status = await putReplicated('d1', vol, blockNo, epoch, answerWindowMs);
    for (const id of g.replicas) if (id !== 'd1') freeze(id, false);
    assert.equal(status, 200, 'the broken core acknowledged replicated with no other replica reachable');
  });

  /** An `acknowledged` PUT to `primary` at `epoch`: the status and the error code, if any. */
  async function putAt(primary: string, vol: Volume, blockNo: number, epoch: number): Promise<{ status: number; code: string | undefined }> {
    const url = `http://${env.data.node(primary).address}/v1/blocks/${vol.id}/0/${blockNo}?epoch=${epoch}&concern=acknowledged`;
    const res = await request(url, { method: 'PUT', body: pattern(7, 4096) });
    const body = await res.body.json() as { code?: string };
    return { status: res.statusCode, code: body.code };
  }

  /**
   * A PG led by `primary` moved past the epoch its primary served at, still led by it: a second
   * claim of that epoch — what a restarted primary process sends (a restart here took longer than
   * the mark-down delay under load, and the PG moved away) — moves the PG to a new epoch, and the
   * primary peers at it. Returns the superseded epoch and the new one.
   */
  async function supersededEpoch(primary: string): Promise<{ vol: Volume; blockNo: number; old: number; current: number }> {
    const vol = await env.api.createVolume({ name: `old-epoch-${primary}`, size: '1G', replicas: 3 });
    const g = await groupLedBy(vol, primary);
    const blockNo = blockIn(vol, g.pg);
    const old = await peered(vol, g.pg, primary, blockNo);
    const moved = await env.api.claimPgPrimary(vol.id, g.pg, primary, old);
    assert.equal(moved.epoch, old + 1, 'a repeated claim moves the PG to a new epoch');
    // A write at the new epoch is admitted only once the primary read the placement, peered the
    // group (every replica records the epoch) and recorded it: a read would not wait for that.
    const current = await waitFor(`${primary} takes writes at the new epoch`, async () => {
      const e = (await env.api.getPlacement(vol.id)).find((x) => x.pg === g.pg);
      if (e?.primary !== primary) return undefined;
      return (await putAt(primary, vol, blockNo, e.epoch)).status === 200 ? e.epoch : undefined;
    }, 20_000, 100);
    assert.ok(current > old, `the restarted primary's claim moved the PG past epoch ${old}`);
    return { vol, blockNo, old, current };
  }

  it('a primary whose core accepts old epochs acknowledges a write at a superseded epoch', async () => {
    await env.data.kill('d3');
    await env.startNode('d3', { GALLEON_TEST_CORE_FAULTS: 'acceptOldEpoch' });
    const { vol, blockNo, old } = await supersededEpoch('d3');
    assert.deepEqual(await putAt('d3', vol, blockNo, old), { status: 200, code: undefined }, 'the broken core admitted the old epoch');
  });

  let intact: Awaited<ReturnType<typeof supersededEpoch>> | undefined;

  it('a primary with the intact core refuses a write at a superseded epoch STALE_EPOCH', async () => {
    intact = await supersededEpoch('d2');
    const { vol, blockNo, old, current } = intact;
    assert.deepEqual(await putAt('d2', vol, blockNo, old), { status: 409, code: 'STALE_EPOCH' });
    assert.equal((await putAt('d2', vol, blockNo, current)).status, 200, 'the current epoch is served');
  });

  /** A forward (`POST /v1/replicate`) at `epoch` to `replica`, as a deposed primary's late one would arrive. */
  async function forwardAt(replica: string, vol: Volume, blockNo: number, epoch: number): Promise<{ status: number; code: string | undefined }> {
    const pg = pgOf(0, blockNo, vol.pgCount);
    const res = await request(`http://${env.data.node(replica).address}/v1/replicate`, {
      method: 'POST', body: pattern(9, 4096),
      headers: {
        [Header.volume]: vol.id, [Header.inode]: '0', [Header.block]: String(blockNo), [Header.pg]: String(pg), [Header.seq]: '1000',
        [Header.epoch]: String(epoch), [Header.op]: 'put', [Header.sync]: '1', [Header.primary]: env.data.node('d2').address,
      },
    });
    const body = await res.body.json() as { code?: string };
    return { status: res.statusCode, code: body.code };
  }

  it('a replica whose core accepts old epochs stores a forward at a superseded epoch; an intact one refuses it STALE_EPOCH', async () => {
    assert.ok(intact !== undefined, 'the previous case superseded an epoch of a PG led by d2');
    const { vol, blockNo, old } = intact;
    // d3 runs with acceptOldEpoch (first case above); d1 with another break that does not touch epochs.
    assert.deepEqual(await forwardAt('d1', vol, blockNo, old), { status: 409, code: 'STALE_EPOCH' });
    assert.deepEqual(await forwardAt('d3', vol, blockNo, old), { status: 200, code: undefined }, 'the broken core stored the old-epoch forward');
  });

  it('a primary with the intact core does not acknowledge replicated while its replicas are frozen', async () => {
    const vol = await env.api.createVolume({ name: 'intact-core', size: '1G', replicas: 3 });
    const g = await groupLedBy(vol, 'd2');
    const blockNo = blockIn(vol, g.pg);
    const epoch = await peered(vol, g.pg, 'd2', blockNo);
    for (const id of g.replicas) if (id !== 'd2') freeze(id, true);
    const status = await putReplicated('d2', vol, blockNo, epoch, answerWindowMs);
    for (const id of g.replicas) if (id !== 'd2') freeze(id, false);
    assert.notEqual(status, 200, 'the intact core acknowledged replicated with every other replica frozen');
  });
});
