/**
 * The cluster CA of `galleon cert` (cli/lib/pki.ts) and the checks a daemon and the CLI make on
 * TLS folders (cli/lib/tls.ts), on real files in a temp folder: what is issued verifies against
 * its CA and no other, keys are 0600, rotation keeps names and changes keys, bad input is one
 * error and writes nothing.
 */
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe as describeCert, initCa, issue, listIssued, requestOf } from '../../cli/lib/pki.js';
import { checkTlsMaterial, loadTlsDir } from '../../cli/lib/tls.js';
import { isGalleonError } from '../../proto/errors.js';
import { peerKindOf, tlsFailureCode } from '../../proto/tls.js';

describe('cli/lib/pki: the cluster CA and its certificates', function () {
  this.timeout(30_000);
  let root = '';
  before(async () => { root = await mkdtemp(join(tmpdir(), 'galleon-pki-')); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  it('issues node and client certificates that verify against their CA only, keys mode 0600', async () => {
    await initCa(join(root, 'ca'));
    await initCa(join(root, 'other-ca'));
    await issue(join(root, 'ca'), { kind: 'node', name: 'n1', dns: ['n1.example'], ips: ['10.0.0.1'], days: 30 }, join(root, 'n1'));
    await issue(join(root, 'ca'), { kind: 'client', name: 'alice', dns: [], ips: [], days: 30 }, join(root, 'alice'));
    for (const f of [join(root, 'ca', 'ca.key'), join(root, 'n1', 'tls.key'), join(root, 'alice', 'tls.key')]) assert.equal((await stat(f)).mode & 0o777, 0o600, f);
    const node = await loadTlsDir(join(root, 'n1'), 'daemon');
    assert.match(checkTlsMaterial(node, join(root, 'n1'), 'node').subject, /CN=n1/);
    const cert = new X509Certificate(node.cert);
    assert.equal(cert.subjectAltName, 'DNS:localhost, DNS:n1.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:10.0.0.1');
    assert.equal(cert.verify(new X509Certificate(await readFile(join(root, 'other-ca', 'ca.crt'))).publicKey), false, 'another CA did not sign it');
    const alice = await loadTlsDir(join(root, 'alice'), 'cli');
    checkTlsMaterial(alice, join(root, 'alice'), 'any');
    assert.throws(() => checkTlsMaterial(alice, join(root, 'alice'), 'node'), /is not a node certificate/);
    assert.equal(peerKindOf({ subject: { OU: 'galleon-client', CN: 'alice' } }), 'client');
    assert.equal(peerKindOf({ subject: { OU: ['x', 'galleon-node'] } }), 'node');
    assert.equal(peerKindOf(null), 'unknown');
    assert.deepEqual((await listIssued(join(root, 'ca'))).map((r) => `${r.kind}:${r.name}`), ['node:n1', 'client:alice']);
  });

  it('a folder whose ca.crt is another CA\'s, or whose key is another certificate\'s, fails the check with one line', async () => {
    const mixed = await loadTlsDir(join(root, 'n1'), 'daemon');
    const otherCa = await readFile(join(root, 'other-ca', 'ca.crt'));
    assert.throws(() => checkTlsMaterial({ ...mixed, ca: otherCa }, 'X', 'node'), /is not signed by the CA in ca\.crt/);
    const alice = await loadTlsDir(join(root, 'alice'), 'cli');
    assert.throws(() => checkTlsMaterial({ ...mixed, key: alice.key }, 'X', 'node'), /does not match the key tls\.key/);
    await assert.rejects(loadTlsDir(join(root, 'nothing'), 'daemon'), (err) => isGalleonError(err, 'FAILED_PRECONDITION') && /cannot read .*ca\.crt \(ENOENT\)/.test(err.message) && /--insecure-plaintext/.test(err.hint ?? ''));
  });

  it('rotation keeps the kind, name and addresses and changes the key and serial', async () => {
    const before = describeCert(await readFile(join(root, 'n1', 'tls.crt')), 'n1', null);
    const beforeKey = await readFile(join(root, 'n1', 'tls.key'));
    await issue(join(root, 'ca'), await requestOf(join(root, 'n1'), 60), join(root, 'n1'));
    const after = describeCert(await readFile(join(root, 'n1', 'tls.crt')), 'n1', await readFile(join(root, 'n1', 'ca.crt')));
    assert.equal(after.subjectAltName, before.subjectAltName);
    assert.equal(after.subject, before.subject);
    assert.notEqual(after.serial, before.serial);
    assert.equal(after.signedByCa, true);
    assert.equal(after.kind, 'node');
    assert.notDeepEqual(await readFile(join(root, 'n1', 'tls.key')), beforeKey);
  });

  it('refuses bad names, addresses, validity and a second CA in one folder, writing nothing', async () => {
    const bad = [
      { kind: 'node' as const, name: 'bad name', dns: [], ips: [], days: 1 },
      { kind: 'node' as const, name: 'ok', dns: [], ips: ['1.2.3'], days: 1 },
      { kind: 'node' as const, name: 'ok', dns: ['-x y'], ips: [], days: 1 },
      { kind: 'client' as const, name: 'ok', dns: [], ips: [], days: 0 },
    ];
    for (const r of bad) await assert.rejects(issue(join(root, 'ca'), r, join(root, 'bad')), (err) => isGalleonError(err, 'INVALID_ARGUMENT'));
    await assert.rejects(access(join(root, 'bad')), 'nothing was written');
    await assert.rejects(initCa(join(root, 'ca')), (err) => isGalleonError(err, 'FAILED_PRECONDITION'));
    await assert.rejects(issue(join(root, 'no-ca'), { kind: 'node', name: 'n', dns: [], ips: [], days: 1 }, join(root, 'bad')), /no CA in/);
  });

  it('names a failed TLS handshake by its code, through cause chains, and nothing else', () => {
    assert.equal(tlsFailureCode({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }), 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    assert.equal(tlsFailureCode(new Error('x', { cause: { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' } })), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(tlsFailureCode({ code: 'ECONNREFUSED' }), null);
    assert.equal(tlsFailureCode(null), null);
  });
});
