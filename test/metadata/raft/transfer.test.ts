/**
 * Thesis §3.10: leadership transfer with TimeoutNow.
 */
import assert from 'node:assert/strict';
import { MessageType, Role } from '../../../metadata/raft/core/index.js';
import { Cluster, enc } from './harness.js';

describe('raft leadership transfer (thesis §3.10)', () => {
  it('hands over to an up-to-date follower at once, despite the followers\' leases', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.propose('a', 'x');
    c.node('a').transferLeader('b');
    c.stabilize();
    assert.equal(c.node('b').status().role, Role.Leader);
    assert.equal(c.node('b').status().term, 2);
    assert.ok(c.messages(MessageType.TimeoutNow).some((m) => m.from === 'a' && m.to === 'b'));
    assert.ok(c.propose('b', 'y'));
    assert.deepEqual(c.state('a'), ['x', 'y']);
  });

  it('brings a lagging target up to date before TimeoutNow', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 5; i++) c.propose('a', `v${i}`);
    c.heal();
    c.node('a').transferLeader('c');
    c.stabilize();
    assert.equal(c.node('c').status().role, Role.Leader);
    assert.equal(c.state('c').length, 5);
  });

  it('drops proposals while a transfer is in progress, and abandons it after an election timeout', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('b');
    const a = c.node('a');
    a.transferLeader('b');
    c.stabilize();
    assert.equal(a.status().leadTransferee, 'b');
    assert.equal(a.propose(enc('dropped')), false);
    for (let i = 0; i < 10; i++) {
      c.tick('a');
      c.tick('c');
      c.stabilize();
    }
    assert.equal(a.status().leadTransferee, null, 'abandoned');
    assert.equal(a.status().role, Role.Leader);
    assert.ok(a.propose(enc('accepted')));
  });

  it('a follower forwards the request to the leader', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.node('c').transferLeader('c');
    c.stabilize();
    assert.equal(c.node('c').status().role, Role.Leader);
  });

  it('ignores a transfer to a learner or to a stranger', () => {
    const c = new Cluster(['a', 'b', 'l'], {}, { voters: ['a', 'b'], learners: ['l'] });
    c.elect('a');
    c.node('a').transferLeader('l');
    c.node('a').transferLeader('nobody');
    c.stabilize();
    assert.equal(c.node('a').status().leadTransferee, null);
    assert.equal(c.node('a').status().role, Role.Leader);
  });
});
