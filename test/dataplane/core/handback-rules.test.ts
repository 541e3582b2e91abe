/**
 * The order of a hand-back's steps (dataplane/core/handback-rules.ts), which the core's own
 * hand-back and the block server's rejoin both carry out.
 */
import assert from 'node:assert/strict';
import { afterHandBack, rejoinSteps } from '../../../dataplane/core/index.js';

describe('dataplane/core hand-back steps', () => {
  it('after the offers settle: drop, record the epoch, and only a rejoining member catches up from seq 1', () => {
    assert.deepEqual(afterHandBack(true, true, 7), [{ t: 'drop' }, { t: 'epoch', epoch: 7 }, { t: 'catchUp' }]);
    assert.deepEqual(afterHandBack(false, false, 7), [{ t: 'drop' }, { t: 'epoch', epoch: 7 }], 'a copy that left the group only goes');
    assert.deepEqual(afterHandBack(true, false, 7), [{ t: 'drop' }, { t: 'epoch', epoch: 7 }], 'removed again before it finished');
  });

  it('a rejoin offers what it holds before anything is dropped, lets in-flight writes land, then starts over', () => {
    assert.deepEqual(rejoinSteps({ member: true, holdsAnything: true, otherInSync: 1, epoch: 4 }).map((s) => s.t), ['offer', 'settle', 'drop', 'epoch', 'catchUp']);
    assert.deepEqual(rejoinSteps({ member: true, holdsAnything: true, otherInSync: 1, epoch: 4 })[0], { t: 'offer', concern: 'replicated' });
    assert.deepEqual(rejoinSteps({ member: true, holdsAnything: true, otherInSync: 0, epoch: 4 })[0], { t: 'offer', concern: 'durable' }, 'only the primary to count on');
    assert.deepEqual(rejoinSteps({ member: true, holdsAnything: false, otherInSync: 2, epoch: 4 }).map((s) => s.t), ['settle', 'drop', 'epoch', 'catchUp'], 'nothing to offer');
    assert.deepEqual(rejoinSteps({ member: false, holdsAnything: true, otherInSync: 2, epoch: 4 }), [{ t: 'leave' }], 'removed again: an ordinary stale copy');
  });
});
