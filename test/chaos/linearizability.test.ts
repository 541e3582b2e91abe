import { strict as assert } from 'node:assert';
import { checkHistory, formatViolation, registerModel } from '../../chaos/linearizability/index.js';
import { corruptObservably, generate, prng, read, write, type Op } from './lib/histories.js';

function check(history: Op[], maxStepsPerKey?: number) {
  return checkHistory(registerModel, history, maxStepsPerKey === undefined ? {} : { maxStepsPerKey });
}

describe('linearizability checker (register model)', () => {
  describe('accepts linearizable histories', () => {
    it('a sequential history', () => {
      const res = check([write(1, 'a', 0, 10), read(2, 'a', 20, 30), write(1, 'b', 40, 50), read(2, 'b', 60, 70)]);
      assert.equal(res.verdict, 'linearizable');
    });

    it('a read overlapping a write may see the old or the new value', () => {
      const base = [write(1, 'a', 0, 10), write(1, 'b', 20, 100)];
      assert.equal(check([...base, read(2, 'a', 30, 40)]).verdict, 'linearizable');
      assert.equal(check([...base, read(2, 'b', 30, 40)]).verdict, 'linearizable');
      // Both orders inside the overlap, as long as nothing goes back after seeing the new value.
      assert.equal(check([...base, read(2, 'a', 30, 40), read(3, 'b', 50, 60)]).verdict, 'linearizable');
    });

    it('concurrent writes may land in either order', () => {
      const writes = [write(1, 'a', 0, 50), write(2, 'b', 10, 60)];
      assert.equal(check([...writes, read(3, 'a', 70, 80)]).verdict, 'linearizable');
      assert.equal(check([...writes, read(3, 'b', 70, 80)]).verdict, 'linearizable');
    });

    it('an unknown-outcome write may take effect long after its call, or never', () => {
      const pending = write(1, 'p', 10);
      assert.equal(check([write(1, 'a', 0, 5), pending, read(2, 'a', 100, 110), read(2, 'p', 200, 210), read(3, 'p', 300, 310)]).verdict, 'linearizable');
      assert.equal(check([write(1, 'a', 0, 5), pending, read(2, 'a', 100, 110), read(3, 'a', 300, 310)]).verdict, 'linearizable');
    });

    it('a read of the initial state before any write, and an unreturned read, are fine', () => {
      const unreturned: Op = { clientId: 3, key: 'x', input: { op: 'read' }, outcome: 'unknown', callAt: 0 };
      assert.equal(check([read(1, null, 0, 5), write(2, 'a', 10, 20), unreturned, read(1, 'a', 30, 40)]).verdict, 'linearizable');
    });

    it('create, delete and cas follow the register semantics', () => {
      const ops: Op[] = [
        { clientId: 1, key: 'vol', input: { op: 'create', value: 'c1' }, output: { ok: true }, outcome: 'ok', callAt: 0, returnAt: 10 },
        { clientId: 2, key: 'vol', input: { op: 'create', value: 'c2' }, output: { ok: false }, outcome: 'ok', callAt: 20, returnAt: 30 },
        { clientId: 2, key: 'vol', input: { op: 'cas', expected: 'c1', value: 'c3' }, output: { ok: true }, outcome: 'ok', callAt: 40, returnAt: 50 },
        { clientId: 1, key: 'vol', input: { op: 'delete' }, output: { ok: true }, outcome: 'ok', callAt: 60, returnAt: 70 },
        read(3, null, 80, 90, 'vol'),
        { clientId: 1, key: 'vol', input: { op: 'delete' }, output: { ok: false }, outcome: 'ok', callAt: 100, returnAt: 110 },
      ];
      assert.equal(check(ops).verdict, 'linearizable');
    });

    it('definitely failed operations are ignored', () => {
      const failed: Op = { clientId: 1, key: 'x', input: { op: 'write', value: 'never' }, outcome: 'failed', callAt: 0, returnAt: 5 };
      assert.equal(check([failed, read(2, null, 10, 20)]).verdict, 'linearizable');
    });
  });

  describe('rejects non-linearizable histories', () => {
    it('a stale read after a completed write, with the write and the read as witness', () => {
      const res = check([write(1, 'a', 0, 10), write(1, 'b', 20, 30), read(2, null, 0, 5, 'other'), read(2, 'a', 40, 50)]);
      assert.equal(res.verdict, 'violation');
      assert.equal(res.violations.length, 1);
      const v = res.violations[0]!;
      assert.equal(v.key, 'x');
      const witness = v.witness!.operations.map((op) => registerModel.describe(op.input, op.output));
      assert.deepEqual(witness, ['write("a")', 'write("b")', 'read() → "a"']);
      assert.equal(registerModel.describe(v.witness!.blocked.input, v.witness!.blocked.output), 'read() → "a"');
      assert.match(formatViolation(v), /key x: not linearizable; 3 operations/);
    });

    it('two reads seeing two values in opposite orders', () => {
      // w(a) and w(b) overlap, so either order is fine, but once one reader has seen b then a,
      // another must not see a then b.
      const res = check([
        write(1, 'a', 0, 100), write(2, 'b', 0, 100),
        read(3, 'b', 10, 20), read(3, 'a', 30, 40),
        read(4, 'a', 10, 20), read(4, 'b', 30, 40),
      ]);
      assert.equal(res.verdict, 'violation');
    });

    it('a read going back in time after another read saw the new value', () => {
      const res = check([write(1, 'a', 0, 10), write(1, 'b', 20, 200), read(2, 'b', 30, 40), read(3, 'a', 50, 60)]);
      assert.equal(res.verdict, 'violation');
    });

    it('a read of a value never written', () => {
      const res = check([write(1, 'a', 0, 10), read(2, 'z', 5, 20)]);
      assert.equal(res.verdict, 'violation');
      assert.deepEqual(res.violations[0]!.witness!.operations.map((op) => op.input.op), ['read']);
    });

    it('a stale read found behind unobserved lost writes, with the blocked read named', () => {
      // The unknown writes are dropped before the search; the witness must still point at the
      // operations of the history itself.
      const res = check([write(1, 'lost1', 0), write(2, 'lost2', 1), write(3, 'a', 2, 10), write(3, 'b', 20, 30), read(4, 'a', 40, 50)]);
      assert.equal(res.verdict, 'violation');
      const w = res.violations[0]!.witness!;
      assert.equal(w.blocked.input.op, 'read');
      assert.deepEqual(w.operations.map((op) => registerModel.describe(op.input, op.output)), ['write("a")', 'write("b")', 'read() → "a"']);
    });

    it('a lost acknowledged write (final read sees the value before it)', () => {
      const res = check([write(1, 'a', 0, 10), write(2, 'b', 20, 30), read(3, 'a', 1000, 1010)]);
      assert.equal(res.verdict, 'violation');
    });

    it('a delete that reports success on an absent key', () => {
      const res = check([{ clientId: 1, key: 'v', input: { op: 'delete' }, output: { ok: true }, outcome: 'ok', callAt: 0, returnAt: 10 }]);
      assert.equal(res.verdict, 'violation');
    });
  });

  it('answers unknown, not yes or no, when the step budget runs out', () => {
    const gen = generate(7, 400, 1, 400);
    const res = check(gen.history, 10);
    assert.equal(res.verdict, 'unknown');
    assert.deepEqual(res.unknownKeys, ['k0']);
  });

  describe('randomized', () => {
    it('accepts every history of a simulated sequential execution with overlapping intervals (200 seeds)', () => {
      for (let seed = 1; seed <= 200; seed++) {
        const gen = generate(seed, 300, 3, 60);
        const res = check(gen.history);
        assert.equal(res.verdict, 'linearizable', `seed ${seed}`);
      }
    });

    it('rejects the same histories with one read observably corrupted (200 seeds)', () => {
      let corrupted = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const gen = generate(seed, 300, 3, 60);
        const bad = corruptObservably(gen, prng(seed * 7919));
        if (bad === null) continue;
        corrupted++;
        const res = check(bad.history);
        assert.equal(res.verdict, 'violation', `seed ${seed}`);
        const witness = res.violations[0]!.witness!;
        assert.ok(witness.operations.includes(bad.history[bad.index]!), `seed ${seed}: witness must include the corrupted read`);
        assert.ok(witness.operations.length <= 4, `seed ${seed}: witness of ${witness.operations.length} operations`);
      }
      assert.ok(corrupted >= 150, `only ${corrupted} seeds could be corrupted`);
    });

    // Bounds on search steps, not on time: the histories are seeded, so the counts are exact and
    // a loaded machine cannot make this fail; a search gone exponential still does.
    it('checks a 10k-operation history in a near-linear number of search steps', function () {
      this.timeout(20_000);
      const gen = generate(42, 10_000, 8, 80);
      const started = performance.now();
      const res = check(gen.history);
      const elapsedMs = performance.now() - started;
      assert.equal(res.verdict, 'linearizable');
      assert.equal(res.operations, gen.history.filter((op) => !(op.outcome === 'unknown' && op.input.op === 'read')).length);
      console.log(`      10k operations over 8 keys: ${elapsedMs.toFixed(0)} ms, ${res.steps} search steps`);
      assert.ok(res.steps <= 3 * res.operations, `${res.steps} search steps for ${res.operations} operations over 8 keys`);

      const single = generate(43, 10_000, 1, 40);
      const t1 = performance.now();
      const resSingle = check(single.history);
      const singleMs = performance.now() - t1;
      console.log(`      10k operations on ONE key, ~8 overlapping: ${singleMs.toFixed(0)} ms, ${resSingle.steps} search steps`);
      assert.equal(resSingle.verdict, 'linearizable');
      assert.ok(resSingle.steps <= 10 * resSingle.operations, `${resSingle.steps} search steps for ${resSingle.operations} operations on one key`);

      const bad = corruptObservably(gen, prng(99))!;
      const t2 = performance.now();
      const res2 = check(bad.history);
      console.log(`      the same with one corrupted read: ${(performance.now() - t2).toFixed(0)} ms (with witness shrinking)`);
      assert.equal(res2.verdict, 'violation');
    });
  });
});
