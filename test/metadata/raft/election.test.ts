/**
 * Raft paper §5.2 (leader election), with the thesis' PreVote (§9.6) and CheckQuorum (§6.2).
 */
import assert from 'node:assert/strict';
import { MessageType, Role } from '../../../metadata/raft/core/index.js';
import { Cluster } from './harness.js';

describe('raft §5.2 leader election', () => {
  it('a follower that hears nothing times out, wins a pre-vote and then the vote, and leads term 1', () => {
    const c = new Cluster(['a', 'b', 'c']);
    // Election timeouts are randomized in [10, 20): within 20 ticks someone campaigns.
    for (let i = 0; i < 20 && c.leader() === null; i++) c.tickAll();
    const leader = c.leader();
    assert.ok(leader !== null, 'a leader was elected');
    const st = c.node(leader).status();
    assert.equal(st.term, 1, 'pre-vote did not spend a term');
    assert.ok(c.messages(MessageType.PreVote).length >= 2, 'the winner pre-voted first');
    for (const id of ['a', 'b', 'c']) {
      assert.equal(c.node(id).status().leader, leader);
      assert.equal(c.node(id).status().term, 1);
    }
  });

  it('elects exactly one leader per term even when two nodes campaign at once', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.node('a').campaign();
    c.node('b').campaign();
    c.stabilize();
    const leaders = ['a', 'b', 'c'].filter((id) => c.node(id).status().role === Role.Leader);
    assert.ok(leaders.length <= 1, `at most one leader, got ${leaders.join(',')}`);
  });

  it('a node votes at most once per term and persists that vote before answering', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: false });
    const b = c.node('b');
    b.step({ type: MessageType.Vote, from: 'a', to: 'b', term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
    b.step({ type: MessageType.Vote, from: 'c', to: 'b', term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
    const rd = b.ready();
    assert.deepEqual(rd.hardState, { term: 1, vote: 'a', commit: 0 });
    assert.equal(rd.messagesBeforePersist.length, 0, 'no vote leaves before the vote is durable');
    const answers = rd.messages.filter((m) => m.type === MessageType.VoteResp);
    assert.deepEqual(answers.map((m) => [m.to, m.reject]), [['a', false], ['c', true]]);
    b.advance(rd);
  });

  it('§5.4.1: a voter refuses a candidate whose log is less up to date', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.propose('a', 'x');
    c.isolate('c');
    c.propose('a', 'y'); // c misses it
    c.heal();
    c.crash('a');
    // c asks, a's former followers (b) have a longer log and refuse.
    c.node('c').campaign();
    c.stabilize();
    assert.notEqual(c.node('c').status().role, Role.Leader);
  });

  it('PreVote: a partitioned node does not inflate its term and cannot disrupt the leader when it returns', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    c.tickAll(100);
    assert.equal(c.node('c').status().term, 1, 'pre-votes failed, term unchanged');
    c.heal();
    c.tickAll(5);
    assert.equal(c.node('a').status().role, Role.Leader);
    assert.equal(c.node('a').status().term, 1);
  });

  it('CheckQuorum: a leader that hears from no quorum for an election timeout steps down', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('a');
    for (let i = 0; i < 25; i++) {
      c.tick('a');
      c.stabilize();
    }
    assert.equal(c.node('a').status().role, Role.Follower);
  });

  it('lease: followers that heard from a live leader ignore a vote request with a higher term', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: false });
    c.elect('a');
    const b = c.node('b');
    b.step({ type: MessageType.Vote, from: 'c', to: 'b', term: 5, logTerm: 1, index: 100, entries: [], commit: 0, reject: false, rejectHint: 0 });
    assert.equal(b.status().term, 1, 'the disruptive request was ignored');
    assert.equal(b.status().leader, 'a');
  });

  it('a learner never campaigns and is not asked for its vote', () => {
    const c = new Cluster(['a', 'b', 'l'], {}, { voters: ['a', 'b'], learners: ['l'] });
    c.tickAll(60);
    assert.notEqual(c.leader(), null);
    assert.notEqual(c.node('l').status().role, Role.Leader);
    assert.equal(c.messages(MessageType.PreVote).filter((m) => m.to === 'l' || m.from === 'l').length, 0);
  });

  it('a single-voter cluster elects itself at once', () => {
    const c = new Cluster(['solo']);
    c.elect('solo');
    assert.ok(c.propose('solo', 'v'));
    assert.deepEqual(c.state('solo'), ['v']);
  });
});
