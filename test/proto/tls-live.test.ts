/**
 * proto/tls-live.ts: what a daemon's running ports learn when its TLS folder changes — listeners
 * hear only real changes, grpc-js certificate-provider listeners get the current value right after
 * they are added (not during the call: grpc-js's server registers its watcher after adding them),
 * and serials are compared however they are spelled.
 */
import { strict as assert } from 'node:assert';
import { LiveTls, normalizeSerial } from '../../proto/tls-live.js';

const id = (n: number): { ca: Buffer; cert: Buffer; key: Buffer } => ({ ca: Buffer.from('ca'), cert: Buffer.from(`cert${n}`), key: Buffer.from(`key${n}`) });

describe('proto/tls-live: LiveTls', () => {
  it('normalizes serials: case, colons and leading zeros do not matter', () => {
    assert.equal(normalizeSerial('00:7F:A1'), '7fa1');
    assert.equal(normalizeSerial('007fa1'), normalizeSerial('7FA1'));
    assert.equal(normalizeSerial('00'), '0');
    assert.equal(normalizeSerial('0a1b'), normalizeSerial('A1B'), 'a leading zero nibble, as OpenSSL drops it');
  });

  it('tells revoked certificates by serial, and only those', () => {
    const live = new LiveTls(id(1), ['00AB12']);
    assert.equal(live.isRevoked({ serialNumber: 'AB12' }), true);
    assert.equal(live.isRevoked({ serialNumber: 'AB13' }), false);
    assert.equal(live.isRevoked(null), false);
  });

  it('reports only what changed, moves the generation on an identity change, and feeds provider listeners', async () => {
    const live = new LiveTls(id(1));
    const changes: { identity: boolean; revoked: boolean }[] = [];
    live.onChange((c) => changes.push(c));
    const seen: string[] = [];
    live.addIdentityCertificateListener((u) => seen.push(u?.certificate.toString() ?? 'null'));
    assert.deepEqual(seen, [], 'not during the call');
    await Promise.resolve();
    assert.deepEqual(seen, ['cert1'], 'right after it');
    assert.deepEqual(live.update(id(1), []), { identity: false, revoked: false });
    assert.deepEqual(live.update(id(2), []), { identity: true, revoked: false });
    assert.equal(live.generation, 1);
    assert.deepEqual(live.update(id(2), ['01']), { identity: false, revoked: true });
    assert.deepEqual(live.update(id(2), ['0001']), { identity: false, revoked: false }, 'the same serial spelled otherwise');
    assert.deepEqual(changes, [{ identity: true, revoked: false }, { identity: false, revoked: true }]);
    assert.deepEqual(seen, ['cert1', 'cert2']);
    assert.equal(live.identity.key.toString(), 'key2');
  });
});
