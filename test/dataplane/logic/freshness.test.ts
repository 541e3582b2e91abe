/**
 * The rollback judgement of encrypted reads (dataplane/logic/freshness.ts): the named cases of
 * dataplane/client/README.md "Rollback" (a primary serving an older generation or a deleted
 * block's body is caught; the honest races of replication — a replica behind, a delete or write
 * not yet everywhere — are not), then every pair of replica answers over a small domain against
 * the definition, and that an unanswering replica never changes a verdict.
 */
import assert from 'node:assert/strict';
import { compareGenerations, judgeNotFound, judgeServedBody, judgeWitnesses, warnDue } from '../../../dataplane/logic/freshness.js';
import type { AbsenceVerdict, BodyGeneration, FreshnessVerdict, NotFoundClaim, ReplicaHead, ServedBody } from '../../../dataplane/logic/freshness.js';

const g = (writerId: number, counter: number): BodyGeneration => ({ writerId, counter });
const served: ServedBody = { gen: g(3, 7), seq: 10 };

describe('freshness: judgeServedBody', () => {
  it('orders generations by writer id, then counter', () => {
    assert.ok(compareGenerations(g(2, 100), g(3, 0)) < 0);
    assert.ok(compareGenerations(g(3, 8), g(3, 7)) > 0);
    assert.equal(compareGenerations(g(3, 7), g(3, 7)), 0);
  });

  it('a replica holding another write ordered after the served one is a claim to verify; the latest by seq is named', () => {
    const v = judgeServedBody(served, [
      { node: 'b', kind: 'block', gen: g(4, 0), seq: 11, appliedSeq: 11 },
      { node: 'c', kind: 'block', gen: g(3, 9), seq: 12, appliedSeq: 12 },
    ]);
    assert.deepEqual(v, { kind: 'other-write', node: 'c', gen: g(3, 9), seq: 12 });
    // Two writers (ReadWriteMany): a later write by seq may carry an older generation.
    assert.deepEqual(judgeServedBody(served, [{ node: 'b', kind: 'block', gen: g(2, 9), seq: 12, appliedSeq: 12 }]).kind, 'other-write');
    // The primary claims the replica's seq for an older body: one seq is one write.
    assert.deepEqual(judgeServedBody(served, [{ node: 'b', kind: 'block', gen: g(3, 6), seq: 10, appliedSeq: 10 }]).kind, 'other-write');
    // The primary claims a seq the replica has passed, which it holds no such write at.
    assert.deepEqual(judgeServedBody(served, [{ node: 'b', kind: 'block', gen: g(3, 6), seq: 8, appliedSeq: 10 }]).kind, 'other-write');
  });

  it('a delete ordered after the served body is caught by its seq or by the replica\'s watermark; so is an absence past the watermark', () => {
    assert.deepEqual(judgeServedBody(served, [{ node: 'b', kind: 'deleted', seq: 11, appliedSeq: 11 }]), { kind: 'deleted-after', node: 'b', seq: 11 });
    assert.deepEqual(judgeServedBody(served, [{ node: 'b', kind: 'deleted', seq: 4, appliedSeq: 10 }]), { kind: 'deleted-after', node: 'b', seq: 4 });
    assert.deepEqual(judgeServedBody(served, [{ node: 'b', kind: 'absent', appliedSeq: 10 }]), { kind: 'deleted-after', node: 'b', seq: null });
    // A contradicting write is named before a contradicting delete.
    assert.equal(judgeServedBody(served, [{ node: 'b', kind: 'deleted', seq: 11, appliedSeq: 11 }, { node: 'c', kind: 'block', gen: g(3, 8), seq: 12, appliedSeq: 12 }]).kind, 'other-write');
  });

  it('the honest races are fresh: replicas behind, a first write or a rewrite after a delete not yet everywhere, the same write', () => {
    const honest: ReplicaHead[][] = [
      [{ node: 'b', kind: 'absent', appliedSeq: 9 }],
      [{ node: 'b', kind: 'deleted', seq: 4, appliedSeq: 9 }],
      [{ node: 'b', kind: 'block', gen: g(3, 6), seq: 8, appliedSeq: 9 }],
      // Another writer's earlier write with a higher writer id (ReadWriteMany), not yet overwritten here.
      [{ node: 'b', kind: 'block', gen: g(4, 0), seq: 8, appliedSeq: 9 }],
      [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 10, appliedSeq: 10 }],
      [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 10, appliedSeq: 30 }],
      [{ node: 'b', kind: 'unknown' }, { node: 'c', kind: 'unknown' }],
      [],
    ];
    for (const heads of honest) assert.deepEqual(judgeServedBody(served, heads), { kind: 'fresh' }, JSON.stringify(heads));
  });

  it('every pair of answers over a small domain agrees with the definition; an unknown answer never changes the verdict', () => {
    const domain: ReplicaHead[] = [{ node: '?', kind: 'unknown' }, { node: '?', kind: 'absent', appliedSeq: 5 }, { node: '?', kind: 'absent', appliedSeq: 15 }];
    for (const gen of [g(2, 9), g(3, 6), g(3, 7), g(3, 8), g(4, 0)]) for (const [seq, appliedSeq] of [[8, 9], [8, 10], [10, 10], [12, 12]] as const) domain.push({ node: '?', kind: 'block', gen, seq, appliedSeq });
    for (const seq of [4, 11]) for (const appliedSeq of [9, 10, 12]) domain.push({ node: '?', kind: 'deleted', seq, appliedSeq });
    const definition = (heads: ReplicaHead[]): FreshnessVerdict => {
      const later = (seq: number, appliedSeq: number): boolean => seq >= served.seq || appliedSeq >= served.seq;
      const writes = heads.filter((h): h is Extract<ReplicaHead, { kind: 'block' }> => h.kind === 'block' && compareGenerations(h.gen, served.gen) !== 0 && later(h.seq, h.appliedSeq))
        .sort((x, y) => y.seq - x.seq || x.node.localeCompare(y.node));
      if (writes[0] !== undefined) return { kind: 'other-write', node: writes[0].node, gen: writes[0].gen, seq: writes[0].seq };
      const gone = heads.find((h) => (h.kind === 'deleted' && (h.seq > served.seq || h.appliedSeq >= served.seq)) || (h.kind === 'absent' && h.appliedSeq >= served.seq));
      if (gone === undefined) return { kind: 'fresh' };
      return { kind: 'deleted-after', node: gone.node, seq: gone.kind === 'deleted' ? gone.seq : null };
    };
    let checked = 0;
    for (const x of domain) {
      for (const y of domain) {
        const heads = [{ ...x, node: 'b' }, { ...y, node: 'c' }];
        const v = judgeServedBody(served, heads);
        assert.deepEqual(v, definition(heads), JSON.stringify(heads));
        assert.deepEqual(judgeServedBody(served, [...heads, { node: 'd', kind: 'unknown' }]), v);
        checked++;
      }
    }
    assert.equal(checked, domain.length ** 2);
  });
});

describe('freshness: judgeNotFound (a primary answering BLOCK_NOT_FOUND)', () => {
  const never: NotFoundClaim = { deletedSeq: null, appliedSeq: 20 };
  const deletedAt12: NotFoundClaim = { deletedSeq: 12, appliedSeq: 20 };

  it('hiding: a live block on an in-sync replica where the primary has no entry is a write to verify; passed when its watermark says it applied it', () => {
    assert.deepEqual(judgeNotFound(never, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 10, appliedSeq: 20 }]),
      { kind: 'hidden-write', node: 'b', gen: g(3, 7), seq: 10, passed: true });
    // Above the primary's watermark (or no watermark given): still a contradiction, which only the retry rounds clear.
    assert.deepEqual(judgeNotFound(never, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 21, appliedSeq: 21 }]),
      { kind: 'hidden-write', node: 'b', gen: g(3, 7), seq: 21, passed: false });
    assert.equal(judgeNotFound({ deletedSeq: null, appliedSeq: null }, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 1, appliedSeq: 1 }]).kind, 'hidden-write');
    // The latest write by seq is named.
    const v = judgeNotFound(never, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 10, appliedSeq: 20 }, { node: 'c', kind: 'block', gen: g(3, 9), seq: 15, appliedSeq: 20 }]);
    assert.deepEqual(v, { kind: 'hidden-write', node: 'c', gen: g(3, 9), seq: 15, passed: true });
  });

  it('a forged tombstone: at the seq of a replica\'s write, before it, or at a seq the replica passed without deleting', () => {
    assert.equal(judgeNotFound(deletedAt12, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 12, appliedSeq: 12 }]).kind, 'hidden-write');
    assert.equal(judgeNotFound(deletedAt12, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 14, appliedSeq: 14 }]).kind, 'hidden-write');
    assert.equal(judgeNotFound(deletedAt12, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 10, appliedSeq: 12 }]).kind, 'hidden-write');
  });

  it('the honest races are absent: a delete not yet on the replica, a delete everywhere, never written, an unanswering replica', () => {
    const honest: [NotFoundClaim, ReplicaHead[]][] = [
      // The primary has the tombstone at 12; the replica still holds the write at 10 and has not reached 12.
      [deletedAt12, [{ node: 'b', kind: 'block', gen: g(3, 7), seq: 10, appliedSeq: 11 }]],
      [deletedAt12, [{ node: 'b', kind: 'deleted', seq: 12, appliedSeq: 12 }]],
      [deletedAt12, [{ node: 'b', kind: 'absent', appliedSeq: 30 }]],
      [never, [{ node: 'b', kind: 'absent', appliedSeq: 30 }, { node: 'c', kind: 'deleted', seq: 4, appliedSeq: 30 }]],
      [never, [{ node: 'b', kind: 'unknown' }]],
      [never, []],
    ];
    for (const [claim, heads] of honest) assert.deepEqual(judgeNotFound(claim, heads), { kind: 'absent' }, JSON.stringify({ claim, heads }));
  });

  it('every pair of answers over a small domain agrees with the definition; an unknown answer never changes the verdict', () => {
    const claims: NotFoundClaim[] = [{ deletedSeq: null, appliedSeq: null }, { deletedSeq: null, appliedSeq: 10 }, { deletedSeq: 10, appliedSeq: 10 }, { deletedSeq: 10, appliedSeq: 12 }];
    const domain: ReplicaHead[] = [{ node: '?', kind: 'unknown' }, { node: '?', kind: 'absent', appliedSeq: 9 }, { node: '?', kind: 'absent', appliedSeq: 12 }];
    for (const seq of [8, 10, 12]) for (const appliedSeq of [9, 10, 12]) if (appliedSeq >= seq) domain.push({ node: '?', kind: 'block', gen: g(3, seq), seq, appliedSeq }, { node: '?', kind: 'deleted', seq, appliedSeq });
    const definition = (claim: NotFoundClaim, heads: ReplicaHead[]): AbsenceVerdict => {
      const d = claim.deletedSeq;
      const writes = heads.filter((h): h is Extract<ReplicaHead, { kind: 'block' }> => h.kind === 'block' && (d === null || h.seq >= d || h.appliedSeq >= d))
        .sort((x, y) => y.seq - x.seq || x.node.localeCompare(y.node));
      const w = writes[0];
      return w === undefined ? { kind: 'absent' } : { kind: 'hidden-write', node: w.node, gen: w.gen, seq: w.seq, passed: claim.appliedSeq !== null && claim.appliedSeq >= w.seq };
    };
    let checked = 0;
    for (const claim of claims) {
      for (const x of domain) {
        for (const y of domain) {
          const heads = [{ ...x, node: 'b' }, { ...y, node: 'c' }];
          const v = judgeNotFound(claim, heads);
          assert.deepEqual(v, definition(claim, heads), JSON.stringify({ claim, heads }));
          assert.deepEqual(judgeNotFound(claim, [...heads, { node: 'd', kind: 'unknown' }]), v);
          checked++;
        }
      }
    }
    assert.equal(checked, claims.length * domain.length ** 2);
  });
});

describe('freshness: a read with no witness', () => {
  const heads: ReplicaHead[] = [
    { node: 'b', kind: 'unknown' },
    { node: 'c', kind: 'absent', appliedSeq: 3 },
    { node: 'd', kind: 'deleted', seq: 2, appliedSeq: 3 },
    { node: 'e', kind: 'block', gen: g(1, 1), seq: 3, appliedSeq: 3 },
  ];

  it('any answering replica is a witness, whatever it holds; only unknowns (or none) leave a read unchecked', () => {
    for (const mode of ['strict', 'best-effort'] as const) {
      for (const h of heads.slice(1)) assert.deepEqual(judgeWitnesses(mode, [{ node: 'b', kind: 'unknown' }, h]), { kind: 'checked', witnesses: 1 }, `${mode} ${h.kind}`);
      assert.deepEqual(judgeWitnesses(mode, heads), { kind: 'checked', witnesses: 3 });
    }
    for (const none of [[], [heads[0]], [heads[0], { node: 'c', kind: 'unknown' }]] as ReplicaHead[][]) {
      assert.deepEqual(judgeWitnesses('best-effort', none), { kind: 'unchecked', action: 'serve', why: 'none-answered' }, JSON.stringify(none));
      assert.deepEqual(judgeWitnesses('strict', none), { kind: 'unchecked', action: 'refuse', why: 'none-answered' }, JSON.stringify(none));
      assert.deepEqual(judgeWitnesses('strict', none, 3, false), { kind: 'unchecked', action: 'refuse', why: 'none-answered' }, 'nobody answered: no round can change that');
    }
  });

  it('a witness has reached the served seq: by its watermark or an entry at or past it; below it, ask again, then unchecked', () => {
    // A primary's old body stamped with a seq no replica has reached (5): every replica is behind it.
    for (const mode of ['strict', 'best-effort'] as const) {
      assert.deepEqual(judgeWitnesses(mode, heads, 5, false), { kind: 'behind' });
      assert.deepEqual(judgeWitnesses(mode, heads, 5, true), { kind: 'unchecked', action: mode === 'strict' ? 'refuse' : 'serve', why: 'none-reached' });
      assert.deepEqual(judgeWitnesses(mode, heads, 3, false), { kind: 'checked', witnesses: 3 }, 'every watermark at 3');
      assert.deepEqual(judgeWitnesses(mode, heads, null, false), { kind: 'checked', witnesses: 3 }, 'no seq to reach');
    }
    const laggingButHolding: ReplicaHead[] = [{ node: 'e', kind: 'block', gen: g(1, 2), seq: 7, appliedSeq: 4 }, { node: 'c', kind: 'absent', appliedSeq: 4 }];
    assert.deepEqual(judgeWitnesses('strict', laggingButHolding, 7, false), { kind: 'checked', witnesses: 1 }, 'an entry at the served seq vouches though a hole keeps the watermark below');
    assert.deepEqual(judgeWitnesses('strict', [{ node: 'd', kind: 'deleted', seq: 6, appliedSeq: 4 }], 6, false), { kind: 'checked', witnesses: 1 }, 'a tombstone at the served seq vouches for a not-found');
  });

  it('one warning per interval: the first, then none until the interval has passed (a clock that went back warns again)', () => {
    assert.equal(warnDue(undefined, 5, 60_000), true);
    assert.equal(warnDue(1_000, 1_000, 60_000), false);
    assert.equal(warnDue(1_000, 60_999, 60_000), false);
    assert.equal(warnDue(1_000, 61_000, 60_000), true);
    assert.equal(warnDue(1_000, 999, 60_000), true);
  });
});
