/**
 * The edge parsers of issue #10, one by one (pure functions, no processes): each takes any input
 * and gives a value or a GalleonError with a stable code — never a TypeError or URIError.
 */
import { strict as assert } from 'node:assert';
import { isGalleonError } from '../../proto/errors.js';
import { decodePathSegment, isJsonContentType, parseRequestTarget } from '../../proto/http-edge.js';
import { blockWriteSchema, noBodySchema, parseBody, volumeSpecSchema } from '../../cli/daemon/admin-schemas.js';
import { refuseCrossSite } from '../../cli/daemon/admin-server.js';
import { reloadPlan } from '../../cli/daemon/config.js';
import { intParam } from '../../dataplane/wire.js';
import { checkCallArgs } from '../../metadata/service/call-args.js';
import { decodeMessages, encodeMessages } from '../../metadata/raft/node/message-codec.js';

const refusedWith = (code: string) => (err: unknown): boolean => isGalleonError(err) && err.code === code;

describe('hardening: edge parsers', () => {
  it('parses request targets without new URL: //[ and malformed % escapes are INVALID_ARGUMENT', () => {
    assert.deepEqual(parseRequestTarget('/v1/volumes/a%20b?x=%zz').segments, ['v1', 'volumes', 'a b']);
    assert.equal(parseRequestTarget('/v1/x?x=%zz').query.get('x'), '%zz');
    assert.deepEqual(parseRequestTarget('//[').segments, ['[']);
    for (const bad of ['/v1/volumes/%E0%A4%A', '/%', '/a%zz', `/${'x'.repeat(300)}`, '/%00', '*', 'http://evil/', '', `/${'a/'.repeat(20)}`]) {
      assert.throws(() => parseRequestTarget(bad), refusedWith('INVALID_ARGUMENT'), bad);
    }
    assert.throws(() => decodePathSegment('%C0%AF'), refusedWith('INVALID_ARGUMENT'));
  });

  it('takes only application/json (with parameters) as JSON', () => {
    assert.ok(isJsonContentType('application/json'));
    assert.ok(isJsonContentType('Application/JSON; charset=utf-8'));
    for (const t of [undefined, 'text/plain', 'application/jsonx', 'multipart/form-data']) assert.ok(!isJsonContentType(t), t);
  });

  it('refuses a foreign Origin (403) before a wrong content type (415), and lets reads and the CLI through', () => {
    const own = new Set(['http://127.0.0.1:8090']);
    assert.throws(() => refuseCrossSite('POST', { origin: 'http://evil.example', 'content-type': 'text/plain' }, own), refusedWith('CROSS_ORIGIN_REFUSED'));
    assert.throws(() => refuseCrossSite('DELETE', { 'content-type': 'text/plain' }, own), refusedWith('UNSUPPORTED_MEDIA_TYPE'));
    assert.throws(() => refuseCrossSite('POST', {}, own), refusedWith('UNSUPPORTED_MEDIA_TYPE'));
    refuseCrossSite('POST', { 'content-type': 'application/json' }, own);
    refuseCrossSite('POST', { 'content-type': 'application/json', origin: 'http://127.0.0.1:8090' }, own);
    refuseCrossSite('GET', { origin: 'http://evil.example' }, own);
  });

  it('admin bodies: [1,2], bad base64, unknown fields, huge numbers and oversized labels are refused in one line', () => {
    for (const body of [[1, 2], 'x', null, { size: -1 }, { size: Number.POSITIVE_INFINITY }, { size: 1.5 }, { extra: 1 }, { labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }]) {
      assert.throws(() => parseBody(volumeSpecSchema, body, 'volume create'), (err: unknown) => refusedWith('INVALID_ARGUMENT')(err) && !(err as Error).message.includes('\n'), JSON.stringify(body));
    }
    assert.throws(() => parseBody(blockWriteSchema, { dataBase64: '!!!not base64***' }, 'write-block'), refusedWith('INVALID_ARGUMENT'));
    assert.deepEqual(parseBody(blockWriteSchema, { dataBase64: 'a2VwdA==' }, 'write-block'), { dataBase64: 'a2VwdA==' });
    assert.deepEqual(parseBody(volumeSpecSchema, { name: 'v', size: '1M', labels: { a: 'b' } }, 'volume create'), { name: 'v', size: '1M', labels: { a: 'b' } });
    assert.equal(parseBody(noBodySchema, undefined, 'daemon stop'), undefined);
    assert.throws(() => parseBody(noBodySchema, { now: true }, 'daemon stop'), refusedWith('INVALID_ARGUMENT'));
  });

  it('data-port integers are decimal digits only', () => {
    assert.equal(intParam('epoch', '42'), 42);
    assert.equal(intParam('trim', undefined, 0), 0);
    for (const bad of ['+1', ' 1', '1 ', '0x10', '1e3', '0b1', '-1', '1.5', 'NaN', '9007199254740993', '١٢']) {
      assert.throws(() => intParam('epoch', bad), refusedWith('INVALID_ARGUMENT'), bad);
    }
  });

  it('metadata calls: arguments of the wrong shape are INVALID_ARGUMENT before dispatch', () => {
    checkCallArgs('createVolume', [{ name: 'v' }]);
    checkCallArgs('acquireLease', ['pg-primary', 'v/1', 'n1', 4000, null, 3]);
    for (const [m, a] of [['createVolume', []], ['createVolume', [[1, 2]]], ['getVolume', [1]], ['addMember', ['', 'x']], ['claimPgPrimary', ['v', -1, 'n', 1]], ['listVolumes', [1, 2, 3, 4, 5, 6, 7, 8, 9]]] as [string, unknown[]][]) {
      assert.throws(() => checkCallArgs(m, a), refusedWith('INVALID_ARGUMENT'), `${m}(${JSON.stringify(a)})`);
    }
  });

  it('raft frames with a malformed message are dropped whole, never stepped', () => {
    const good = encodeMessages([{ type: 'heartbeat', from: 'a', to: 'b', term: 3, logTerm: 0, index: 0, entries: [], commit: 1, reject: false, rejectHint: 0 }]);
    assert.equal(decodeMessages(good)[0]?.term, 3);
    for (const bad of [{ y: 'nope', f: 'a', t: 'b', e: 1, lt: 0, i: 0, c: 0 }, { y: 'vote', f: 'a', t: 'b', e: -1, lt: 0, i: 0, c: 0 }, { y: 'vote', f: 'a', t: 'b', e: '7', lt: 0, i: 0, c: 0 }, { y: 'app', f: 'a', t: '', e: 1, lt: 0, i: 0, c: 0 }, 7]) {
      const header = Buffer.from(JSON.stringify([bad]));
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0]), header]);
      frame.writeUInt32BE(header.length, 0);
      assert.throws(() => decodeMessages(frame), refusedWith('INVALID_ARGUMENT'), JSON.stringify(bad));
    }
  });

  it('SIGHUP plan: the file\'s log level applies live, other changed keys are named for a restart', () => {
    assert.deepEqual(reloadPlan({ zone: 'a' }, { zone: 'a', logLevel: 'debug' }, 'warn'), { logLevel: 'debug', needsRestart: [] });
    assert.deepEqual(reloadPlan({ zone: 'a' }, { zone: 'b', targetVoters: 3 }, 'warn'), { logLevel: 'warn', needsRestart: ['targetVoters', 'zone'] });
    assert.deepEqual(reloadPlan({}, {}, 'bogus'), { logLevel: 'info', needsRestart: [] });
    assert.throws(() => reloadPlan({}, { logLevel: 'loud' }, undefined), refusedWith('INVALID_ARGUMENT'));
  });
});
