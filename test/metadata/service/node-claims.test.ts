/**
 * Which node a metadata call speaks for (issue #12, metadata/service/node-claims.ts): every bound
 * method against its own node, another node and a certificate that is no node's. The real-process
 * check is test/cli/cert-lifecycle.integration.test.ts.
 */
import { strict as assert } from 'node:assert';
import { bindToNode, nodeClaimOf } from '../../../metadata/service/node-claims.js';
import { isGalleonError } from '../../../proto/errors.js';

/** Each bound call, as node `n` makes it. */
const calls = (n: string): [string, unknown[]][] => [
  ['registerDataNode', [{ id: n, address: '127.0.0.1:1', zone: 'z', capacityBytes: 1 }]],
  ['heartbeatDataNode', [n, 0, []]],
  ['acquireLease', ['pg-primary', 'v/0', n, 4000, null, 3]],
  ['claimPgPrimary', ['v', 0, n, 3]],
  ['markPgReplicaOutOfSync', ['v', 0, 'other-replica', 3, n, 10]],
  ['claimBackupRun', ['p1', 1, 2, `${n}:7`]],
  ['finishBackupRun', ['p1', 1, null, null, `${n}:7`]],
];

describe('metadata/service node-claims: node calls bound to the certificate\'s node', () => {
  it('lets each bound call through for its own node, unchanged', () => {
    for (const [method, args] of calls('n1')) assert.deepEqual(bindToNode(method, args, 'n1'), args, method);
  });

  it('refuses each bound call made for another node, and every bound call from a certificate that is no node\'s', () => {
    for (const [method, args] of calls('n1')) {
      assert.throws(() => bindToNode(method, args, 'n2'), (e) => isGalleonError(e, 'PERMISSION_DENIED') && e.message === `this certificate is node n2's; it may not call ${method} as node n1`, method);
      assert.throws(() => bindToNode(method, args, null), (e) => isGalleonError(e, 'PERMISSION_DENIED') && e.message.startsWith(`${method} is for cluster nodes`), method);
    }
  });

  it('gives lease renewals and releases the certificate\'s holder scope, replacing any the caller sent', () => {
    assert.deepEqual(bindToNode('renewLease', ['L1', 4000, { holder: 'n1' }], 'n2'), ['L1', 4000, { holder: 'n2' }]);
    assert.deepEqual(bindToNode('releaseLease', ['L1'], 'n2'), ['L1', { holder: 'n2' }]);
    assert.throws(() => bindToNode('releaseLease', ['L1'], null), (e) => isGalleonError(e, 'PERMISSION_DENIED'));
  });

  it('binds nothing else (reads, volumes, the namespace, keys), and leaves malformed calls to the argument check', () => {
    for (const m of ['listVolumes', 'createVolume', 'fsCreate', 'getVolumeKey', 'allocateKeyWriter']) assert.deepEqual(nodeClaimOf(m, ['x']), { kind: 'none' });
    assert.deepEqual(bindToNode('getVolumeKey', ['v'], null), ['v']);
    assert.deepEqual(bindToNode('heartbeatDataNode', [42], 'n1'), [42]);
  });
});
