/**
 * Exhaustive check of write-concern accounting: for every concern, every replica set of 1..4
 * nodes over 1..3 zones, and every combination of acks, the verdict must agree with the
 * definition — satisfied exactly when the definition holds, impossible exactly when no way the
 * pending acks could still turn out satisfies it, pending otherwise.
 */
import assert from 'node:assert/strict';
import { evaluateWriteConcern, primaryMustSync, replicasMustSync } from '../../../dataplane/logic/write-concern.js';
import type { ReplicaAck, ReplicaInfo } from '../../../dataplane/logic/write-concern.js';
import { writeConcernOrder } from '../../../proto/metadata-types.js';
import type { WriteConcern } from '../../../proto/metadata-types.js';

const ackValues: ReplicaAck[] = ['pending', 'accepted', 'durable', 'failed'];

function definitionHolds(c: WriteConcern, replicas: ReplicaInfo[], primary: string, acks: Map<string, ReplicaAck>): boolean {
  const a = (id: string): ReplicaAck => acks.get(id) ?? 'pending';
  if (!replicas.some((r) => r.id === primary)) return false;
  const others = replicas.filter((r) => r.id !== primary);
  switch (c) {
    case 'acknowledged': return a(primary) === 'accepted' || a(primary) === 'durable';
    case 'durable': return a(primary) === 'durable';
    case 'replicated': return a(primary) === 'durable' && others.some((r) => a(r.id) === 'durable');
    case 'distributed': return new Set(replicas.map((r) => r.zone)).size >= 2 && replicas.every((r) => a(r.id) === 'durable');
  }
}

/** Every way the acks could still turn out: pending may become anything, accepted may become durable. */
function futures(acks: Map<string, ReplicaAck>): Map<string, ReplicaAck>[] {
  let out: Map<string, ReplicaAck>[] = [new Map<string, ReplicaAck>()];
  for (const [id, v] of acks) {
    const next: ReplicaAck[] = v === 'pending' ? ['accepted', 'durable', 'failed'] : v === 'accepted' ? ['accepted', 'durable'] : [v];
    out = out.flatMap((m) => next.map((n) => new Map([...m, [id, n]])));
  }
  return out;
}

function* combos(ids: string[]): Generator<Map<string, ReplicaAck>> {
  const n = ids.length;
  for (let i = 0; i < 4 ** n; i++) {
    const m = new Map<string, ReplicaAck>();
    let x = i;
    for (const id of ids) { m.set(id, ackValues[x % 4] ?? 'pending'); x = Math.floor(x / 4); }
    yield m;
  }
}

function* zoneLayouts(n: number): Generator<string[]> {
  for (let i = 0; i < 3 ** n; i++) {
    const z: string[] = [];
    let x = i;
    let canonical = true;
    let highest = -1;
    for (let k = 0; k < n; k++) {
      const zone = x % 3;
      // Zone names are interchangeable: only layouts that name zones in first-use order.
      if (zone > highest + 1) canonical = false;
      highest = Math.max(highest, zone);
      z.push(`z${zone}`);
      x = Math.floor(x / 3);
    }
    if (canonical) yield z;
  }
}

describe('dataplane/logic write concern', () => {
  it('agrees with the definition for every concern, replica set, zone layout and ack combination', () => {
    let cases = 0;
    for (const concern of writeConcernOrder) {
      for (let n = 1; n <= 4; n++) {
        const ids = Array.from({ length: n }, (_, i) => `n${i}`);
        for (const zones of zoneLayouts(n)) {
          const replicas = ids.map((id, i) => ({ id, zone: zones[i] ?? 'z0' }));
          for (const primary of [ids[0] ?? 'n0', ids[n - 1] ?? 'n0']) {
            for (const acks of combos(ids)) {
              const v = evaluateWriteConcern(concern, replicas, primary, acks);
              const now = definitionHolds(concern, replicas, primary, acks);
              const reachable = futures(acks).some((f) => definitionHolds(concern, replicas, primary, f));
              const expected = now ? 'satisfied' : reachable ? 'pending' : 'impossible';
              assert.equal(v.state, expected, `${concern} replicas=${JSON.stringify(replicas)} primary=${primary} acks=${JSON.stringify([...acks])}`);
              cases++;
            }
          }
        }
      }
    }
    assert.ok(cases > 10_000, `covered ${cases} cases`);
  });

  it('refuses distributed up front when the replicas share one zone, and says why', () => {
    const v = evaluateWriteConcern('distributed', [{ id: 'a', zone: 'z' }, { id: 'b', zone: 'z' }, { id: 'c', zone: 'z' }], 'a', new Map());
    assert.equal(v.state, 'impossible');
    assert.match(v.state === 'impossible' ? v.reason : '', /2 zones/);
  });

  it('refuses a primary outside the replica set', () => {
    assert.equal(evaluateWriteConcern('acknowledged', [{ id: 'a', zone: 'z' }], 'x', new Map([['x', 'durable']])).state, 'impossible');
  });

  it('syncs on the primary for durable and stronger, on replicas only for replicated and distributed', () => {
    assert.deepEqual(writeConcernOrder.map(primaryMustSync), [false, true, true, true]);
    assert.deepEqual(writeConcernOrder.map(replicasMustSync), [false, false, true, true]);
  });
});
