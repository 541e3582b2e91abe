import { strict as assert } from 'node:assert';
import type { Message } from '../../../metadata/raft/core/types.js';
import { decodeMessages, encodeMessages } from '../../../metadata/raft/node/message-codec.js';
import { isGalleonError } from '../../../proto/errors.js';

function base(over: Partial<Message>): Message {
  return { type: 'app', from: 'a', to: 'b', term: 3, logTerm: 2, index: 7, entries: [], commit: 6, reject: false, rejectHint: 0, ...over };
}

describe('metadata/raft/node message codec', () => {
  it('round-trips every field of a mixed batch', () => {
    const msgs: Message[] = [
      base({ entries: [{ index: 8, term: 3, type: 'normal', data: new TextEncoder().encode('{"x":1}') }, { index: 9, term: 3, type: 'conf-change', data: new Uint8Array([1, 2]) }, { index: 10, term: 3, type: 'normal', data: new Uint8Array(0) }] }),
      base({ type: 'app-resp', from: 'b', to: 'a', reject: true, rejectHint: 4, rejectHintTerm: 2 }),
      base({ type: 'heartbeat', context: 'read-17' }),
      base({ type: 'snap', snapshot: { meta: { index: 50, term: 3, conf: { voters: ['a', 'b'], learners: ['c'] } }, data: new Uint8Array([5, 6, 7, 8]) } }),
      base({ type: 'vote', term: 2 ** 40, index: 2 ** 52 }),
    ];
    const decoded = decodeMessages(encodeMessages(msgs));
    assert.deepEqual(decoded, msgs);
  });

  it('rejects a truncated frame with a clear error instead of inventing messages', () => {
    const buf = encodeMessages([base({ entries: [{ index: 8, term: 3, type: 'normal', data: new Uint8Array(100) }] })]);
    assert.throws(() => decodeMessages(buf.subarray(0, buf.byteLength - 10)), (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
    assert.throws(() => decodeMessages(buf.subarray(0, 2)), (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
  });

  it('is far smaller than JSON with base64 payloads for a batch of small proposals', () => {
    const entries = Array.from({ length: 64 }, (_, i) => ({ index: 100 + i, term: 5, type: 'normal' as const, data: new TextEncoder().encode(`{"clientId":"c1","seq":${i},"stampMs":1700000000000,"method":"updateVolumeLabels","args":["v1",{"k":"v"}]}`) }));
    const msg = base({ entries });
    const ours = encodeMessages([msg]).byteLength;
    const naive = Buffer.from(JSON.stringify({ ...msg, entries: entries.map((e) => ({ ...e, data: Buffer.from(e.data).toString('base64') })) })).byteLength;
    assert.ok(ours < naive * 0.85, `binary envelope ${ours} B vs JSON+base64 ${naive} B`);
  });
});
