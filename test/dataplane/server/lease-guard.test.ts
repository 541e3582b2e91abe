/**
 * LeaseGuard against a real (in-process, one-member) metadata service: the pg-primary lease is
 * granted only to the PG's primary at its epoch, and a guard that stops renewing stops saying
 * "valid" no later than ttl after the acquire was sent (minus the safety margin).
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { startMetadataMember, type MetadataMember } from '../../../metadata/service/member.js';
import { ManualClock, systemClock, type Clock } from '../../../dataplane/clock.js';
import { LeaseGuard } from '../../../dataplane/server/lease-guard.js';
import { leaseSafetyMarginMs } from '../../../proto/limits.js';
import type { Volume } from '../../../proto/metadata-types.js';
import { freePort, until } from '../../metadata/service/harness.js';
import { waitFor } from '../helpers.js';

const logger = pino({ level: 'silent' });
const ttlMs = 400;

describe('dataplane/server LeaseGuard with a real metadata member', function () {
  this.timeout(30_000);
  let dir: string;
  let member: MetadataMember | null = null;
  const guards: LeaseGuard[] = [];
  let vol: Volume;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'galleon-lease-guard-'));
    const port = await freePort();
    member = await startMetadataMember({
      id: 'solo', dataDir: join(dir, 'solo'), bindAddress: `127.0.0.1:${port}`, peers: [{ id: 'solo', address: `127.0.0.1:${port}` }],
      logger, registry: new Registry(), timing: { tickIntervalMs: 20, electionTicks: 10 },
    });
    await until(() => member?.status().role === 'leader', 'solo to lead');
    await member.api.registerDataNode({ id: 'd1', address: '127.0.0.1:9601', zone: 'z1', capacityBytes: 1e12 });
    vol = await member.api.createVolume({ name: 'lg', size: '4M', replicas: 1, storageClass: 'fast-local-ssd' });
  });
  afterEach(async () => {
    for (const g of guards.splice(0)) g.close();
    await member?.stop();
    member = null;
    await rm(dir, { recursive: true, force: true });
  });

  function guard(nodeId: string, clock: Clock = systemClock): LeaseGuard {
    assert.ok(member);
    const g = new LeaseGuard(nodeId, { api: member.api, ttlMs }, logger, clock);
    guards.push(g);
    return g;
  }

  it('grants the primary at its epoch, refuses another node and another epoch', async () => {
    const [g0] = await member!.api.getPlacement(vol.id);
    assert.ok(g0 && g0.primary === 'd1');
    const d1 = guard('d1');
    await d1.ensure(vol.id, 0, g0.epoch);
    assert.ok(d1.valid(vol.id, 0, g0.epoch));
    assert.equal(d1.valid(vol.id, 0, g0.epoch + 1), false);
    await assert.rejects(d1.ensure(vol.id, 0, g0.epoch + 1), (e: { code?: string }) => e.code === 'UNAVAILABLE');
    await assert.rejects(guard('d2').ensure(vol.id, 0, g0.epoch), (e: { code?: string }) => e.code === 'UNAVAILABLE');
  });

  it('renews while running; once renewals stop, stops being valid within ttl of the last send', async () => {
    const [g0] = await member!.api.getPlacement(vol.id);
    assert.ok(g0);
    const d1 = guard('d1');
    await d1.ensure(vol.id, 0, g0.epoch);
    // Renewed in the background: still valid after several ttls.
    await new Promise((r) => setTimeout(r, ttlMs * 3));
    assert.ok(d1.valid(vol.id, 0, g0.epoch), 'renewed in the background');
    d1.close();
    // Every renewal was sent before close(), so validity ends by ttl - margin after it. Check at
    // that moment (a stalled event loop only makes the check later, never wrongly failing).
    const lapseBy = performance.now() + ttlMs - leaseSafetyMarginMs(ttlMs);
    await waitFor('ttl - margin to pass since close()', () => performance.now() >= lapseBy, ttlMs * 2, 5);
    assert.equal(d1.valid(vol.id, 0, g0.epoch), false, 'lapsed no later than ttl - margin after the last renewal');
  });

  it('judges the lease by its injected clock: valid until exactly ttl - margin after the send', async () => {
    const [g0] = await member!.api.getPlacement(vol.id);
    assert.ok(g0);
    const clock = new ManualClock(1_000);
    const d1 = guard('d1', clock);
    await d1.ensure(vol.id, 0, g0.epoch); // sent at manual time 1,000: nothing moves the clock but advance()
    const validFor = ttlMs - leaseSafetyMarginMs(ttlMs);
    // Renewals fall due on the way and are sent, but none can answer before the checks below
    // (no await in between): only the first grant counts.
    clock.advance(validFor - 1);
    assert.ok(d1.valid(vol.id, 0, g0.epoch), 'valid 1 ms before ttl - margin');
    clock.advance(1);
    assert.equal(d1.valid(vol.id, 0, g0.epoch), false, 'not valid at ttl - margin, whatever the real time');
  });
});
