import assert from 'node:assert/strict';
import { addSpan, blockLength, blockRange, blocksOf, clipSpans, gaps, noReadAhead, planReadAhead, readAheadRuns } from '../../../vfs/data/layout.js';
import type { ReadAheadState, Span } from '../../../vfs/data/layout.js';

describe('vfs/data layout (pure)', () => {
  it('maps byte ranges to blocks, partial last blocks included', () => {
    assert.deepEqual(blockRange(0, 4096, 4096), { first: 0, last: 0 });
    assert.deepEqual(blockRange(4095, 2, 4096), { first: 0, last: 1 });
    assert.deepEqual(blockRange(131072, 131072, 131072), { first: 1, last: 1 });
    assert.equal(blocksOf(0, 4096), 0);
    assert.equal(blocksOf(4097, 4096), 2);
    assert.equal(blockLength(1, 4097, 4096), 1);
    assert.equal(blockLength(2, 4097, 4096), 0);
    assert.equal(blockLength(0, 4097, 4096), 4096);
  });

  it('keeps spans merged and finds the gaps, against a bitmap over every small case', () => {
    const n = 8;
    for (let seed = 1; seed < 400; seed++) {
      let x = seed;
      const rnd = (m: number): number => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x % m; };
      let spans: Span[] = [];
      const bits = new Array<boolean>(n).fill(false);
      for (let k = 0; k < 4; k++) {
        const s = rnd(n);
        const e = s + 1 + rnd(n - s);
        spans = addSpan(spans, s, e);
        for (let i = s; i < e; i++) bits[i] = true;
      }
      const cut = rnd(n + 1);
      const clipped = clipSpans(spans, cut);
      const want: Span[] = [];
      for (let i = 0; i < n; i++) {
        if (bits[i] === true) continue;
        const last = want[want.length - 1];
        if (last !== undefined && last[1] === i) want[want.length - 1] = [last[0], i + 1];
        else want.push([i, i + 1]);
      }
      assert.deepEqual(gaps(spans, 0, n), want, `seed ${seed}`);
      for (let i = 1; i < spans.length; i++) assert.ok((spans[i - 1]?.[1] ?? 0) < (spans[i]?.[0] ?? 0), 'disjoint, non-adjacent, sorted');
      assert.deepEqual(gaps(clipped, 0, cut), gaps(spans, 0, cut));
    }
  });

  it('opens a read-ahead window on sequential reads, grows it per new block, closes it on a random read', () => {
    const l = { initialWindowBlocks: 2, maxWindowBlocks: 8 };
    let s: ReadAheadState = noReadAhead;
    const windows: number[] = [];
    for (let b = 0; b < 6; b++) { const p = planReadAhead(s, b, b, l); s = p.state; windows.push(p.to - p.from); assert.equal(p.from, b + 1); }
    assert.deepEqual(windows, [2, 4, 8, 8, 8, 8]);
    // Reads inside the same block (128 KiB reads of a 1 MiB block) keep the window as it is.
    const same = planReadAhead(s, 5, 5, l);
    assert.equal(same.to - same.from, 8);
    const random = planReadAhead(same.state, 40, 40, l);
    assert.equal(random.to - random.from, 0);
    const again = planReadAhead(random.state, 41, 42, l);
    assert.equal(again.to - again.from, 2);
  });

  it('keeps the window open for a stream whose reads arrive out of order, and closes it outside the band', () => {
    const l = { initialWindowBlocks: 2, maxWindowBlocks: 64 };
    // The kernel's concurrent reads of a sequential stream, shuffled within groups of 8.
    let s: ReadAheadState = noReadAhead;
    let fetchedTo = 0;
    const order = [0, 1, 3, 2, 4, 7, 5, 6, 9, 8, 12, 10, 11, 15, 13, 14, 16, 20, 17, 19, 18, 23, 21, 22];
    for (const b of order) {
      const p = planReadAhead(s, b, b, l);
      assert.ok(p.to - p.from > 0, `window closed at block ${b}`);
      assert.ok(p.state.nextBlock >= s.nextBlock, 'the position never moves back');
      s = p.state;
      fetchedTo = Math.max(fetchedTo, p.to);
    }
    assert.equal(s.nextBlock, 24);
    assert.ok(fetchedTo > 24 + 8, `read ahead to ${fetchedTo}`);
    // A read behind the band, or ahead of it, is random access: the window closes.
    assert.equal(planReadAhead(s, s.nextBlock - 2 - s.windowBlocks, s.nextBlock - 2 - s.windowBlocks, l).state.windowBlocks, 0);
    assert.equal(planReadAhead(s, s.nextBlock + s.windowBlocks + 1, s.nextBlock + s.windowBlocks + 1, l).state.windowBlocks, 0);
    // With the window closed only the exact next block (or the last one again) counts as sequential.
    const closed = { nextBlock: 10, windowBlocks: 0 };
    assert.equal(planReadAhead(closed, 11, 11, l).state.windowBlocks, 0);
    assert.equal(planReadAhead(closed, 8, 8, l).state.windowBlocks, 0);
    assert.equal(planReadAhead(closed, 10, 10, l).state.windowBlocks, 2);
  });

  it('fetches the read-ahead window in batches: waits for half a window of missing blocks unless the reader would stall or the data ends', () => {
    const heldBelow = (n: number, extra: readonly number[] = []) => (b: number): boolean => b < n || extra.includes(b);
    // Steady state: the window [10, 74) holds all but its last block: one block missing, nothing fetched yet.
    assert.deepEqual(readAheadRuns(10, 74, 1000, heldBelow(73), 32), []);
    // Half a window missing: one run of 32 blocks, in one range read.
    assert.deepEqual(readAheadRuns(10, 74, 1000, heldBelow(42), 32), [[42, 74]]);
    // The reader's next block missing: fetched now, even one block.
    assert.deepEqual(readAheadRuns(10, 12, 1000, heldBelow(0), 32), [[10, 12]]);
    // Holes in what is held (a buffered block, a cached one) split the runs; the end of the data clips them.
    assert.deepEqual(readAheadRuns(10, 20, 1000, heldBelow(10, [12, 15]), 1), [[10, 12], [13, 15], [16, 20]]);
    assert.deepEqual(readAheadRuns(10, 74, 50, heldBelow(45), 32), [[45, 50]], 'at the end of the data the rest goes at once');
    assert.deepEqual(readAheadRuns(10, 74, 10, heldBelow(0), 32), [], 'nothing stored past the window start');
    // Every small case against a model: the runs are exactly the missing blocks, or nothing when the batch rule holds them back.
    for (let mask = 0; mask < 256; mask++) {
      const held = (b: number): boolean => ((mask >> (b - 4)) & 1) === 1;
      for (const limit of [6, 12, 20]) {
        const runs = readAheadRuns(4, 12, limit, held, 3);
        const missing = Array.from({ length: Math.min(12, limit) - 4 }, (_, i) => 4 + i).filter((b) => !held(b));
        const got = runs.flatMap(([s, e]) => Array.from({ length: e - s }, (_, i) => s + i));
        const urgent = missing[0] === 4 || limit < 12;
        assert.deepEqual(got, urgent || missing.length >= 3 ? missing : [], `mask ${mask} limit ${limit}`);
        for (const [s, e] of runs) assert.ok(s < e && (s === 4 || held(s - 1)) && (e >= Math.min(12, limit) || held(e)), 'runs are maximal');
      }
    }
  });
});
