/**
 * The data node agent's heartbeat on a `ManualClock` (dataplane/server/agent.ts): beats follow
 * the injected clock exactly, a beat still running is not piled up behind, and a wiped node waits
 * on the clock before it registers. The metadata service is an in-process stand-in with the six
 * calls the agent makes (it answers from a few fields the test sets); the store is a
 * MemoryBlockStore.
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { DataNode, DataNodeRegistration, PgReport, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import { ManualClock } from '../../../dataplane/clock.js';
import { DataNodeAgent } from '../../../dataplane/server/agent.js';
import { MemoryBlockStore } from '../../../dataplane/store/memory-store.js';
import { waitFor } from '../helpers.js';

// Long enough that a timer on the system clock never fires during the test.
const everyMs = 60_000;
const registration: DataNodeRegistration = { id: 'd1', address: '127.0.0.1:7001', zone: 'z1', capacityBytes: 1 << 30 };

/** The metadata calls the agent makes, answered from what the test sets. */
class MetadataStandIn {
  beats: PgReport[][] = [];
  registrations = 0;
  nodeListings = 0;
  /** How the service lists this node (undefined: not known). */
  me: DataNode | undefined;
  /** Volumes and the groups whose in-sync set names this node. */
  groups: PlacementGroup[] = [];
  /** While set, heartbeats wait for `release`. */
  holdBeats = false;
  private held: (() => void)[] = [];

  registerDataNode(node: DataNodeRegistration): Promise<DataNode> {
    this.registrations++;
    return Promise.resolve(this.node(node, 'up'));
  }

  heartbeatDataNode(id: string, usedBytes: number, pgs: PgReport[]): Promise<DataNode> {
    this.beats.push(pgs);
    const answer = this.node(registration, 'up');
    if (!this.holdBeats) return Promise.resolve(answer);
    return new Promise((resolve) => { this.held.push(() => resolve(answer)); });
  }

  release(): void {
    for (const r of this.held.splice(0)) r();
  }

  listDataNodes(): Promise<DataNode[]> {
    this.nodeListings++;
    return Promise.resolve(this.me === undefined ? [] : [this.me]);
  }

  listVolumes(): Promise<Volume[]> {
    const ids = [...new Set(this.groups.map((g) => g.volumeId))];
    return Promise.resolve(ids.map((id) => ({ id }) as Volume));
  }

  getPlacement(volumeId: string): Promise<PlacementGroup[]> {
    return Promise.resolve(this.groups.filter((g) => g.volumeId === volumeId));
  }

  /** Departed copies reported gone (none of these cases leaves a PG, so none is expected). */
  gone: string[] = [];

  departedCopyGone(volumeId: string, pg: number, node: string, epoch: number): Promise<PlacementGroup> {
    this.gone.push(`${volumeId}/${pg}/${node}@${epoch}`);
    const group = this.groups.find((g) => g.volumeId === volumeId && g.pg === pg);
    return group === undefined ? Promise.reject(new Error(`no PG ${volumeId}/${pg}`)) : Promise.resolve(group);
  }

  private node(r: DataNodeRegistration, state: DataNode['state']): DataNode {
    return { id: r.id, address: r.address, zone: r.zone, capacityBytes: r.capacityBytes, usedBytes: 0, state, lastHeartbeatAtMs: 0, registeredAtMs: 0 };
  }
}

/** Lets every promise the last clock step started settle (no time passes on the manual clock). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => { setImmediate(resolve); });
}

describe('dataplane/server agent heartbeat on a ManualClock', () => {
  const log = pino({ level: 'silent' });
  let agent: DataNodeAgent | undefined;

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });

  it('beats exactly every heartbeatIntervalMs of the clock, reporting the PGs the store holds', async () => {
    const api = new MetadataStandIn();
    const clock = new ManualClock(0);
    const store = await MemoryBlockStore.open();
    await store.write({ kind: 'put', address: { volumeId: 'v', inode: 0, blockNo: 0 }, pg: 3, seq: 1, epoch: 2, data: new Uint8Array([1]) }, { sync: true });
    agent = new DataNodeAgent({ api, registration, store, log, heartbeatIntervalMs: everyMs, clock });
    await agent.start();
    assert.equal(api.registrations, 1);
    clock.advance(everyMs - 1);
    await settle();
    assert.equal(api.beats.length, 0, 'no beat before the interval has passed on the clock');
    clock.advance(1);
    await waitFor('the first beat', () => api.beats.length === 1);
    assert.deepEqual(api.beats[0]?.map((r) => [r.volumeId, r.pg, r.appliedSeq]), [['v', 3, 1]]);
    clock.advance(everyMs);
    await waitFor('the second beat', () => api.beats.length === 2);
    await settle();
    assert.equal(api.beats.length, 2, 'one beat per interval');
  });

  it('does not pile beats up behind one still running; beats again on the next tick after it ends', async () => {
    const api = new MetadataStandIn();
    api.holdBeats = true;
    const clock = new ManualClock(0);
    agent = new DataNodeAgent({ api, registration, store: await MemoryBlockStore.open(), log, heartbeatIntervalMs: everyMs, clock });
    await agent.start();
    clock.advance(everyMs);
    await waitFor('the first beat', () => api.beats.length === 1);
    for (let i = 0; i < 3; i++) clock.advance(everyMs);
    await settle();
    assert.equal(api.beats.length, 1, 'three ticks passed while the first beat ran: none started');
    api.holdBeats = false;
    api.release();
    await settle();
    assert.equal(api.beats.length, 1, 'nothing is made up for the skipped ticks');
    clock.advance(everyMs);
    await waitFor('the beat after the slow one', () => api.beats.length === 2);
  });

  it('a wiped node counted in sync checks again every interval of the clock and registers once marked down', async () => {
    const api = new MetadataStandIn();
    api.me = { ...registration, usedBytes: 0, state: 'up', lastHeartbeatAtMs: 0, registeredAtMs: 0 };
    api.groups = [{ volumeId: 'v', pg: 0, replicas: ['d1', 'd2'], primary: 'd2', epoch: 4, inSync: ['d1', 'd2'] }];
    const clock = new ManualClock(0);
    const store = await MemoryBlockStore.open();
    agent = new DataNodeAgent({ api, registration, store, log, heartbeatIntervalMs: everyMs, clock });
    const started = agent.start();
    await waitFor('the first check', () => api.nodeListings === 1);
    await settle();
    assert.equal(api.registrations, 0, 'an empty store the service counts in sync does not register');
    clock.advance(everyMs - 1);
    await settle();
    assert.equal(api.nodeListings, 1, 'no second check before the interval');
    clock.advance(1);
    await waitFor('the second check', () => api.nodeListings === 2);
    api.me = { ...api.me, state: 'down' };
    clock.advance(everyMs);
    await started;
    assert.equal(api.registrations, 1);
    assert.equal(api.nodeListings, 3);
  });
});
