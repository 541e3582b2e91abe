import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { Message, NodeId } from '../../../metadata/raft/core/types.js';
import { RaftTransport } from '../../../metadata/raft/node/transport.js';
import { grpcChannelOptions, serviceConstructor } from '../../../proto/grpc-loader.js';
import { pollUntil } from '../../support/poll.js';

const logger = pino({ level: 'silent' });

interface Endpoint {
  id: NodeId;
  server: grpc.Server;
  transport: RaftTransport;
  address: string;
  received: Message[];
  unreachable: NodeId[];
  snapshotFailures: NodeId[];
}

function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<boolean> {
  return pollUntil(what, cond, timeoutMs, 5);
}

function msg(from: string, to: string, i: number, dataBytes = 8): Message {
  return { type: 'app', from, to, term: 1, logTerm: 1, index: i, commit: 0, reject: false, rejectHint: 0, entries: [{ index: i + 1, term: 1, type: 'normal', data: new Uint8Array(dataBytes).fill(i % 251) }] };
}

describe('metadata/raft/node transport (two real gRPC endpoints)', () => {
  const endpoints: Endpoint[] = [];
  const addresses = new Map<NodeId, string>();

  async function start(id: NodeId, port = 0, chunkBytes?: number): Promise<Endpoint> {
    const ep: Endpoint = { id, server: new grpc.Server(grpcChannelOptions), address: '', received: [], unreachable: [], snapshotFailures: [] } as unknown as Endpoint;
    ep.transport = new RaftTransport({
      selfId: id,
      resolveAddress: (p) => addresses.get(p),
      logger,
      ...(chunkBytes === undefined ? {} : { chunkBytes }),
      handlers: {
        onMessages: (m) => { ep.received.push(...m); },
        onUnreachable: (p) => { ep.unreachable.push(p); },
        onSnapshotFailure: (p) => { ep.snapshotFailures.push(p); },
      },
    });
    ep.transport.register(ep.server);
    const bound = await new Promise<number>((resolve, reject) => {
      ep.server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err)));
    });
    ep.address = `127.0.0.1:${bound}`;
    addresses.set(id, ep.address);
    endpoints.push(ep);
    return ep;
  }

  async function stop(ep: Endpoint): Promise<void> {
    ep.transport.stop();
    ep.server.forceShutdown();
    endpoints.splice(endpoints.indexOf(ep), 1);
    await Promise.resolve();
  }

  afterEach(async () => {
    for (const ep of [...endpoints]) await stop(ep);
    addresses.clear();
  });

  it('delivers messages in order, many per frame', async () => {
    const a = await start('a');
    const b = await start('b');
    const n = 2000;
    for (let i = 0; i < n; i++) a.transport.send([msg('a', 'b', i)]);
    await until(() => b.received.length === n, 'all messages at b');
    assert.deepEqual(b.received.map((m) => m.index), Array.from({ length: n }, (_, i) => i));
    assert.ok(a.transport.metrics.framesSent < n / 10, `expected batching, got ${a.transport.metrics.framesSent} frames for ${n} messages`);
    // And back the other way on b's own stream.
    b.transport.send([msg('b', 'a', 1)]);
    await until(() => a.received.length === 1, 'reply at a');
  });

  it('sends a large snapshot in chunks and reassembles it', async () => {
    const a = await start('a', 0, 64 * 1024);
    const b = await start('b');
    const data = new Uint8Array(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    a.transport.send([{ ...msg('a', 'b', 0), entries: [], type: 'snap', snapshot: { meta: { index: 90, term: 4, conf: { voters: ['a', 'b'], learners: [] } }, data } }]);
    a.transport.send([msg('a', 'b', 91)]);
    await until(() => b.received.length === 2, 'snapshot and follow-up at b');
    const snap = b.received[0]?.snapshot;
    assert.equal(snap?.meta.index, 90);
    assert.equal(snap.data.byteLength, data.byteLength);
    assert.ok(Buffer.from(snap.data).equals(Buffer.from(data)));
    assert.equal(b.received[1]?.index, 91);
    assert.ok(a.transport.metrics.framesSent >= 2);
  });

  it('reports an unreachable peer and reconnects when it comes back', async () => {
    const a = await start('a');
    const b = await start('b');
    a.transport.send([msg('a', 'b', 1)]);
    await until(() => b.received.length === 1, 'first message');
    const port = Number(b.address.split(':')[1]);
    await stop(b);
    // Keep sending until the broken stream is noticed.
    await until(() => { a.transport.send([msg('a', 'b', 2)]); return a.unreachable.includes('b'); }, 'unreachable report');
    const b2 = await start('b', port);
    await until(() => { a.transport.send([msg('a', 'b', 3)]); return b2.received.some((m) => m.index === 3); }, 'delivery after reconnect', 10000);
  });

  it('bounds the queue to a peer that stops reading and reports it unreachable', async () => {
    // A server that accepts the stream but never reads it: HTTP/2 flow control stalls the sender.
    const stalled = new grpc.Server(grpcChannelOptions);
    const ctor = serviceConstructor('raft.proto', 'raft', 'RaftTransport');
    const held: grpc.ServerReadableStream<unknown, unknown>[] = [];
    stalled.addService(ctor.service, { Stream: (call: grpc.ServerReadableStream<unknown, unknown>) => { held.push(call); call.pause(); } });
    const port = await new Promise<number>((resolve, reject) => {
      stalled.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err)));
    });
    addresses.set('slow', `127.0.0.1:${port}`);
    try {
      const a = await start('a');
      const maxQueued = a.transport.opts.maxQueuedMessages;
      await until(() => {
        for (let i = 0; i < 500; i++) a.transport.send([msg('a', 'slow', i, 4096)]);
        return a.unreachable.includes('slow');
      }, 'unreachable report for the stalled peer', 10000);
      const q = a.transport.queued('slow');
      assert.ok(q.messages <= maxQueued, `queue ${q.messages} within ${maxQueued}`);
      assert.ok(q.bytes <= a.transport.opts.maxQueuedBytes);
    } finally {
      for (const c of held) c.destroy();
      stalled.forceShutdown();
    }
  });

  it('reports a snapshot failure when the peer address is unknown', async () => {
    const a = await start('a');
    a.transport.send([{ ...msg('a', 'ghost', 0), entries: [], type: 'snap', snapshot: { meta: { index: 5, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array(4) } }]);
    await until(() => a.snapshotFailures.includes('ghost') && a.unreachable.includes('ghost'), 'failure reports');
  });
});
