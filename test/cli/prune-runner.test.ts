/**
 * The pure decisions of the prune runner (cli/daemon/prune-runner.ts): which pending prunes a
 * data-role daemon resumes (its node the first up holder; not a request its own daemon is still
 * running, unless this daemon just started; not a volume being deleted or whose tree is being
 * restored; not one it already runs), the grace it leaves a request's own daemon (from the
 * cluster's down-after), when it looks again, and the bounded backoff between attempts.
 */
import { strict as assert } from 'node:assert';
import { GalleonError } from '../../proto/errors.js';
import type { Volume } from '../../proto/metadata-types.js';
import {
  maxPruneAttempts, maxPrunesPerScan, nextScanInMs, pruneRescanMs, pruneResumeAfterMs, pruneResumeAfterMsFor, pruneRetryBaseMs, pruneRetryDelayMs, pruneRetryMaxMs,
  prunesToResume, type ResumeInput,
} from '../../cli/daemon/prune-runner.js';
import { defaultDataNodeDownAfterMs } from '../../proto/limits.js';
import { pruneHolders } from '../../dataplane/client/snapshot-reads.js';

const now = 1_800_000_000_000;

function vol(id: string, over: Partial<Volume> = {}): Volume {
  return {
    id, name: id, type: 'persistent', sizeBytes: 1 << 20, accessMode: 'ReadWriteOnce', storageClass: 'fast-local-ssd', replicas: 3,
    writeConcern: 'replicated', blockSizeBytes: 4096, pgCount: 4, state: 'available', labels: {}, createdAtMs: 0, updatedAtMs: 0, version: 1,
    prune: { requested: 2, done: 1, requestedAtMs: now - pruneResumeAfterMs }, ...over,
  };
}

function input(over: Partial<ResumeInput> = {}): ResumeInput {
  const volumes = over.volumes ?? [vol('v1')];
  return {
    nodeId: 'node1', nowMs: now, atStart: false, volumes,
    holders: new Map(volumes.map((v) => [v.id, ['node3', 'node1', 'node2']])),
    nodes: [{ id: 'node1', state: 'up' }, { id: 'node2', state: 'up' }, { id: 'node3', state: 'up' }],
    busy: new Set(), resumeAfterMs: pruneResumeAfterMs, ...over,
  };
}

describe('prune runner decisions (pure)', function () {
  it('the first up holder in node id order resumes; the others leave it', () => {
    assert.deepEqual(prunesToResume(input()), ['v1']);
    assert.deepEqual(prunesToResume(input({ nodeId: 'node2' })), []);
    const down = [{ id: 'node1', state: 'down' as const }, { id: 'node2', state: 'up' as const }, { id: 'node3', state: 'up' as const }];
    assert.deepEqual(prunesToResume(input({ nodeId: 'node2', nodes: down })), ['v1'], 'the next holder when the first is down');
    assert.deepEqual(prunesToResume(input({ nodeId: 'node4' })), [], 'not a holder');
  });

  it('only pending prunes, not already running here, not of a volume going away or mid-restore', () => {
    const { prune: _p, ...never } = vol('never');
    const volumes = [
      vol('done', { prune: { requested: 3, done: 3, requestedAtMs: 0 } }), never,
      vol('deleting', { state: 'deleting' }), vol('restoring', { treeState: 'restoring' }), vol('busy'), vol('ok'),
    ];
    assert.deepEqual(prunesToResume(input({ volumes, busy: new Set(['busy']) })), ['ok']);
  });

  it('a fresh request is its own daemon\'s, except at this daemon\'s start', () => {
    const young = [vol('v1', { prune: { requested: 1, done: 0, requestedAtMs: now - pruneResumeAfterMs + 1 } })];
    assert.deepEqual(prunesToResume(input({ volumes: young })), []);
    assert.deepEqual(prunesToResume(input({ volumes: young, atStart: true })), ['v1']);
  });

  it('the grace is three down-afters (30 s at the default); a cluster with faster failover takes over sooner', () => {
    assert.equal(pruneResumeAfterMs, 30_000);
    assert.equal(pruneResumeAfterMsFor(defaultDataNodeDownAfterMs), 30_000);
    assert.equal(pruneResumeAfterMsFor(2_000), 6_000);
    const aged = [vol('v1', { prune: { requested: 1, done: 0, requestedAtMs: now - 6_000 } })];
    assert.deepEqual(prunesToResume(input({ volumes: aged, resumeAfterMs: pruneResumeAfterMsFor(2_000) })), ['v1']);
    assert.deepEqual(prunesToResume(input({ volumes: aged })), [], 'still young at the default grace');
    assert.throws(() => pruneResumeAfterMsFor(0));
  });

  it('looks again when the youngest pending request comes of age, at most every pruneRescanMs; every pruneRetryBaseMs until its node shows up (if any is pending), every pruneRetryMaxMs while a round runs here', () => {
    const at = (agoMs: number, id = 'v1'): Volume => vol(id, { prune: { requested: 1, done: 0, requestedAtMs: now - agoMs } });
    const next = (volumes: Volume[], awaitingSelf = false, resumeAfterMs = 6_000, running = false): number => nextScanInMs({ nowMs: now, volumes, resumeAfterMs, awaitingSelf, running });
    assert.equal(next([]), pruneRescanMs, 'nothing pending');
    assert.equal(next([at(1_000)]), 5_000, 'when the request is 6 s old');
    assert.equal(next([at(1_000), at(4_500, 'v2')]), 1_500, 'the next to come of age');
    assert.equal(next([at(6_000), at(60_000, 'v2')]), pruneRescanMs, 'of age already: taken now or not this node\'s');
    assert.equal(next([at(1_000)], false, 60_000), pruneRescanMs, 'capped');
    assert.equal(next([vol('done', { prune: { requested: 2, done: 2, requestedAtMs: now } })]), pruneRescanMs, 'not pending');
    assert.equal(next([at(60_000)], true), pruneRetryBaseMs, 'this node not up since its start');
    assert.equal(next([], true), pruneRescanMs, 'nothing pending: nothing to take');
    assert.equal(next([at(60_000)], false, 6_000, true), pruneRetryMaxMs, 'a round runs here: tried again soon after it gives up');
    assert.equal(next([at(1_000)], false, 6_000, true), 5_000);
    assert.equal(next([at(5_900)], true), 100);
  });

  it('starts at most maxPrunesPerScan per scan', () => {
    const many = Array.from({ length: maxPrunesPerScan + 5 }, (_, i) => vol(`v${String(i).padStart(3, '0')}`));
    assert.equal(prunesToResume(input({ volumes: many })).length, maxPrunesPerScan);
  });

  it('a round posts to every replica and every node that left a PG with its copy; an estimate to the replicas', () => {
    const pgs = [{ replicas: ['node2', 'node1'], departed: { node3: 7 } }, { replicas: ['node1', 'node2'] }];
    assert.deepEqual(pruneHolders(pgs, true), ['node1', 'node2', 'node3']);
    assert.deepEqual(pruneHolders(pgs, false), ['node1', 'node2']);
  });

  it('backs off on a node or leader briefly away, gives up after maxPruneAttempts or on other errors', () => {
    const away = new GalleonError('UNAVAILABLE', 'node3 is not answering');
    const waits = Array.from({ length: maxPruneAttempts }, (_, i) => pruneRetryDelayMs(i + 1, away));
    assert.deepEqual(waits.slice(0, -1), Array.from({ length: maxPruneAttempts - 1 }, (_, i) => Math.min(pruneRetryMaxMs, pruneRetryBaseMs * 2 ** i)));
    assert.equal(waits.at(-1), null, 'bounded');
    assert.equal(pruneRetryDelayMs(1, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), pruneRetryBaseMs, 'a socket error');
    assert.equal(pruneRetryDelayMs(1, new GalleonError('VOLUME_NOT_FOUND', 'gone')), null);
    assert.equal(pruneRetryDelayMs(1, new GalleonError('INVALID_ARGUMENT', 'bad body')), null);
  });
});
