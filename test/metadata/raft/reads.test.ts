/**
 * Raft paper §8 / thesis §6.4: linearizable reads through ReadIndex.
 */
import assert from 'node:assert/strict';
import { MessageType, Role } from '../../../metadata/raft/core/index.js';
import { Cluster } from './harness.js';

describe('raft §8 ReadIndex reads', () => {
  it('the leader answers with its commit index after a heartbeat round confirms it still leads', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.propose('a', 'x');
    const commit = c.node('a').status().commit;
    const heartbeatsBefore = c.messages(MessageType.Heartbeat).length;
    c.node('a').readIndex('r1');
    c.stabilize();
    assert.deepEqual(c.readStates.get('a'), [{ index: commit, context: 'r1' }]);
    assert.ok(c.messages(MessageType.Heartbeat).slice(heartbeatsBefore).some((m) => m.context === 'r1'), 'confirmed by a heartbeat round');
  });

  it('reads arriving together share one heartbeat round', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    const before = c.messages(MessageType.Heartbeat).length;
    for (let i = 0; i < 10; i++) c.node('a').readIndex(`r${i}`);
    c.stabilize();
    assert.equal(c.readStates.get('a')?.length, 10);
    assert.equal(c.messages(MessageType.Heartbeat).length - before, 2, 'one heartbeat per follower');
  });

  it('a leader cut off from the quorum never answers (it may have been deposed)', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('a');
    c.node('a').readIndex('stale');
    c.stabilize();
    c.tickAll(5);
    assert.equal(c.readStates.get('a'), undefined);
  });

  it('a new leader answers nothing before an entry of its own term has committed', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
    c.elect('a');
    c.propose('a', 'x');
    c.isolate('c');
    c.node('b').campaign();
    // Step the election by hand so b leads before its no-op commits.
    const a = c.node('a');
    const b = c.node('b');
    let rd = b.ready(); b.advance(rd);
    const vote = rd.messages.find((m) => m.type === MessageType.Vote && m.to === 'a');
    assert.ok(vote);
    a.step(vote);
    const ard = a.ready(); a.advance(ard);
    const resp = ard.messages.find((m) => m.type === MessageType.VoteResp);
    assert.ok(resp && !resp.reject);
    b.step(resp);
    assert.equal(b.status().role, Role.Leader);
    b.readIndex('early');
    rd = b.ready();
    assert.deepEqual(rd.readStates, []);
    assert.ok(!rd.messagesBeforePersist.some((m) => m.context === 'early'), 'no confirmation round yet');
    b.advance(rd);
    for (const m of rd.messagesBeforePersist) if (m.to === 'a') a.step(m);
    c.stabilize();
    const states = c.readStates.get('b') ?? [];
    assert.equal(states.length, 1);
    assert.equal(states[0]?.index, b.status().commit, 'answered with the commit index that includes its no-op');
  });

  it('a follower forwards the request and gets the leader\'s index back', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.propose('a', 'x');
    c.node('b').readIndex('via-b');
    c.stabilize();
    assert.ok(c.messages(MessageType.ReadIndex).some((m) => m.from === 'b' && m.to === 'a'));
    assert.deepEqual(c.readStates.get('b'), [{ index: c.node('a').status().commit, context: 'via-b' }]);
  });

  it('a single-voter cluster answers at once once its no-op is committed', () => {
    const c = new Cluster(['solo']);
    c.elect('solo');
    c.node('solo').readIndex('r');
    c.stabilize();
    assert.deepEqual(c.readStates.get('solo'), [{ index: 1, context: 'r' }]);
  });
});
