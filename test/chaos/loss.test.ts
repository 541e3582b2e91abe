import { strict as assert } from 'node:assert';
import type { ChaosOperation } from '../../chaos/metadata/history-recorder.js';
import { findLostWrites } from '../../chaos/metadata/loss.js';

const w = (value: string, callAt: number, returnAt?: number): ChaosOperation =>
  returnAt === undefined
    ? { clientId: 0, key: 'label:k', input: { op: 'write', value }, outcome: 'unknown', callAt }
    : { clientId: 0, key: 'label:k', input: { op: 'write', value }, output: {}, outcome: 'ok', callAt, returnAt };

const create = (ok: boolean, callAt: number, returnAt: number): ChaosOperation =>
  ({ clientId: 0, key: 'volume:x', input: { op: 'create', value: 'exists' }, output: { ok }, outcome: 'ok', callAt, returnAt });

const del = (callAt: number, returnAt: number | undefined, ok?: boolean): ChaosOperation =>
  returnAt === undefined
    ? { clientId: 0, key: 'volume:x', input: { op: 'delete' }, outcome: 'unknown', callAt }
    : { clientId: 0, key: 'volume:x', input: { op: 'delete' }, output: { ok: ok ?? true }, outcome: 'ok', callAt, returnAt };

describe('chaos loss check', () => {
  it('finds nothing lost when the final value is the last write or a concurrent one', () => {
    const history = [w('a', 0, 10), w('b', 20, 30), w('c', 25, 40)];
    assert.deepEqual(findLostWrites(history, new Map([['label:k', 'c']])), []);
    assert.deepEqual(findLostWrites(history, new Map([['label:k', 'b']])), []);
  });

  it('counts acknowledged writes that started after the final value was written', () => {
    const history = [w('a', 0, 10), w('b', 20, 30), w('c', 40, 50)];
    const lost = findLostWrites(history, new Map([['label:k', 'a']]));
    assert.deepEqual(lost.map((l) => l.value), ['b', 'c']);
  });

  it('an unknown-outcome write may be the final value without losing anything after it', () => {
    const history = [w('a', 0, 10), w('p', 5), w('b', 20, 30)];
    assert.deepEqual(findLostWrites(history, new Map([['label:k', 'p']])), []);
  });

  it('an absent or never-written final value loses every acknowledged write', () => {
    const history = [w('a', 0, 10), w('b', 20, 30)];
    assert.equal(findLostWrites(history, new Map([['label:k', null]])).length, 2);
    assert.equal(findLostWrites(history, new Map([['label:k', 'zzz']])).length, 2);
  });

  it('a created volume that vanished with no delete after it is lost', () => {
    assert.equal(findLostWrites([create(true, 0, 10)], new Map([['volume:x', null]])).length, 1);
    assert.equal(findLostWrites([create(true, 0, 10), del(20, 30)], new Map([['volume:x', null]])).length, 0);
    assert.equal(findLostWrites([create(true, 0, 10), del(5, undefined)], new Map([['volume:x', null]])).length, 0);
    // A delete that finished before the create started, or that found nothing, cannot explain it.
    assert.equal(findLostWrites([del(0, 5), create(true, 10, 20)], new Map([['volume:x', null]])).length, 1);
    assert.equal(findLostWrites([create(true, 0, 10), del(20, 30, false)], new Map([['volume:x', null]])).length, 1);
    assert.equal(findLostWrites([create(true, 0, 10)], new Map([['volume:x', 'exists']])).length, 0);
  });
});
