/**
 * Raft paper §5.3 (log replication) and §5.4 (safety), plus the Ready/advance contract and
 * restart from RaftInitialState.
 */
import assert from 'node:assert/strict';
import { MessageType, RaftNode, Role, type Message } from '../../../metadata/raft/core/index.js';
import { Cluster, config, enc } from './harness.js';

/** Ticks everyone (the old leader is cut off) until one of `ids` leads. */
function electAmong(c: Cluster, ids: string[]): string {
  for (let i = 0; i < 100; i++) {
    c.tickAll();
    const l = ids.find((id) => c.node(id).status().role === Role.Leader);
    if (l !== undefined) return l;
  }
  assert.fail('no leader among ' + ids.join(','));
}

describe('raft §5.3 log replication', () => {
  it('commits a proposal once a quorum holds it and every node applies it in order', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    for (const v of ['x', 'y', 'z']) assert.ok(c.propose('a', v));
    for (const id of ['a', 'b', 'c']) assert.deepEqual(c.state(id), ['x', 'y', 'z']);
    assert.equal(c.node('a').status().commit, 4, 'no-op + three proposals');
  });

  it('followers refuse proposals (the caller retries at the leader)', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    assert.equal(c.node('b').propose(enc('x')), false);
  });

  it('the leader sends its Apps before its own write is durable; followers acknowledge only after theirs', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    const a = c.node('a');
    assert.ok(a.propose(enc('p')));
    const rd = a.ready();
    assert.ok(rd.messagesBeforePersist.some((m) => m.type === MessageType.App && m.entries.length === 1));
    assert.equal(rd.entries.length, 1);
    const app = rd.messagesBeforePersist.find((m) => m.type === MessageType.App && m.to === 'b') as Message;
    c.node('b').step(app);
    const brd = c.node('b').ready();
    assert.equal(brd.messagesBeforePersist.length, 0);
    assert.ok(brd.messages.some((m) => m.type === MessageType.AppResp && m.index === 2), 'the ack waits for the persist step');
    assert.deepEqual(brd.entries.map((e) => e.index), [2]);
    c.node('b').advance(brd);
    a.advance(rd);
  });

  it('a leader does not count its own unpersisted entry toward commit', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    const a = c.node('a');
    a.propose(enc('p'));
    const rd = a.ready(); // not advanced yet: a's copy is not durable
    const app = rd.messagesBeforePersist.find((m) => m.type === MessageType.App && m.to === 'b') as Message;
    c.node('b').step(app);
    const brd = c.node('b').ready();
    c.node('b').advance(brd);
    a.step(brd.messages.find((m) => m.type === MessageType.AppResp) as Message);
    assert.equal(a.status().commit, 1, 'b alone is no quorum of three while a has not persisted');
    a.advance(rd);
    assert.equal(a.status().commit, 2, 'after advance the leader counts itself');
  });

  it('batches many proposals into few App messages (maxMessageBytes)', () => {
    const c = new Cluster(['a', 'b', 'c'], { maxMessageBytes: 64 });
    c.elect('a');
    const before = c.messages(MessageType.App).length;
    for (let i = 0; i < 100; i++) c.node('a').propose(enc(`v${i.toString().padStart(3, '0')}`));
    c.stabilize();
    const apps = c.messages(MessageType.App).slice(before).filter((m) => m.entries.length > 0);
    assert.ok(apps.every((m) => m.entries.reduce((s, e) => s + e.data.byteLength, 0) <= 64));
    assert.ok(apps.length <= 2 * Math.ceil(100 * 4 / 64) + 2, `few messages (${apps.length})`);
    assert.equal(c.state('c').length, 100);
  });

  it('caps uncommitted bytes: proposals beyond the cap are dropped until entries commit', () => {
    const c = new Cluster(['a', 'b', 'c'], { maxUncommittedBytes: 10 });
    c.elect('a');
    c.isolate('a');
    const a = c.node('a');
    assert.ok(a.propose(enc('12345')));
    assert.ok(a.propose(enc('12345')));
    assert.equal(a.propose(enc('1')), false);
    c.heal();
    c.stabilize();
    c.tickAll(2);
    assert.ok(a.propose(enc('1')), 'accepted again once committed');
  });

  it('a lagging follower catches up through probe and fast back-off by term', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 50; i++) c.node('a').propose(enc(`v${i}`));
    c.stabilize();
    c.heal();
    c.tickAll(3);
    assert.equal(c.state('c').length, 50);
  });

  it('§5.3: a follower with conflicting uncommitted entries has them replaced by the leader\'s', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.propose('a', 'base');
    // a appends entries nobody else gets, then loses leadership.
    c.isolate('a');
    for (let i = 0; i < 5; i++) c.node('a').propose(enc(`lost${i}`));
    c.stabilize();
    const nl = electAmong(c, ['b', 'c']);
    c.propose(nl, 'kept');
    c.heal();
    c.tickAll(25);
    for (const id of ['a', 'b', 'c']) assert.deepEqual(c.state(id), ['base', 'kept'], `${id} applied the leader's log`);
  });

  it('§5.4.2: a new leader never commits an old-term entry by counting replicas; its own entry commits it', () => {
    // One entry per App, so the old entry reaches b in a message of its own.
    const c = new Cluster(['a', 'b', 'c'], { preVote: false, checkQuorum: false, maxMessageBytes: 1 });
    c.elect('a');
    c.isolate('a');
    c.node('a').propose(enc('old')); // index 2, term 1, only on a
    c.stabilize();
    c.crash('a');
    c.start('a'); // back as a follower of term 1, 'old' on its disk
    c.heal();
    c.isolate('c');
    c.node('a').campaign(); // term 2: b votes for a (a's log is longer)
    const seen: number[] = [];
    c.stabilize(10_000, () => seen.push(c.node('a').status().commit));
    assert.equal(c.node('a').status().term, 2);
    assert.ok(c.trace.some((m) => m.type === MessageType.AppResp && m.from === 'b' && m.index === 2 && m.term === 2), 'b acknowledged the old entry alone');
    assert.ok(!seen.includes(2), `commit jumped from 1 to 3 (saw ${[...new Set(seen)].join(',')})`);
    assert.equal(c.node('a').status().commit, 3);
    assert.deepEqual(c.state('b'), ['old']);
  });

  it('restarts from RaftInitialState with its term, vote, log and commit and rejoins', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.propose('a', 'one');
    c.propose('a', 'two');
    const beforeB = c.node('b').status();
    c.crash('b');
    c.propose('a', 'three');
    const b = c.start('b');
    const st = b.status();
    assert.equal(st.term, beforeB.term);
    assert.equal(st.lastIndex, beforeB.lastIndex);
    assert.equal(st.applied, beforeB.applied);
    c.tickAll(3);
    assert.deepEqual(c.state('b'), ['one', 'two', 'three']);
  });

  it('restarted leader state is follower, and restart rejects a recovered state that breaks invariants', () => {
    assert.throws(() => new RaftNode(config('x'), {
      hardState: { term: 1, vote: null, commit: 5 },
      snapshotMeta: { index: 0, term: 0, conf: { voters: ['x'], learners: [] } },
      entries: [],
      applied: 0,
    }), /commit 5 <= last index 0/);
  });

  it('ready() twice without advance() is a bug and is refused', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.node('a').campaign();
    c.node('a').ready();
    assert.throws(() => c.node('a').ready(), /advance/);
  });
});
