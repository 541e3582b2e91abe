/**
 * What a placement from the metadata service means for the block server's copy of a PG
 * (dataplane/core/placement-rules.ts `placementStep`). Pure: one case per rule; the server's
 * integration suites (failover, rereplication, handback-*, wiped-node) run it inside the server.
 */
import assert from 'node:assert/strict';
import { placementStep, type PgPlacement, type PlacementView } from '../../../dataplane/core/index.js';

function group(epoch: number, primary: string, ids = ['a', 'b', 'c'], addedAt: Record<string, number> = {}): PgPlacement {
  return { epoch, primary, replicas: ids.map((id) => ({ id, zone: 'z1' })), addedAt };
}

/** Node `a`'s view from its heartbeat: its store recorded epoch 3 with seqs 1..5, serving nothing. */
function view(over: Partial<PlacementView> = {}): PlacementView {
  return { self: 'a', recordedEpoch: 3, applied: 5, highest: 5, servingEpoch: null, rejoining: false, handBackDone: false, roles: true, ...over };
}

describe('dataplane/core placement rules', () => {
  it('a placement naming this node primary records the epoch, then claims and peers it', () => {
    assert.deepEqual(placementStep(view(), group(4, 'a')), [{ t: 'epoch', epoch: 4 }, { t: 'peer', epoch: 4 }]);
  });

  it('a primary already serving (or peering) the epoch does not peer again', () => {
    assert.deepEqual(placementStep(view({ servingEpoch: 4 }), group(4, 'a')), [{ t: 'epoch', epoch: 4 }]);
    assert.deepEqual(placementStep(view({ servingEpoch: 3 }), group(4, 'a')), [{ t: 'epoch', epoch: 4 }, { t: 'peer', epoch: 4 }], 'an older epoch is peered anew');
  });

  it('a placement naming another primary records the epoch and steps this node down', () => {
    assert.deepEqual(placementStep(view({ servingEpoch: 3 }), group(4, 'b')), [{ t: 'epoch', epoch: 4 }, { t: 'stepDown' }]);
  });

  it('a member re-added after the epochs it recorded starts the rejoin, and records nothing before its old copy is gone', () => {
    assert.deepEqual(placementStep(view(), group(6, 'b', ['a', 'b', 'c'], { a: 6 })), [{ t: 'rejoin', addedAt: 6 }]);
    assert.deepEqual(placementStep(view({ rejoining: true }), group(6, 'b', ['a', 'b', 'c'], { a: 6 })), [], 'a rejoin already running is left alone');
    assert.deepEqual(placementStep(view({ applied: 0, highest: 0 }), group(6, 'b', ['a', 'b', 'c'], { a: 6 })), [{ t: 'epoch', epoch: 6 }, { t: 'stepDown' }], 'an empty copy is a new replica');
    assert.deepEqual(placementStep(view({ recordedEpoch: 6 }), group(7, 'b', ['a', 'b', 'c'], { a: 6 })), [{ t: 'epoch', epoch: 7 }, { t: 'stepDown' }], 'added at an epoch it saw: it followed the group since');
  });

  it('a group this node left: its copy is handed back to the primary once per epoch, unless there is nothing it could hold that the group lacks', () => {
    const left = group(5, 'b', ['b', 'c', 'd']);
    assert.deepEqual(placementStep(view(), left), [{ t: 'handBack', epoch: 5 }]);
    assert.deepEqual(placementStep(view({ handBackDone: true }), left), [], 'done or running at this epoch');
    assert.deepEqual(placementStep(view({ highest: 0, applied: 0 }), left), [{ t: 'nothingToHandBack', epoch: 5 }], 'an empty copy');
    assert.deepEqual(placementStep(view({ recordedEpoch: 5 }), left), [{ t: 'nothingToHandBack', epoch: 5 }], 'it saw this epoch: part of the group\'s history there');
  });

  it('an operator\'s placement (not this node\'s heartbeat) only records epochs, of every group', () => {
    const v = view({ roles: false });
    assert.deepEqual(placementStep(v, group(4, 'a')), [{ t: 'epoch', epoch: 4 }]);
    assert.deepEqual(placementStep(v, group(4, 'b', ['b', 'c', 'd'])), [{ t: 'epoch', epoch: 4 }], 'a left group is not handed back from it');
    assert.deepEqual(placementStep(v, group(6, 'b', ['a', 'b', 'c'], { a: 6 })), [{ t: 'rejoin', addedAt: 6 }], 'a stale copy is replaced whoever says so');
  });
});
