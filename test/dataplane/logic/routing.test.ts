import assert from 'node:assert/strict';
import { blocksPerObject, pgOf } from '../../../dataplane/logic/routing.js';

describe('dataplane/logic routing', () => {
  it('keeps the blocks of one object in one PG and is stable', () => {
    for (let b = 0; b < blocksPerObject; b++) assert.equal(pgOf(42, b, 64), pgOf(42, 0, 64));
    assert.equal(pgOf(42, 5, 64), pgOf(42, 5, 64));
  });

  it('spreads objects over all PGs roughly evenly', () => {
    const pgCount = 16;
    const counts = new Array<number>(pgCount).fill(0);
    const objects = 16_000;
    for (let o = 0; o < objects; o++) {
      const pg = pgOf(1 + (o % 7), o * blocksPerObject, pgCount);
      counts[pg] = (counts[pg] ?? 0) + 1;
    }
    for (const c of counts) assert.ok(c > (objects / pgCount) * 0.8 && c < (objects / pgCount) * 1.2, `uneven: ${counts.join(',')}`);
  });

  it('rejects a non-positive pgCount', () => {
    assert.throws(() => pgOf(1, 1, 0), /pgCount/);
  });
});
