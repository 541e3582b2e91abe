/**
 * PgCore, one transcript per rule: events in, actions out. The simulator (test/sim-dataplane)
 * covers the interleavings; these pin the individual decisions.
 */
import assert from 'node:assert/strict';
import { PgCore, defaultCoreLimits, type PgAction, type PgEvent, type PgPlacement } from '../../../dataplane/core/index.js';

const zones: Record<string, string> = { a: 'z1', b: 'z2', c: 'z1' };
function placement(epoch: number, primary: string, ids = ['a', 'b', 'c'], addedAt: Record<string, number> = {}): PgPlacement {
  return { epoch, primary, replicas: ids.map((id) => ({ id, zone: zones[id] ?? 'z1' })), addedAt };
}

function of<T extends PgAction['t']>(actions: PgAction[], t: T): Extract<PgAction, { t: T }>[] {
  return actions.filter((a): a is Extract<PgAction, { t: T }> => a.t === t);
}

function stored(core: PgCore, actions: PgAction[]): PgAction[] {
  return of(actions, 'store').flatMap((s) => core.step({ t: 'stored', token: s.token }));
}

/** A primary `a` at epoch 1 that peered with empty replicas b and c and holds its lease. */
function activePrimary(): PgCore {
  const core = new PgCore('a', { epoch: 0, applied: 0, trimmedTo: 0, held: [] });
  core.step({ t: 'placement', p: placement(1, 'a') });
  core.step({ t: 'claimed', epoch: 1 });
  const empty = { entries: [], full: null };
  core.step({ t: 'msg', from: 'b', msg: { t: 'peerAnswer', epoch: 1, applied: 0, highest: 0, fill: empty } });
  stored(core, core.step({ t: 'msg', from: 'c', msg: { t: 'peerAnswer', epoch: 1, applied: 0, highest: 0, fill: empty } }));
  core.step({ t: 'lease', epoch: 1, valid: true });
  assert.equal(core.r.phase, 'active');
  return core;
}

const write = (req: number, concern: 'acknowledged' | 'durable' | 'replicated' | 'distributed', epoch = 1): PgEvent => ({ t: 'write', req, block: 7, value: `v${req}`, concern, epoch });

/** A primary `a` at epoch 3 whose peering the shell did (the block server, server/README.md). */
function shellPeered(groupHighest: number): PgCore {
  const core = new PgCore('a', { epoch: 3, applied: 4, trimmedTo: 0, held: [] });
  core.step({ t: 'peeredByShell', p: placement(3, 'a'), groupHighest });
  core.step({ t: 'lease', epoch: 3, valid: true });
  return core;
}

describe('dataplane/core: PgCore', () => {
  it('a primary the shell peered assigns above the group and its own journal', () => {
    for (const [groupHighest, first] of [[9, 10], [2, 5]] as const) {
      const core = shellPeered(groupHighest);
      assert.equal(core.r.phase, 'active');
      const [s] = of(core.step(write(1, 'acknowledged', 3)), 'store');
      assert.equal(s?.entries[0]?.seq, first, `groupHighest ${groupHighest}`);
    }
  });

  it('one record per PG: after a stint as replica the store is restored into it, and a new epoch assigns above the group and above every seq it gave before', () => {
    const core = shellPeered(0);
    for (let req = 1; req <= 8; req++) core.step(write(req, 'durable', 3)); // seqs 5..12, not stored here yet: waiting
    // As a replica at epoch 4 the shell's own paths wrote the store (watermark 7, seq 9 above a gap).
    const restored = core.step({ t: 'restored', epoch: 4, applied: 7, held: [9], trimmedTo: 3 });
    assert.equal(core.r.phase, 'fenced', 'the store names a newer epoch: this primary of epoch 3 is deposed');
    assert.deepEqual(of(restored, 'answer').map((a) => (a.ok ? 'ok' : a.code)), Array(8).fill('STALE_EPOCH'));
    assert.deepEqual(of(restored, 'epoch'), [], 'the store recorded that epoch already');
    assert.deepEqual([core.r.applied, [...core.r.held], core.r.trimmedTo], [7, [9], 3]);
    core.step({ t: 'peeredByShell', p: placement(5, 'a'), groupHighest: 10 });
    core.step({ t: 'lease', epoch: 5, valid: true });
    assert.equal(core.r.phase, 'active');
    const [s] = of(core.step(write(9, 'acknowledged', 5)), 'store');
    assert.equal(s?.entries[0]?.seq, 13, 'seqs 11 and 12 were given at epoch 3; the group holds only up to 10');
  });

  it('one record per PG: a second peering at the epoch it serves keeps the writes that wait and the out-of-sync marks they wait for', () => {
    const core = shellPeered(0);
    stored(core, core.step(write(1, 'replicated', 3)));
    core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 3, seqs: [5], durable: true, applied: 5 } });
    core.step({ t: 'msg', from: 'c', msg: { t: 'nack', epoch: 3, seqs: [5], newer: 3 } });
    const again = core.step({ t: 'peeredByShell', p: placement(3, 'a'), groupHighest: 5 });
    assert.deepEqual(of(again, 'answer'), [], 'the waiting write is still this epoch\'s');
    const [a] = of(core.step({ t: 'marked', replica: 'c', floor: 5 }), 'answer');
    assert.deepEqual(a?.ok === true ? a.seq : a, 5);
    const [s] = of(core.step(write(2, 'acknowledged', 3)), 'store');
    assert.equal(s?.entries[0]?.seq, 6);
  });

  it('a primary the shell peered at an epoch older than one it has seen is fenced and acknowledges nothing', () => {
    const core = new PgCore('a', { epoch: 5, applied: 0, trimmedTo: 0, held: [] });
    core.step({ t: 'peeredByShell', p: placement(4, 'a'), groupHighest: 0 });
    core.step({ t: 'lease', epoch: 4, valid: true });
    assert.equal(core.r.phase, 'fenced');
    const [a] = of(core.step(write(1, 'acknowledged', 4)), 'answer');
    assert.equal(a?.ok === false ? a.code : 'ok', 'STALE_EPOCH');
  });

  it('a refused out-of-sync mark deposes the primary: the replicated write waiting for it fails and nothing more is acknowledged', () => {
    const core = shellPeered(0);
    const out = core.step(write(1, 'replicated', 3));
    stored(core, out);
    core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 3, seqs: [5], durable: true, applied: 5 } });
    const failed = core.step({ t: 'msg', from: 'c', msg: { t: 'nack', epoch: 3, seqs: [5], newer: 3 } });
    assert.deepEqual(of(failed, 'outOfSync'), [{ t: 'outOfSync', replica: 'c', floor: 5, epoch: 3 }]);
    assert.deepEqual(of(failed, 'answer'), [], 'c is still counted in sync until its mark commits');
    const refused = core.step({ t: 'markRefused', replica: 'c', epoch: 3 });
    assert.deepEqual(of(refused, 'answer').map((a) => (a.ok ? 'ok' : a.code)), ['STALE_EPOCH']);
    assert.equal(core.r.phase, 'fenced');
    const [again] = of(core.step(write(2, 'acknowledged', 3)), 'answer');
    assert.equal(again?.ok, false);
  });

  it('an older out-of-sync mark committing releases the writes it covers while a higher floor is still in flight', () => {
    const core = shellPeered(0);
    const first = core.step(write(1, 'replicated', 3));
    stored(core, first);
    core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 3, seqs: [5], durable: true, applied: 5 } });
    assert.deepEqual(of(core.step({ t: 'msg', from: 'c', msg: { t: 'nack', epoch: 3, seqs: [5], newer: 3 } }), 'outOfSync').map((m) => m.floor), [5]);
    const second = core.step(write(2, 'replicated', 3));
    stored(core, second);
    core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 3, seqs: [6], durable: true, applied: 6 } });
    assert.deepEqual(of(core.step({ t: 'msg', from: 'c', msg: { t: 'nack', epoch: 3, seqs: [6], newer: 3 } }), 'outOfSync').map((m) => m.floor), [6]);
    const one = of(core.step({ t: 'marked', replica: 'c', floor: 5 }), 'answer');
    assert.deepEqual(one.map((a) => a.req), [1], 'the mark at floor 5 covers write 1 (seq 5), not write 2 (seq 6)');
    const two = of(core.step({ t: 'marked', replica: 'c', floor: 6 }), 'answer');
    assert.deepEqual(two.map((a) => a.req), [2]);
  });

  it('a failed local store fails a durable write (never acknowledged) and does not hold back an acknowledged one', () => {
    const core = shellPeered(0);
    const durable = core.step(write(1, 'durable', 3));
    const [s] = of(durable, 'store');
    assert.ok(s !== undefined);
    const out = core.step({ t: 'storeFailed', token: s.token });
    assert.deepEqual(of(out, 'answer').map((a) => (a.ok ? 'ok' : a.code)), ['WRITE_CONCERN_UNMET']);
    const acked = core.step(write(2, 'acknowledged', 3));
    assert.deepEqual(of(acked, 'answer').map((a) => (a.ok ? 'ok' : a.code)), ['ok'], 'acknowledged answers at acceptance');
  });

  it('a new primary claims, pulls what a replica holds beyond it, fills a seq nobody holds with a noop and assigns above the group', () => {
    const core = new PgCore('a', { epoch: 1, applied: 2, trimmedTo: 0, held: [] });
    assert.deepEqual(of(core.step({ t: 'placement', p: placement(2, 'a') }), 'claim'), [{ t: 'claim', epoch: 2 }]);
    const peers = of(core.step({ t: 'claimed', epoch: 2 }), 'send');
    assert.deepEqual(peers.map((p) => [p.to, p.msg]), [['b', { t: 'peer', epoch: 2, fromSeq: 3 }], ['c', { t: 'peer', epoch: 2, fromSeq: 3 }]]);
    core.step({ t: 'msg', from: 'b', msg: { t: 'peerAnswer', epoch: 2, applied: 3, highest: 5, fill: { entries: [{ seq: 3, epoch: 1, block: 1, value: 'x' }, { seq: 5, epoch: 1, block: 2, value: 'y' }], full: null } } });
    const out = core.step({ t: 'msg', from: 'c', msg: { t: 'peerAnswer', epoch: 2, applied: 2, highest: 2, fill: { entries: [], full: null } } });
    const [store] = of(out, 'store');
    assert.deepEqual(store?.entries, [{ seq: 3, epoch: 1, block: 1, value: 'x' }, { seq: 4, epoch: 2, block: 0, value: null }, { seq: 5, epoch: 1, block: 2, value: 'y' }]);
    assert.equal(store?.sync, true);
    assert.equal(core.r.phase, 'peering', 'serves only once the pulled entries are durable');
    const after = stored(core, out);
    assert.equal(core.r.phase, 'active');
    assert.deepEqual(of(after, 'send').map((s) => [s.to, s.msg.t]), [['b', 'catchUp'], ['c', 'catchUp']]);
    core.step({ t: 'lease', epoch: 2, valid: true });
    const [w] = of(core.step(write(1, 'acknowledged', 2)), 'answer');
    assert.deepEqual(w, { t: 'answer', req: 1, ok: true, seq: 6, epoch: 2, concern: 'acknowledged', acks: new Map([['a', 'accepted'], ['b', 'pending'], ['c', 'pending']]) });
  });

  it('replicated waits for the local sync, one replica durable, and the third replica answering or marked out of sync', () => {
    const core = activePrimary();
    const out = core.step(write(1, 'replicated'));
    assert.deepEqual(of(out, 'answer'), []);
    assert.deepEqual(of(out, 'send').map((s) => s.to), ['b', 'c']);
    assert.deepEqual(of(stored(core, out), 'answer'), [], 'the primary alone is not enough');
    assert.deepEqual(of(core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 1, seqs: [1], durable: true, applied: 1 } }), 'answer'), [], 'c has not answered yet');
    for (let i = 0; i < 9; i++) core.step({ t: 'tick' }); // c never answers: three sends, then it failed the write
    const marks = of(core.step({ t: 'tick' }), 'outOfSync');
    assert.deepEqual(marks, [{ t: 'outOfSync', replica: 'c', floor: 1, epoch: 1 }]);
    const answers = of(core.step({ t: 'marked', replica: 'c', floor: 1 }), 'answer');
    assert.deepEqual(answers, [{ t: 'answer', req: 1, ok: true, seq: 1, epoch: 1, concern: 'replicated', acks: new Map([['a', 'durable'], ['b', 'durable'], ['c', 'failed']]) }]);
  });

  it('a primary that hears of a newer epoch is fenced: waiting writes fail STALE_EPOCH and nothing more is acknowledged', () => {
    const core = activePrimary();
    const out = core.step(write(1, 'durable'));
    const fenced = core.step({ t: 'msg', from: 'b', msg: { t: 'nack', epoch: 1, seqs: [1], newer: 2 } });
    assert.deepEqual(of(fenced, 'answer').map((a) => (a.ok ? 'ok' : a.code)), ['STALE_EPOCH']);
    assert.deepEqual(of(fenced, 'epoch'), [{ t: 'epoch', epoch: 2 }]);
    assert.deepEqual(of(stored(core, out), 'answer'), [], 'the local sync finishing later acknowledges nothing');
    const [again] = of(core.step(write(2, 'acknowledged')), 'answer');
    assert.equal(again?.ok === false ? again.code : 'ok', 'STALE_EPOCH');
  });

  it('answers NOT_PRIMARY on a replica and STALE_EPOCH for an older epoch', () => {
    const core = new PgCore('b', { epoch: 0, applied: 0, trimmedTo: 0, held: [] });
    core.step({ t: 'placement', p: placement(3, 'a') });
    const [np] = of(core.step(write(1, 'durable', 3)), 'answer');
    assert.equal(np?.ok === false ? np.code : 'ok', 'NOT_PRIMARY');
    const [st] = of(core.step(write(2, 'durable', 2)), 'answer');
    assert.equal(st?.ok === false ? st.code : 'ok', 'STALE_EPOCH');
  });

  it('a replica refuses a forward of an older epoch and names the newer one', () => {
    const core = new PgCore('b', { epoch: 0, applied: 0, trimmedTo: 0, held: [] });
    core.step({ t: 'placement', p: placement(3, 'a') });
    const out = core.step({ t: 'msg', from: 'a', msg: { t: 'forward', epoch: 2, entries: [{ seq: 1, epoch: 2, block: 1, value: 'x' }], sync: true, trimSeq: 0 } });
    assert.deepEqual(out, [{ t: 'send', to: 'a', msg: { t: 'nack', epoch: 2, seqs: [1], newer: 3 } }]);
  });

  it('a replica does not record an epoch above its placement before it read the placement again', () => {
    const core = new PgCore('b', { epoch: 1, applied: 4, trimmedTo: 0, held: [] });
    core.step({ t: 'placement', p: placement(1, 'a') });
    const out = core.step({ t: 'msg', from: 'a', msg: { t: 'peer', epoch: 3, fromSeq: 1 } });
    assert.deepEqual(out, [{ t: 'refreshPlacement' }]);
    assert.equal(core.r.epoch, 1);
    // The placement shows this node was added back at epoch 3: its old copy is handed back, not served.
    const back = core.step({ t: 'placement', p: placement(3, 'a', ['a', 'b', 'c'], { b: 3 }) });
    assert.deepEqual(back, [{ t: 'inventory' }]);
    assert.equal(core.r.epoch, 1, 'a stale copy records the epoch only after it dropped its copy');
  });

  it('hand-back: a block whose data is newer becomes a new write that keeps its data version; an older one is declined once the primary synced', () => {
    const core = activePrimary();
    const offers = [{ block: 1, value: 'old-newer', epoch: 1, seq: 9 }, { block: 2, value: 'stale', epoch: 1, seq: 3 }];
    // Block 1 is stored under a newer seq than the offer, but its data (handed back earlier) is older.
    const current = [{ block: 1, value: 'mine', epoch: 2, seq: 8, origin: { epoch: 1, seq: 2 } }, { block: 2, value: 'mine2', epoch: 1, seq: 4 }];
    const out = core.step({ t: 'handBackOffers', from: 'd', epoch: 1, offers, current });
    const stores = of(out, 'store');
    assert.deepEqual(stores[0]?.entries, [{ seq: 1, epoch: 1, block: 1, value: 'old-newer', origin: { epoch: 1, seq: 9 } }]);
    assert.deepEqual(stores[1]?.entries, [], 'the decline waits for a synced (empty) batch');
    assert.equal(stores[1]?.sync, true);
    assert.equal(of(out, 'send').some((s) => s.msg.t === 'handBackAck'), false);
    const declined = core.step({ t: 'stored', token: stores[1]?.token ?? -1 });
    assert.deepEqual(declined, [{ t: 'send', to: 'd', msg: { t: 'handBackAck', epoch: 1, blocks: [2] } }]);
  });

  it('hand-back by stored version (the bug, as a switch) declines data that is newer than what the primary holds', () => {
    const core = new PgCore('a', { epoch: 0, applied: 0, trimmedTo: 0, held: [] }, { handBackByStoredVersion: true });
    core.step({ t: 'placement', p: placement(1, 'a', ['a']) });
    stored(core, core.step({ t: 'claimed', epoch: 1 }));
    core.step({ t: 'lease', epoch: 1, valid: true });
    const out = core.step({ t: 'handBackOffers', from: 'd', epoch: 1, offers: [{ block: 1, value: 'x', epoch: 1, seq: 9 }], current: [{ block: 1, value: 'y', epoch: 2, seq: 8, origin: { epoch: 1, seq: 2 } }] });
    assert.deepEqual(of(out, 'store').map((s) => s.entries.length), [0], 'declined (the fixed core takes it, previous test)');
  });

  it('trims behind the slowest replica\'s durable watermark only', () => {
    const core = new PgCore('a', { epoch: 0, applied: 0, trimmedTo: 0, held: [] }, {}, { forwardRetryTicks: 3, forwardAttempts: 3, gapTicks: 3, resendTicks: 5, trimEveryEntries: 2, maxPendingWrites: 8 });
    core.step({ t: 'placement', p: placement(1, 'a', ['a', 'b']) });
    core.step({ t: 'claimed', epoch: 1 });
    stored(core, core.step({ t: 'msg', from: 'b', msg: { t: 'peerAnswer', epoch: 1, applied: 0, highest: 0, fill: { entries: [], full: null } } }));
    core.step({ t: 'lease', epoch: 1, valid: true });
    for (let i = 1; i <= 3; i++) stored(core, core.step(write(i, 'durable')));
    assert.deepEqual(of(core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 1, seqs: [1], durable: false, applied: 3 } }), 'trim'), [], 'a non-durable watermark does not count');
    assert.deepEqual(of(core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 1, seqs: [2], durable: true, applied: 2 } }), 'trim'), [{ t: 'trim', upto: 2 }]);
  });

  it('ticks ask a replica behind to catch up while no write waits for its answer or once it is out of sync, and re-send a mark not committed yet', () => {
    // The server's limits: forwards are retried by its transport, never by ticks.
    const core = new PgCore('a', { epoch: 3, applied: 4, trimmedTo: 0, held: [] }, {}, { ...defaultCoreLimits, forwardRetryTicks: Number.POSITIVE_INFINITY });
    core.step({ t: 'peeredByShell', p: placement(3, 'a'), groupHighest: 4 });
    core.step({ t: 'lease', epoch: 3, valid: true });
    const ticks = (n: number): PgAction[] => Array.from({ length: n }, () => core.step({ t: 'tick' })).flat();
    const every = defaultCoreLimits.resendTicks;
    assert.deepEqual(of(ticks(every), 'send').map((s) => [s.to, s.msg.t]), [['b', 'catchUp'], ['c', 'catchUp']], 'both are behind the primary\'s watermark 4');
    stored(core, core.step(write(1, 'replicated', 3))); // seq 5, waiting for b and c
    assert.deepEqual(of(ticks(4 * every), 'send'), [], 'a write waits for both: they catch up by answering it, and it is not forwarded again');
    core.step({ t: 'msg', from: 'b', msg: { t: 'ack', epoch: 3, seqs: [5], durable: true, applied: 5 } });
    const failed = core.step({ t: 'msg', from: 'c', msg: { t: 'nack', epoch: 3, seqs: [5], newer: 3 } });
    assert.deepEqual(of(failed, 'outOfSync'), [{ t: 'outOfSync', replica: 'c', floor: 5, epoch: 3 }]);
    const later = ticks(every);
    assert.deepEqual(of(later, 'send').map((s) => [s.to, s.msg.t]), [['c', 'catchUp']], 'b answered at 5; c failed the write and is behind');
    assert.deepEqual(of(later, 'outOfSync'), [{ t: 'outOfSync', replica: 'c', floor: 5, epoch: 3 }], 'the mark is asked again until the service takes it');
    core.step({ t: 'marked', replica: 'c', floor: 5 });
    stored(core, core.step(write(2, 'replicated', 3))); // seq 6, waiting for b and c
    const marked = ticks(every);
    assert.deepEqual(of(marked, 'outOfSync'), [], 'committed');
    assert.deepEqual(of(marked, 'send').map((s) => [s.to, s.msg.t]), [['c', 'catchUp']], 'c, out of sync, is asked whatever waits; b answers seq 6');
  });

  describe('the replica path as the shell drives it (replicaByShell, then msg forward)', () => {
    const fwd = (epoch: number, seqs: number[], sync = true, trimSeq = 0): PgEvent => ({
      t: 'msg', from: 'a', msg: { t: 'forward', epoch, entries: seqs.map((seq) => ({ seq, epoch, block: seq, value: `v${seq}` })), sync, trimSeq },
    });

    it('stores a forward with a token and acks only once the store reported it, with the mirror\'s watermark; a seq in flight is not stored twice', () => {
      const core = new PgCore('b', { epoch: 1, applied: 2, trimmedTo: 0, held: [] });
      assert.deepEqual(core.step({ t: 'replicaByShell', p: placement(3, 'a'), recorded: 3 }), [{ t: 'epoch', epoch: 3 }]);
      const out = core.step(fwd(3, [3, 4]));
      assert.deepEqual(of(out, 'send'), [], 'no ack before the store finished');
      const [st] = of(out, 'store');
      assert.deepEqual(st?.entries.map((e) => e.seq), [3, 4]);
      const dup = core.step(fwd(3, [4]));
      assert.deepEqual(of(dup, 'store')[0]?.entries, [], 'seq 4 is already being stored');
      assert.deepEqual(of(stored(core, out), 'send'), [{ t: 'send', to: 'a', msg: { t: 'ack', epoch: 3, seqs: [3, 4], durable: true, applied: 4 } }]);
      assert.deepEqual(of(stored(core, dup), 'send').map((a) => a.msg.t), ['ack']);
    });

    it('refuses a forward of an epoch older than the recorded one, naming the newer (the shell maps it to STALE_EPOCH)', () => {
      const core = new PgCore('b', { epoch: 2, applied: 0, trimmedTo: 0, held: [] });
      core.step({ t: 'replicaByShell', p: placement(3, 'a'), recorded: 4 });
      assert.deepEqual(core.step(fwd(3, [1])), [{ t: 'send', to: 'a', msg: { t: 'nack', epoch: 3, seqs: [1], newer: 4 } }]);
      assert.equal(core.r.applied, 0);
    });

    it('a primary of an older placement that becomes a replica fails what waits STALE_EPOCH and then stores the new primary\'s forwards', () => {
      const core = new PgCore('b', { epoch: 1, applied: 0, trimmedTo: 0, held: [] });
      core.step({ t: 'peeredByShell', p: placement(1, 'b'), groupHighest: 0 });
      core.step({ t: 'lease', epoch: 1, valid: true });
      core.step({ t: 'write', req: 1, block: 1, value: 'x', concern: 'replicated', epoch: 1 });
      const left = core.step({ t: 'replicaByShell', p: placement(2, 'a'), recorded: 2 });
      assert.deepEqual(of(left, 'answer').map((a) => (a.ok ? 'ok' : a.code)), ['STALE_EPOCH']);
      assert.equal(core.r.role, 'replica');
      assert.deepEqual(of(core.step(fwd(2, [2])), 'store')[0]?.entries.map((e) => e.seq), [2]);
      const [refused] = of(core.step({ t: 'write', req: 2, block: 1, value: 'y', concern: 'acknowledged', epoch: 2 }), 'answer');
      assert.equal(refused?.ok === false ? refused.code : 'ok', 'NOT_PRIMARY');
    });

    it('a placement naming this node primary (a deposed primary\'s late forward) only raises the epoch: the forward is refused', () => {
      const core = new PgCore('b', { epoch: 1, applied: 0, trimmedTo: 0, held: [] });
      assert.deepEqual(core.step({ t: 'replicaByShell', p: placement(2, 'b'), recorded: 2 }), [{ t: 'epoch', epoch: 2 }]);
      assert.equal(core.r.role, 'none');
      assert.deepEqual(of(core.step(fwd(1, [1])), 'send').map((a) => a.msg), [{ t: 'nack', epoch: 1, seqs: [1], newer: 2 }]);
    });

    it('a catch-up request at the current epoch pulls from the watermark on; one at an older epoch pulls nothing', () => {
      const core = new PgCore('b', { epoch: 1, applied: 5, trimmedTo: 0, held: [] });
      core.step({ t: 'replicaByShell', p: placement(2, 'a'), recorded: 2 });
      assert.deepEqual(core.step({ t: 'msg', from: 'a', msg: { t: 'catchUp', epoch: 2 } }), [{ t: 'send', to: 'a', msg: { t: 'pull', epoch: 2, fromSeq: 6 } }]);
      assert.deepEqual(core.step({ t: 'msg', from: 'a', msg: { t: 'catchUp', epoch: 1 } }), []);
    });

    it('trims behind the primary\'s allowance, never past its own watermark', () => {
      const core = new PgCore('b', { epoch: 1, applied: 0, trimmedTo: 0, held: [] }, {}, { ...defaultCoreLimits, trimEveryEntries: 2 });
      core.step({ t: 'replicaByShell', p: placement(1, 'a'), recorded: 1 });
      assert.deepEqual(of(core.step(fwd(1, [1, 2, 4], true, 9)), 'trim'), [{ t: 'trim', upto: 2 }]);
    });

    it('a record rebuilt with the seqs an earlier one assigned (lastAssigned) assigns above them', () => {
      const core = new PgCore('a', { epoch: 3, applied: 1, trimmedTo: 0, held: [], lastAssigned: 9 });
      core.step({ t: 'peeredByShell', p: placement(3, 'a'), groupHighest: 1 });
      core.step({ t: 'lease', epoch: 3, valid: true });
      assert.equal(of(core.step({ t: 'write', req: 1, block: 1, value: 'x', concern: 'acknowledged', epoch: 3 }), 'store')[0]?.entries[0]?.seq, 10);
    });
  });

  describe('catch-up and full resync as the shell drives them (replicaByShell, then msg journal)', () => {
    const journal = (epoch: number, seqs: number[], full: { applied: number } | null = null): PgEvent => ({
      t: 'msg', from: 'a', msg: { t: 'journal', epoch, fill: { entries: seqs.map((seq) => ({ seq, epoch, block: seq, value: `v${seq}` })), full: full === null ? null : { blocks: [], applied: full.applied } } },
    });

    it('a fetched batch stores, synced, only the entries above the watermark and not held; the ack after `stored` carries the watermark', () => {
      const core = new PgCore('b', { epoch: 2, applied: 2, trimmedTo: 0, held: [5] });
      core.step({ t: 'replicaByShell', p: placement(2, 'a'), recorded: 2 });
      const out = core.step(journal(2, [2, 3, 4, 5, 6]));
      const [st] = of(out, 'store');
      assert.deepEqual([st?.entries.map((e) => e.seq), st?.sync, st?.full], [[3, 4, 6], true, null]);
      assert.equal(core.r.applied, 6);
      assert.deepEqual(of(stored(core, out), 'send').map((a) => a.msg), [{ t: 'ack', epoch: 2, seqs: [], durable: true, applied: 6 }]);
    });

    it('a batch or a full copy at an epoch older than the record\'s stores nothing (the shell fails the catch-up STALE_EPOCH)', () => {
      const core = new PgCore('b', { epoch: 2, applied: 0, trimmedTo: 0, held: [] });
      core.step({ t: 'replicaByShell', p: placement(3, 'c'), recorded: 3 });
      assert.deepEqual(core.step(journal(2, [1, 2])), []);
      assert.deepEqual(core.step(journal(2, [], { applied: 9 })), []);
      assert.deepEqual([core.r.applied, core.r.trimmedTo], [0, 0]);
    });

    it('a full copy moves the watermark only when it is ahead, keeping the seqs held above it', () => {
      const core = new PgCore('b', { epoch: 2, applied: 1, trimmedTo: 0, held: [] });
      core.step({ t: 'replicaByShell', p: placement(2, 'a'), recorded: 2 });
      core.step({ t: 'restored', epoch: 2, applied: 1, held: [8], trimmedTo: 0 });
      const [st] = of(core.step(journal(2, [], { applied: 6 })), 'store');
      assert.deepEqual(st?.full, { blocks: [], applied: 6 });
      assert.deepEqual([core.r.applied, core.r.trimmedTo, [...core.r.held]], [6, 6, [8]]);
      const [behind] = of(core.step(journal(2, [], { applied: 4 })), 'store');
      assert.equal(behind?.full, null, 'a copy behind the watermark moves nothing');
      // A seq a copy's repair raised the store's highest seq to is not held: the journal brings it.
      const [seven] = of(core.step(journal(2, [7])), 'store');
      assert.deepEqual(seven?.entries.map((e) => e.seq), [7]);
      assert.equal(core.r.applied, 8);
    });
  });

  describe('the new primary\'s peering as the shell drives it (peeringPulled, peeringNoop, then peeredByShell)', () => {
    const pulled = (epoch: number, recorded: number, seqs: number[], full: { applied: number } | null = null): PgEvent => ({
      t: 'peeringPulled', epoch, recorded, fill: { entries: seqs.map((seq) => ({ seq, epoch: 1, block: seq, value: `v${seq}` })), full: full === null ? null : { blocks: [], applied: full.applied } },
    });

    it('a pulled batch stores, synced, only the entries above the watermark and not held; the mirror follows and the first seq goes above it with no restore', () => {
      const core = new PgCore('a', { epoch: 1, applied: 1, trimmedTo: 0, held: [4] });
      const out = core.step(pulled(2, 1, [1, 2, 3, 4, 5]));
      const [st] = of(out, 'store');
      assert.deepEqual([st?.entries.map((e) => e.seq), st?.entries.map((e) => e.epoch), st?.sync, st?.full], [[2, 3, 5], [1, 1, 1], true, null]);
      assert.deepEqual([core.r.applied, [...core.r.held]], [5, []]);
      assert.deepEqual(stored(core, out), [], 'a peering pull answers nobody');
      assert.equal(core.r.role, 'none', 'the role waits for the end of peering');
      core.step({ t: 'peeredByShell', p: placement(2, 'a'), groupHighest: 5, recorded: 2 });
      core.step({ t: 'lease', epoch: 2, valid: true });
      assert.equal(of(core.step(write(1, 'acknowledged', 2)), 'store')[0]?.entries[0]?.seq, 6);
    });

    it('the noop the plan asks for is a synced noop entry at the peering\'s epoch; a held seq gets none', () => {
      const core = new PgCore('a', { epoch: 2, applied: 3, trimmedTo: 0, held: [5] });
      const [st] = of(core.step({ t: 'peeringNoop', epoch: 2, recorded: 2, seq: 4 }), 'store');
      assert.deepEqual([st?.entries, st?.sync], [[{ seq: 4, epoch: 2, block: 0, value: null }], true]);
      assert.equal(core.r.applied, 5);
      assert.deepEqual(of(core.step({ t: 'peeringNoop', epoch: 2, recorded: 2, seq: 5 }), 'store')[0]?.entries, []);
    });

    it('a full copy moves the watermark only when it is ahead; entries at or below it are not stored', () => {
      const core = new PgCore('a', { epoch: 1, applied: 1, trimmedTo: 0, held: [9] });
      const [st] = of(core.step(pulled(2, 1, [5, 6, 7], { applied: 6 })), 'store');
      assert.deepEqual([st?.full?.applied, st?.entries.map((e) => e.seq)], [6, [7]]);
      assert.deepEqual([core.r.applied, core.r.trimmedTo, [...core.r.held]], [7, 6, [9]]);
      assert.equal(of(core.step(pulled(2, 1, [], { applied: 4 })), 'store')[0]?.full, null, 'a copy behind the watermark moves nothing');
    });

    it('once the store holds a newer epoch (a newer primary peered this node) a pull or noop stores nothing, and a primary of an older epoch is fenced', () => {
      const core = shellPeered(0);
      core.step(write(1, 'durable', 3));
      const out = core.step(pulled(4, 5, [5, 6]));
      assert.deepEqual(of(out, 'store'), []);
      assert.deepEqual(of(out, 'epoch'), [{ t: 'epoch', epoch: 5 }]);
      assert.deepEqual(of(out, 'answer').map((a) => (a.ok ? 'ok' : a.code)), ['STALE_EPOCH']);
      assert.deepEqual(core.step({ t: 'peeringNoop', epoch: 4, recorded: 5, seq: 6 }), []);
      assert.deepEqual([core.r.applied, [...core.r.held]], [5, []], 'only the primary\'s own write (seq 5) is mirrored');
    });

    it('the first pull fences a primary of an older epoch on the record (its waiting writes fail) before the pulled seqs are mirrored', () => {
      const core = shellPeered(0);
      core.step(write(1, 'durable', 3));
      const out = core.step(pulled(4, 3, [6, 7]));
      assert.deepEqual(out.filter((a) => a.t !== 'store' && a.t !== 'answer'), [{ t: 'epoch', epoch: 4 }]);
      assert.deepEqual(of(out, 'answer').map((a) => (a.ok ? 'ok' : a.code)), ['STALE_EPOCH']);
      assert.deepEqual([core.r.phase, of(out, 'store')[0]?.entries.map((e) => e.seq)], ['fenced', [6, 7]]);
      const [refused] = of(core.step(write(2, 'acknowledged', 3)), 'answer');
      assert.equal(refused?.ok === false ? refused.code : 'ok', 'STALE_EPOCH');
    });

    it('peeredByShell with a newer epoch in the store is deposed at once', () => {
      const core = new PgCore('a', { epoch: 2, applied: 0, trimmedTo: 0, held: [] });
      core.step({ t: 'peeredByShell', p: placement(2, 'a'), groupHighest: 0, recorded: 3 });
      assert.deepEqual([core.r.phase, core.r.epoch], ['fenced', 3]);
    });
  });
});
