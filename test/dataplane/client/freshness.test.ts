/**
 * The client's side of the not-found check (dataplane/client/freshness.ts): what a 404's seq
 * headers are taken to say (a malformed one says nothing), and the one line a refused not-found
 * read gives for each thing the primary may have claimed.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { notFoundClaimOf, staleReadError, staleReadSink, uncheckedReadError, uncheckedWarnIntervalMs, type StaleReadEvent, type UncheckedReadEvent } from '../../../dataplane/client/freshness.js';
import { isGalleonError } from '../../../proto/errors.js';

describe('freshness (client): a primary\'s not-found', () => {
  it('reads the tombstone seq and watermark of a 404; absent or malformed headers count as not said', () => {
    assert.deepEqual(notFoundClaimOf({ 'x-galleon-deleted-seq': '12', 'x-galleon-applied-seq': '20' }), { deletedSeq: 12, appliedSeq: 20 });
    assert.deepEqual(notFoundClaimOf({ 'x-galleon-applied-seq': '20' }), { deletedSeq: null, appliedSeq: 20 });
    assert.deepEqual(notFoundClaimOf({}), { deletedSeq: null, appliedSeq: null });
    for (const bad of ['1e3', '-1', ' 5', '0x10', '', '12345678901234567']) {
      assert.deepEqual(notFoundClaimOf({ 'x-galleon-deleted-seq': bad, 'x-galleon-applied-seq': bad }), { deletedSeq: null, appliedSeq: null }, bad);
    }
    assert.deepEqual(notFoundClaimOf({ 'x-galleon-deleted-seq': ['7', '9'] }), { deletedSeq: 7, appliedSeq: null });
  });

  it('a refused not-found is one INTEGRITY_ERROR line naming the primary, the replica and what each said', () => {
    const base = { address: { volumeId: 'v', inode: 3, blockNo: 9 }, reason: 'hidden-block', node: 'n1', witness: 'n2', shown: { gen: { writerId: 4, counter: 2 }, seq: 15 } } as const;
    const cases: [StaleReadEvent['served'], string][] = [
      [{ notFound: { deletedSeq: null, appliedSeq: 20 } }, 'data node n1 answered not found (no entry, its watermark at seq 20) for a block in-sync replica n2 holds (generation 4:2, seq 15)'],
      [{ notFound: { deletedSeq: 12, appliedSeq: 20 } }, 'data node n1 answered not found (deleted at seq 12, its watermark at seq 20) for a block in-sync replica n2 holds (generation 4:2, seq 15)'],
      [{ notFound: { deletedSeq: null, appliedSeq: null } }, 'data node n1 answered not found (no entry) for a block in-sync replica n2 holds (generation 4:2, seq 15)'],
    ];
    for (const [served, what] of cases) {
      const e = staleReadError({ ...base, served });
      assert.ok(isGalleonError(e, 'INTEGRITY_ERROR'));
      assert.equal(e.message, `block 9 (inode 3) of volume v: ${what}; refused rather than return a rolled-back or hidden block`);
      assert.deepEqual(e.details, { volumeId: 'v', inode: 3, blockNo: 9, node: 'n1', witness: 'n2' });
    }
  });
});

describe('freshness (client): reads with no witness', () => {
  const event = (pg: number, outcome: UncheckedReadEvent['outcome'], asked = ['n2', 'n3']): UncheckedReadEvent => ({ address: { volumeId: 'v', inode: 0, blockNo: 4 }, pg, primary: 'n1', asked, outcome });

  it('the sink counts every unchecked read by outcome and warns once per PG per interval', async () => {
    const lines: string[] = [];
    const registry = new Registry();
    let now = 1_000;
    const sink = staleReadSink(pino({ level: 'warn' }, new Writable({ write(c: Buffer, _e, done) { lines.push(c.toString()); done(); } })), registry, null, () => now);
    sink.unchecked?.(event(0, 'served'));
    sink.unchecked?.(event(1, 'served'));
    now += uncheckedWarnIntervalMs - 1;
    sink.unchecked?.(event(0, 'served'));
    sink.unchecked?.(event(0, 'refused'));
    now += 1;
    sink.unchecked?.(event(0, 'served'));
    const values = (await registry.getSingleMetric('galleon_client_unchecked_reads_total')?.get())?.values ?? [];
    assert.deepEqual(Object.fromEntries(values.map((x) => [x.labels.outcome, x.value])), { served: 4, refused: 1 });
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { pg: number }).pg), [0, 1, 0], 'PG 0 at the start and after the interval, PG 1 once');
    assert.ok(lines.every((l) => l.includes('"primary":"n1"') && l.includes('"asked":["n2","n3"]')), lines.join(''));
  });

  it('a strict refusal is one FAILED_PRECONDITION line naming the primary and who was asked (or that none is in sync)', () => {
    const e = uncheckedReadError(event(2, 'refused'), 2000);
    assert.ok(isGalleonError(e, 'FAILED_PRECONDITION'));
    assert.equal(e.message, 'block 4 (inode 0) of volume v: no other in-sync replica of its PG (n2, n3) answered within 2000 ms, so the answer of data node n1 cannot be checked for a rollback; refused (freshness strict)');
    assert.deepEqual(e.details, { volumeId: 'v', inode: 0, blockNo: 4, pg: 2, node: 'n1', reason: 'unchecked-read' });
    assert.match(uncheckedReadError(event(2, 'refused', []), 2000).message, /: no other replica of its PG is in sync, so the answer of data node n1 cannot/);
  });
});
