import assert from 'node:assert/strict';
import { blockOutsideVolume, decideRefresh, hostOf, ipVersion, maxInodeNumber, normalizeIp, senderMayBe } from '../../../dataplane/logic/membership.js';
import type { RefreshLimits } from '../../../dataplane/logic/membership.js';

describe('dataplane/logic membership', () => {
  it('takes a connection only from the host a member registered', () => {
    assert.equal(senderMayBe('10.0.0.5:8093', '10.0.0.5'), true);
    assert.equal(senderMayBe('10.0.0.5:8093', '::ffff:10.0.0.5'), true, 'an IPv4 peer on a dual-stack socket');
    assert.equal(senderMayBe('10.0.0.5:8093', '10.0.0.6'), false);
    assert.equal(senderMayBe('10.0.0.5:8093', undefined), false, 'a socket without a peer address');
    assert.equal(senderMayBe('[fd00::5]:8093', 'FD00::5'), true);
    assert.equal(senderMayBe('[fd00::5]:8093', 'fd00::6'), false);
    // Loopback: a node bound to 127.0.0.2 connects out from 127.0.0.1.
    assert.equal(senderMayBe('127.0.0.2:8093', '127.0.0.1'), true);
    assert.equal(senderMayBe('127.0.0.1:8093', '10.0.0.5'), false);
    assert.equal(senderMayBe('localhost:8093', '::1'), true);
    assert.equal(senderMayBe('localhost:8093', '10.0.0.5'), false);
    // Host names and unspecified addresses cannot be checked without a resolver.
    assert.equal(senderMayBe('data-1.example:8093', '10.0.0.9'), true);
    assert.equal(senderMayBe('0.0.0.0:8093', '10.0.0.9'), true);
  });

  it('splits host and port, and normalizes IPv4-mapped addresses', () => {
    assert.equal(hostOf('127.0.0.1:80'), '127.0.0.1');
    assert.equal(hostOf('[::1]:80'), '::1');
    assert.equal(normalizeIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeIp('::ffff:zz'), '::ffff:zz');
    assert.deepEqual(['10.0.0.1', '256.0.0.1', 'fd00::1', '::ffff:1.2.3.4', 'db.example', ''].map(ipVersion), [4, 0, 6, 6, 0, 0]);
  });

  it('refuses blocks past the end of the volume and absurd inodes', () => {
    const v = { sizeBytes: 5000, blockSizeBytes: 4096 };
    assert.equal(blockOutsideVolume({ inode: 0, blockNo: 1 }, v), null, 'a partial last block is inside');
    assert.match(blockOutsideVolume({ inode: 0, blockNo: 2 }, v) ?? '', /beyond the end of the volume \(2 blocks of 4096 bytes\)/);
    assert.match(blockOutsideVolume({ inode: 7, blockNo: 1_000_000_000_000 }, v) ?? '', /beyond/);
    assert.match(blockOutsideVolume({ inode: maxInodeNumber + 1, blockNo: 0 }, v) ?? '', /inode/);
    assert.equal(blockOutsideVolume({ inode: maxInodeNumber, blockNo: 0 }, v), null);
    // A static placement carries no size: only the inode is checked.
    assert.equal(blockOutsideVolume({ inode: 0, blockNo: 1_000_000_000_000 }, {}), null);
  });

  it('bounds request-triggered placement reads per volume and per node', () => {
    const limits: RefreshLimits = { minIntervalMs: 200, perSecond: 10, burst: 2 };
    let state = { tokens: 2, refilledAtMs: 0 };
    const first = decideRefresh(undefined, state, 0, limits);
    assert.equal(first.kind, 'start');
    if (first.kind === 'start') state = first.state;
    assert.deepEqual(decideRefresh(0, state, 50, limits), { kind: 'wait', ms: 150 }, 'the same volume waits its interval');
    const second = decideRefresh(undefined, state, 50, limits);
    assert.equal(second.kind, 'start', 'another volume may read at once');
    if (second.kind === 'start') state = second.state;
    assert.deepEqual(decideRefresh(undefined, state, 60, limits), { kind: 'refuse' }, 'the node-wide bucket is empty');
    assert.equal(decideRefresh(undefined, state, 160, limits).kind, 'start', 'a token comes back after 100 ms');
    const later = decideRefresh(undefined, state, 100_000, limits);
    assert.ok(later.kind === 'start' && later.state.tokens === limits.burst - 1, 'the bucket never holds more than its burst');
  });
});
