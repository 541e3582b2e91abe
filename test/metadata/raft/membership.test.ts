/**
 * Raft paper §6 / thesis chapter 4: membership changes, one server at a time, with learners.
 * Decision under test: a change takes effect when its entry is applied (README.md).
 */
import assert from 'node:assert/strict';
import { ConfChangeType, MessageType, Role } from '../../../metadata/raft/core/index.js';
import { Cluster } from './harness.js';

describe('raft §6 membership changes', () => {
  it('adds a learner that receives the whole log but never votes nor counts toward commit', () => {
    const c = new Cluster(['a', 'b']);
    c.elect('a');
    c.propose('a', 'x');
    c.addNode('l', { voters: ['a', 'b'], learners: [] });
    assert.ok(c.node('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'l' }));
    c.stabilize();
    c.tickAll(2);
    assert.deepEqual(c.node('a').status().conf, { voters: ['a', 'b'], learners: ['l'] });
    assert.deepEqual(c.state('l'), ['x'], 'the learner caught up');
    // With b cut off, the learner's acknowledgement is no quorum.
    c.isolate('b');
    const commit = c.node('a').status().commit;
    c.propose('a', 'y');
    assert.equal(c.node('a').status().commit, commit, 'a + learner is not a quorum of {a, b}');
    assert.ok(c.node('l').status().lastIndex > commit, 'the learner did receive the entry');
  });

  it('a change takes effect when its entry is applied, not when it is appended', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    const a = c.node('a');
    assert.ok(a.proposeConfChange({ type: ConfChangeType.AddLearner, node: 'd' }));
    assert.deepEqual(a.status().conf.learners, [], 'appended only: old configuration in force');
    c.stabilize();
    assert.deepEqual(a.status().conf.learners, ['d'], 'applied: new configuration in force');
    for (const id of ['b', 'c']) assert.deepEqual(c.node(id).status().conf.learners, ['d'], `${id} applied it too`);
  });

  it('allows one pending change at a time', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    const a = c.node('a');
    assert.ok(a.proposeConfChange({ type: ConfChangeType.AddLearner, node: 'd' }));
    assert.equal(a.proposeConfChange({ type: ConfChangeType.AddLearner, node: 'e' }), false, 'refused while the first is unapplied');
    c.stabilize();
    assert.ok(a.proposeConfChange({ type: ConfChangeType.AddLearner, node: 'e' }), 'accepted once it is applied');
  });

  it('refuses changes that do nothing (adding a voter twice, promoting a non-learner, removing the last voter)', () => {
    const c = new Cluster(['solo']);
    c.elect('solo');
    const n = c.node('solo');
    assert.equal(n.proposeConfChange({ type: ConfChangeType.AddVoter, node: 'solo' }), false);
    assert.equal(n.proposeConfChange({ type: ConfChangeType.PromoteLearner, node: 'x' }), false);
    assert.equal(n.proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'solo' }), false);
  });

  it('promotes a learner to a voter, which then counts toward quorum and can lead', () => {
    const c = new Cluster(['a', 'b', 'l'], {}, { voters: ['a', 'b'], learners: ['l'] });
    c.elect('a');
    assert.ok(c.node('a').proposeConfChange({ type: ConfChangeType.PromoteLearner, node: 'l' }));
    c.stabilize();
    c.tickAll(2);
    assert.deepEqual(c.node('l').status().conf, { voters: ['a', 'b', 'l'], learners: [] });
    c.isolate('b');
    const before = c.node('a').status().commit;
    c.propose('a', 'z');
    assert.ok(c.node('a').status().commit > before, 'a + l is a quorum of three');
    c.heal();
    c.node('a').transferLeader('l');
    c.stabilize();
    assert.equal(c.node('l').status().role, Role.Leader);
  });

  it('a removed leader steps down once the removal is applied, and the rest carry on', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    assert.ok(c.node('a').proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'a' }));
    c.stabilize();
    assert.equal(c.node('a').status().role, Role.Follower);
    assert.deepEqual(c.node('b').status().conf.voters, ['b', 'c']);
    for (let i = 0; i < 60 && c.leader() === null; i++) c.tickAll();
    const leader = c.leader();
    assert.ok(leader === 'b' || leader === 'c', `b or c leads (got ${leader})`);
    c.tickAll(30);
    assert.notEqual(c.node('a').status().role, Role.Leader, 'the removed node never leads again');
    assert.ok(c.propose(leader, 'after'));
    assert.deepEqual(c.state(leader), ['after']);
  });

  it('adds a brand-new voter (bootstrap path) which catches up from an empty log', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    for (let i = 0; i < 5; i++) c.propose('a', `v${i}`);
    c.addNode('d', { voters: ['a', 'b', 'c'], learners: [] });
    assert.ok(c.node('a').proposeConfChange({ type: ConfChangeType.AddVoter, node: 'd' }));
    c.stabilize();
    c.tickAll(3);
    assert.deepEqual(c.state('d'), ['v0', 'v1', 'v2', 'v3', 'v4']);
    assert.deepEqual(c.node('d').status().conf.voters, ['a', 'b', 'c', 'd']);
    assert.ok(c.messages(MessageType.App).some((m) => m.to === 'd'));
  });

  it('a new leader proposes no change until everything in its log (its no-op included) is applied', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.node('a').campaign();
    // Deliver the election only: a is leader but its no-op is not committed yet.
    for (let i = 0; i < 3; i++) {
      for (const id of ['a', 'b', 'c']) while (c.node(id).hasReady()) {
        const rd = c.node(id).ready();
        c.node(id).advance(rd);
        for (const m of [...rd.messagesBeforePersist, ...rd.messages]) if (m.type !== MessageType.App) c.node(m.to).step(m);
      }
    }
    assert.equal(c.node('a').status().role, Role.Leader);
    assert.equal(c.node('a').proposeConfChange({ type: ConfChangeType.AddLearner, node: 'd' }), false);
  });
});
