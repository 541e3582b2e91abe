/**
 * Raft frame encoding: our envelope (JSON header + raw entry bytes) against plain JSON with
 * base64 entry data, for an App batch of 64 small proposals (~110 B each, like a label update).
 *
 *   npm run bench:codec
 */
import type { Message } from '../../metadata/raft/core/types.js';
import { decodeMessages, encodeMessages } from '../../metadata/raft/node/message-codec.js';

const entries = Array.from({ length: 64 }, (_, i) => ({
  index: 1000 + i, term: 7, type: 'normal' as const,
  data: new TextEncoder().encode(JSON.stringify({ clientId: '9b2f3c1e-6a8d-4d1b-a7a2-0c5e1f2d3b4a', seq: i + 1, stampMs: 1_763_700_000_000, method: 'updateVolumeLabels', args: ['vol-1', { [`k${i}`]: 'v' }] })),
}));
const batch: Message[] = [{ type: 'app', from: 'n1', to: 'n2', term: 7, logTerm: 7, index: 999, entries, commit: 998, reject: false, rejectHint: 0 }];

function naiveEncode(ms: Message[]): Buffer {
  return Buffer.from(JSON.stringify(ms.map((m) => ({ ...m, entries: m.entries.map((e) => ({ ...e, data: Buffer.from(e.data).toString('base64') })) }))));
}
function naiveDecode(b: Buffer): Message[] {
  const raw = JSON.parse(b.toString('utf8')) as (Omit<Message, 'entries'> & { entries: { index: number; term: number; type: 'normal'; data: string }[] })[];
  return raw.map((m) => ({ ...m, entries: m.entries.map((e) => ({ ...e, data: new Uint8Array(Buffer.from(e.data, 'base64')) })) }));
}

function rate(fn: () => void, ms = 1000): number {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) { fn(); n++; }
  return n / (ms / 1000);
}

const ours = encodeMessages(batch);
const naive = naiveEncode(batch);
console.log(`frame of 64 entries: ours ${ours.byteLength} B, JSON+base64 ${naive.byteLength} B (${(ours.byteLength / naive.byteLength).toFixed(2)}x)`);
// Alternate the contenders over several rounds and keep each one's best: the machine is shared.
const best = { encOurs: 0, encNaive: 0, decOurs: 0, decNaive: 0 };
for (let round = 0; round < 5; round++) {
  best.encOurs = Math.max(best.encOurs, rate(() => encodeMessages(batch), 300));
  best.encNaive = Math.max(best.encNaive, rate(() => naiveEncode(batch), 300));
  best.decOurs = Math.max(best.decOurs, rate(() => decodeMessages(ours), 300));
  best.decNaive = Math.max(best.decNaive, rate(() => naiveDecode(naive), 300));
}
console.log(`encode frames/s: ours ${best.encOurs.toFixed(0)}, JSON+base64 ${best.encNaive.toFixed(0)} (${(best.encOurs / best.encNaive).toFixed(2)}x)`);
console.log(`decode frames/s: ours ${best.decOurs.toFixed(0)}, JSON+base64 ${best.decNaive.toFixed(0)} (${(best.decOurs / best.decNaive).toFixed(2)}x)`);
