/**
 * `GALLEON_TEST_CORE_FAULTS` (test only): the names of the core's deliberate breaks switch them on
 * in a data node; anything else stops the node with one clear error instead of running unbroken.
 */
import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import { coreFaultsFrom } from '../../../dataplane/server/pg-worker.js';

describe('dataplane/server: GALLEON_TEST_CORE_FAULTS', () => {
  it('is empty when unset or blank: production runs the intact core', () => {
    assert.deepEqual(coreFaultsFrom(undefined), {});
    assert.deepEqual(coreFaultsFrom(' , '), {});
  });

  it('switches on each named break', () => {
    assert.deepEqual(coreFaultsFrom('ackReplicatedAfterLocalWrite, declineBeforeSync'), { ackReplicatedAfterLocalWrite: true, declineBeforeSync: true });
  });

  it('refuses an unknown name with INVALID_ARGUMENT naming it and the known ones', () => {
    assert.throws(() => coreFaultsFrom('ackReplicatedAfterLocalWrite,ackEarly'), (e: unknown) =>
      isGalleonError(e, 'INVALID_ARGUMENT') && e.message.includes('"ackEarly"') && (e.hint ?? '').includes('acceptOldEpoch'));
  });
});
