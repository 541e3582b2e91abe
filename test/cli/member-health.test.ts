/** `memberHealth`: the daemon's health of a running metadata member (status, /healthz, join). */
import { strict as assert } from 'node:assert';
import { healthyApplyLagEntries, memberHealth } from '../../cli/daemon/daemon.js';
import type { MemberStatus } from '../../metadata/service/member.js';

function status(over: Partial<MemberStatus>): MemberStatus {
  return {
    id: 'node2', address: '127.0.0.1:1', role: 'follower', leaderId: 'node1', leaderAddress: '127.0.0.1:2', term: 2,
    commitIndex: 196, appliedIndex: 196, lastIndex: 196, conf: { voters: ['node1', 'node2', 'node3'], learners: [] },
    ...over,
  };
}

describe('memberHealth', () => {
  it('a voter with a leader that applies a busy log a few entries behind its commit index is healthy', () => {
    assert.deepEqual(memberHealth(status({ appliedIndex: 195 }), 'node2'), { ok: true, reason: 'leader node1' });
    assert.equal(memberHealth(status({ appliedIndex: 196 - healthyApplyLagEntries }), 'node2').ok, true);
  });

  it('a member further behind than the limit is catching up', () => {
    const s = status({ commitIndex: 1000, appliedIndex: 1000 - healthyApplyLagEntries - 1 });
    assert.deepEqual(memberHealth(s, 'node2'), { ok: false, reason: `catching up (${1000 - healthyApplyLagEntries - 1}/1000)` });
  });

  it('no status, no leader, or not in the configuration is not healthy', () => {
    assert.equal(memberHealth(null, 'node2').reason, 'metadata role not running');
    assert.equal(memberHealth(status({ leaderId: null }), 'node2').reason, 'no leader');
    assert.equal(memberHealth(status({}), 'node9').reason, 'not yet a member');
    assert.equal(memberHealth(status({ conf: { voters: ['node1'], learners: ['node9'] } }), 'node9').ok, true);
  });
});
