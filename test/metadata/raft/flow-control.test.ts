/**
 * Replication flow control (etcd's progress tracker): probe vs. pipelined replicate, in-flight
 * windows by count and bytes, fast back-off by term, and the limits on numbers.
 */
import assert from 'node:assert/strict';
import { MessageType, RaftNode, type Entry, type Message } from '../../../metadata/raft/core/index.js';
import { Cluster, config, enc } from './harness.js';

function appsTo(msgs: Message[], to: string): Message[] {
  return msgs.filter((m) => m.type === MessageType.App && m.to === to && m.entries.length > 0);
}

describe('raft flow control', () => {
  it('pipelines at most maxInflightMessages Apps to a follower that does not answer', () => {
    const c = new Cluster(['a', 'b', 'c'], { maxInflightMessages: 3, maxMessageBytes: 1 });
    c.elect('a');
    const a = c.node('a');
    for (let i = 0; i < 10; i++) a.propose(enc(`v${i}`));
    const rd = a.ready();
    assert.equal(appsTo(rd.messagesBeforePersist, 'b').length, 3, 'window of three, one entry each');
    a.advance(rd);
    assert.equal(a.hasReady(), false, 'nothing more until acknowledgements arrive');
  });

  it('limits the bytes in flight (maxInflightBytes)', () => {
    const c = new Cluster(['a', 'b', 'c'], { maxInflightMessages: 100, maxInflightBytes: 10, maxMessageBytes: 4 });
    c.elect('a');
    const a = c.node('a');
    for (let i = 0; i < 10; i++) a.propose(enc('abcd'));
    const rd = a.ready();
    const apps = appsTo(rd.messagesBeforePersist, 'b');
    const bytes = apps.reduce((s, m) => s + m.entries.reduce((t, e) => t + e.data.byteLength, 0), 0);
    assert.equal(apps.length, 3, 'stops once 10 bytes are in flight');
    assert.equal(bytes, 12);
    a.advance(rd);
  });

  it('a follower with a long conflicting tail is repaired in a few round trips, thanks to rejection hints by term', () => {
    const c = new Cluster(['a', 'b', 'c'], { maxMessageBytes: 1 << 20 });
    c.elect('a');
    c.propose('a', 'base');
    // a, cut off, piles up 50 entries of term 1 that nobody else has.
    c.isolate('a');
    for (let i = 0; i < 50; i++) c.node('a').propose(enc(`orphan${i}`));
    c.stabilize();
    c.crash('a');
    c.heal();
    c.isolate('a');
    c.node('b').campaign();
    for (let i = 0; i < 30 && c.node('b').status().role !== 'leader'; i++) c.tickAll();
    const leader = ['b', 'c'].find((id) => c.node(id).status().role === 'leader');
    assert.ok(leader !== undefined);
    // The new leader's log grows long too: a naive one-index-at-a-time back-off would need ~50 round trips.
    for (let i = 0; i < 50; i++) c.node(leader).propose(enc(`new${i}`));
    c.stabilize();
    // A further election, so the leader starts probing a from the end of its long log.
    const other = leader === 'b' ? 'c' : 'b';
    c.node(leader).transferLeader(other);
    c.stabilize();
    assert.equal(c.node(other).status().role, 'leader');
    c.start('a');
    c.heal();
    const rejectsBefore = c.messages(MessageType.AppResp).filter((m) => m.from === 'a' && m.reject).length;
    c.tickAll(3);
    const rejects = c.messages(MessageType.AppResp).filter((m) => m.from === 'a' && m.reject).length - rejectsBefore;
    assert.deepEqual(c.state('a'), ['base', ...Array.from({ length: 50 }, (_, i) => `new${i}`)]);
    assert.ok(rejects <= 2, `repaired with ${rejects} rejections (one per term), not 50`);
  });

  it('a heartbeat never tells a follower to commit beyond what it is known to hold', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    c.propose('a', 'x');
    c.heal();
    c.tick('a', 2);
    const rd = c.node('a').ready();
    const hb = rd.messagesBeforePersist.find((m) => m.type === MessageType.Heartbeat && m.to === 'c');
    assert.ok(hb !== undefined);
    assert.ok(hb.commit < c.node('a').status().commit, `heartbeat commit ${hb.commit} is c's match, not the leader's commit`);
    c.node('a').advance(rd);
  });

  it('refuses terms and indexes at or beyond 2^53 (they would lose integer precision)', () => {
    const n = new RaftNode(config('x'), {
      hardState: { term: 1, vote: null, commit: 0 },
      snapshotMeta: { index: 0, term: 0, conf: { voters: ['x', 'y'], learners: [] } },
      entries: [],
      applied: 0,
    });
    const big = 2 ** 53;
    assert.throws(() => n.step({ type: MessageType.Heartbeat, from: 'y', to: 'x', term: big, logTerm: 0, index: 0, entries: [] as Entry[], commit: 0, reject: false, rejectHint: 0 }), /2\^53/);
  });
});
