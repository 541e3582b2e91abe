/**
 * Raft paper §7: log compaction and InstallSnapshot.
 */
import assert from 'node:assert/strict';
import { MessageType, RaftNode } from '../../../metadata/raft/core/index.js';
import { Cluster, config, enc } from './harness.js';

describe('raft §7 log compaction and snapshots', () => {
  it('compact() drops the entries up to the snapshot point', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    for (let i = 0; i < 10; i++) c.propose('a', `v${i}`);
    const before = c.node('a').status();
    const at = c.compact('a');
    const after = c.node('a').status();
    assert.equal(at, before.applied);
    assert.equal(after.firstIndex, at + 1);
    assert.equal(after.lastIndex, before.lastIndex);
    assert.equal(c.node('a').entryAt(at), undefined, 'compacted away');
  });

  it('refuses to compact past what the application has applied', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    const applied = c.node('a').status().applied;
    assert.throws(() => c.node('a').compact(applied + 1, enc('x')), /compaction point/);
  });

  it('a follower whose next entry was compacted gets a Snap, persists and applies it, then replicates normally', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 10; i++) c.propose('a', `v${i}`);
    c.compact('a');
    c.compact('b');
    c.heal();
    let snapReady = false;
    const origin = c.processReady.bind(c);
    c.processReady = (id) => {
      const rd = origin(id);
      if (id === 'c' && rd.snapshot !== null) {
        snapReady = true;
        assert.ok(rd.mustSync);
        assert.ok(rd.messages.some((m) => m.type === MessageType.AppResp), 'the ack waits for the snapshot to be durable');
        assert.equal(rd.messagesBeforePersist.length, 0);
      }
      return rd;
    };
    c.tickAll(3);
    assert.ok(c.messages(MessageType.Snap).some((m) => m.to === 'c'), 'a Snap went to c');
    assert.ok(snapReady, 'c persisted the snapshot through a Ready');
    assert.deepEqual(c.state('c'), c.state('a'));
    c.propose('a', 'after');
    assert.deepEqual(c.state('c').slice(-1), ['after']);
    assert.equal(c.node('c').status().firstIndex, c.node('c').snapshotMeta().index + 1);
  });

  it('restarts from a snapshot plus the entries after it, and can serve that snapshot as leader', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    for (let i = 0; i < 5; i++) c.propose('a', `v${i}`);
    c.compact('b');
    c.propose('a', 'tail');
    c.crash('b');
    const b = c.start('b');
    assert.equal(b.snapshotMeta().index, c.disks.get('b')?.snapshot.meta.index);
    assert.equal(b.status().applied, c.disks.get('b')?.applied);
    // c falls behind; leadership moves to the restarted b, which must ship its snapshot to c.
    c.isolate('c');
    c.node('a').transferLeader('b');
    c.stabilize();
    assert.equal(c.node('b').status().role, 'leader');
    for (let i = 0; i < 3; i++) c.propose('b', `w${i}`);
    c.compact('b');
    c.heal();
    c.tickAll(3);
    assert.ok(c.messages(MessageType.Snap).some((m) => m.from === 'b' && m.to === 'c'));
    assert.deepEqual(c.state('c'), c.state('b'));
  });

  it('a stale snapshot (at or below the commit index) is acknowledged and ignored', () => {
    const n = new RaftNode(config('f'), {
      hardState: { term: 2, vote: null, commit: 3 },
      snapshotMeta: { index: 0, term: 0, conf: { voters: ['f', 'l'], learners: [] } },
      entries: [1, 2, 3].map((i) => ({ term: 1, index: i, type: 'normal' as const, data: enc(`e${i}`) })),
      applied: 3,
    });
    n.step({ type: MessageType.Snap, from: 'l', to: 'f', term: 2, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0,
      snapshot: { meta: { index: 2, term: 1, conf: { voters: ['f', 'l'], learners: [] } }, data: enc('') } });
    const rd = n.ready();
    assert.equal(rd.snapshot, null);
    assert.ok(rd.messages.some((m) => m.type === MessageType.AppResp && m.index === 3 && !m.reject));
    assert.equal(n.status().lastIndex, 3);
  });
});

describe('raft §7 snapshot failures', () => {
  it('reportSnapshotFailure() sends the leader back to probing, and the snapshot is sent again', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 5; i++) c.propose('a', `v${i}`);
    c.compact('a');
    c.heal();
    const a = c.node('a');
    let dropped = 0;
    // Drive by hand: heartbeats until a sends c a Snap, which is lost on the way.
    for (let i = 0; i < 5 && dropped === 0; i++) {
      a.tick();
      const rd = a.ready();
      for (const m of rd.messagesBeforePersist) {
        if (m.type === MessageType.Snap) { dropped++; continue; }
        c.node(m.to).step(m);
      }
      a.advance(rd);
      for (const id of ['b', 'c']) while (c.node(id).hasReady()) {
        const frd = c.node(id).ready();
        c.node(id).advance(frd);
        for (const m of frd.messages) a.step(m);
      }
    }
    assert.equal(dropped, 1, 'a Snap was sent to c (and lost)');
    assert.equal(a.status().progress.c?.state, 'snapshot');
    a.reportSnapshotFailure('c');
    assert.equal(a.status().progress.c?.state, 'probe');
    c.tickAll(3);
    assert.deepEqual(c.state('c'), c.state('a'), 'the snapshot went again and c caught up');
  });
});
