/**
 * The data-plane chaos run's loss check knows each write's concern: after a node loss, a write
 * acknowledged at `replicated` or stronger that is gone is a loss; one acknowledged at
 * `acknowledged`/`durable` is not (it is reported apart). And the node-loss fault strikes right
 * after an acknowledgement: `WriteHistory.nextAck` hands the write over from `acked` itself.
 */
import { strict as assert } from 'node:assert';
import { WriteHistory, type BlockWrite } from '../../chaos/dataplane/history.js';
import { findLostWrites } from '../../chaos/dataplane/loss.js';
import { pgOfKey } from '../../chaos/dataplane/node-loss.js';
import { pgOf } from '../../dataplane/logic/routing.js';
import type { WriteConcern } from '../../proto/metadata-types.js';

const acked = (value: string, concern: WriteConcern, callAt: number, returnAt: number): BlockWrite =>
  ({ writer: 0, key: '1/0', value, concern, outcome: 'acked', callAt, returnAt });

describe('data-plane chaos loss check by concern', () => {
  it('a replicated or distributed write that is gone is lost; a durable or acknowledged one is not', () => {
    const writes = [acked('a', 'replicated', 0, 10), acked('b', 'durable', 20, 30), acked('c', 'acknowledged', 40, 50)];
    // The block ends with `a`: b and c, acknowledged after a, are gone (their primary lost its disk).
    assert.deepEqual(findLostWrites(writes, new Map([['1/0', 'a']])), []);
    const weak = findLostWrites(writes, new Map([['1/0', 'a']]), (w) => w.concern === 'durable' || w.concern === 'acknowledged');
    assert.deepEqual(weak.map((l) => `${l.value}@${l.concern}`), ['b@durable', 'c@acknowledged']);
    // A replicated write after them, gone as well, is a loss, and says its concern.
    const withStrong = [...writes, acked('d', 'replicated', 60, 70), acked('e', 'distributed', 80, 90)];
    assert.deepEqual(findLostWrites(withStrong, new Map([['1/0', 'a']])).map((l) => `${l.value}@${l.concern}`), ['d@replicated', 'e@distributed']);
    assert.deepEqual(findLostWrites(withStrong, new Map([['1/0', 'e']])), []);
  });

  it('nextAck resolves with the matching acknowledged write, at once, or null after its timeout', async () => {
    const h = new WriteHistory();
    const wanted = h.nextAck((w) => w.key === '2/5', 5_000);
    const other = h.begin(0, '1/0', 'x', 'replicated');
    h.acked(other);
    const w = h.begin(1, '2/5', 'y', 'durable');
    h.acked(w);
    assert.equal(await wanted, w);
    assert.equal(await h.nextAck(() => true, 10), null);
  });

  it('maps a block key to the PG the data plane routes it to', () => {
    for (const [inode, blockNo] of [[1, 0], [2, 407], [3, 64], [9, 1_000_000]] as const) {
      assert.equal(pgOfKey(`${inode}/${blockNo}`, 16), pgOf(inode, blockNo, 16));
    }
  });
});
