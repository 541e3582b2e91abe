/**
 * The fuzzer's grammar (fast-check arbitraries): malformed requests for the admin endpoint, the
 * data node's block server and the metadata gRPC port, built as "a real route plus at least one
 * defect". Every request that could change state carries a defect that must get it refused (a
 * foreign Origin, a non-JSON content type, a body its schema refuses, a malformed path, integer,
 * header or batch frame), so a 2xx answer to one of them, or any change of cluster state, is a
 * bug of the server, never of the generator. Read-only requests may be anything.
 */
import fc from 'fast-check';
import type { z } from 'zod';
import { bodySchemas } from '../../cli/daemon/admin-schemas.js';
import { adminRoutes } from '../../cli/lib/admin-routes.js';
import type { AdminRouteSpec } from '../../cli/lib/admin-routes.js';
import { BatchMagic } from '../../dataplane/wire.js';
import { rangeBody } from '../../dataplane/server/range-route.js';

export interface HttpCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | Buffer | null;
  /** True when the request could change state were it accepted: it must be refused (4xx). */
  mutating: boolean;
}

// ---- pieces -------------------------------------------------------------------------------------

/** Malformed percent escapes and other path-segment poison, all plain ASCII on the wire. */
const badSegment = fc.constantFrom('%', '%z', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80', 'a%', '%%', '%00', '%0', '%G1', '..%2', `${'%41'.repeat(200)}`, 'x'.repeat(300));
/** Text that a route must take only as an integer. */
const badInt = fc.oneof(
  fc.constantFrom('', '-1', '-0', 'NaN', 'Infinity', '-Infinity', '1e400', '1e21', '0x10', '0b1', '1.5', '%201', '1%20', '+1', '9007199254740993', '99999999999999999999999', '%D9%A1%D9%A2', 'null', 'undefined', '[]', '{}'),
  fc.integer({ max: -1 }).map(String),
  fc.double({ noInteger: true }).map(String),
  fc.string({ maxLength: 12 }).filter((s) => !/^\d+$/.test(s)).map(encodeURIComponent),
);
const anyText = fc.string({ maxLength: 80, unit: 'grapheme' });
const segment = fc.oneof({ weight: 3, arbitrary: anyText.map(encodeURIComponent) }, { weight: 2, arbitrary: badSegment }, { weight: 1, arbitrary: badInt });
/** Names that never match what the test created (its names start with "fz-keep-"). */
const foreignName = fc.oneof(segment, fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((s) => !s.startsWith('fz-keep-')));
const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom('epoch', 'concern', 'from', 'maxBytes', 'primary', 'stale'), anyText), fc.oneof(badInt, anyText, badSegment)), { maxLength: 4 })
  .map((kv) => (kv.length === 0 ? '' : `?${kv.map(([k, v]) => `${encodeURIComponent(k)}=${v.startsWith('%') ? v : encodeURIComponent(v)}`).join('&')}`));
const headerValue = fc.stringMatching(/^[\x21-\x7e]{0,64}$/);
const extraHeaders = fc.dictionary(fc.stringMatching(/^x-[a-z-]{1,16}$/), headerValue, { maxKeys: 3 });
const evilOrigin = fc.oneof(fc.constantFrom('http://evil.example', 'null', 'https://127.0.0.1.evil.example', 'http://localhost', 'file://'), fc.webUrl().map((u) => new URL(u).origin));
const badContentType = fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'json', 'application/json-patch', '*/*', '');

/** JSON values of every shape, with the edge cases of numbers and strings. */
const jsonValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom<unknown>([1, 2], 'x', 1, -1, null, true, 1e308, -0, [], [{}], { size: -1 }, { size: 1.5 }, { size: '' }, { labels: [] }, { dataBase64: '!!!not base64***' }, { name: 'x'.repeat(70) }),
  fc.dictionary(fc.constantFrom('name', 'size', 'type', 'labels', 'storageClass', 'replicas', 'accessMode', 'dataBase64', 'concern', 'address', 'force', 'provisioner', 'parameters', 'mountOptions', '__proto__', 'constructor'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }),
);
/** A JSON text the route's schema refuses (so the request can never be legitimately accepted). */
const refusedBy = (schema: z.ZodType): fc.Arbitrary<string> => fc.oneof(
  { weight: 4, arbitrary: jsonValue.filter((v) => !schema.safeParse(v).success).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.constantFrom('{', '[1,', '{"a":}', '\u0000', 'nul', '{"size":1e400}', '"unterminated', '{"a":1}{"b":2}', ' '.repeat(10)).filter((t) => !schema.safeParse(tryParse(t)).success) },
  // Not '': an empty body is "no body", which a bodiless route (daemon stop) rightly accepts.
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 200 }).filter((t) => !schema.safeParse(tryParse(t)).success) },
);

function tryParse(t: string): unknown {
  try { return JSON.parse(t); } catch { return Symbol('not json'); }
}

// ---- admin endpoint -------------------------------------------------------------------------------

interface AdminRoute { method: string; path: (p: string[]) => string; params: number; schema: z.ZodType }
/** A path template with raw (possibly malformed) segments in place of its `:params`. */
const fillRaw = (template: string, p: readonly string[]): string => {
  let i = 0;
  return template.replace(/:[A-Za-z]+/g, () => p[i++] ?? 'x');
};
// Straight from the one route table, so a new route is fuzzed as soon as it exists.
const routeSpecs: AdminRouteSpec[] = Object.values(adminRoutes);
/** Every route that reads a body: each could change state. */
const adminMutations: AdminRoute[] = routeSpecs.flatMap((r) => (r.body === undefined ? [] : [{
  method: r.method, path: (p: string[]) => fillRaw(r.path, p), params: (r.path.match(/:/g) ?? []).length, schema: bodySchemas[r.body],
}]));
/** Every route without a body (reads), and paths beside the table; `:` is any segment. */
const adminReads = [...routeSpecs.filter((r) => r.body === undefined).map((r) => r.path.replace(/:[A-Za-z]+/g, ':')), '/healthz', '/metrics', '/', '/v1', '/v2/volumes'];

/**
 * A mutation with one defect that must get it refused: a foreign Origin, a non-JSON content type,
 * or a body its schema refuses (sent as JSON from no Origin: the most "legitimate" shape).
 */
const adminMutation: fc.Arbitrary<HttpCase> = fc.constantFrom(...adminMutations).chain((r) => fc.record({
  params: fc.array(foreignName, { minLength: r.params, maxLength: r.params }),
  defect: fc.constantFrom('origin', 'content-type', 'body'),
  origin: evilOrigin,
  contentType: badContentType,
  badBody: refusedBy(r.schema),
  anyBody: fc.option(jsonValue.map((v) => JSON.stringify(v) ?? 'null'), { nil: null }),
  extra: extraHeaders,
}).map(({ params, defect, origin, contentType, badBody, anyBody, extra }): HttpCase => {
  const headers: Record<string, string> = { ...extra, 'content-type': defect === 'content-type' ? contentType : 'application/json' };
  if (defect === 'origin') headers.origin = origin;
  if (headers['content-type'] === '') delete headers['content-type'];
  return { method: r.method, path: r.path(params), headers, body: defect === 'body' ? badBody : anyBody, mutating: true };
}));

const adminRead: fc.Arbitrary<HttpCase> = fc.record({
  template: fc.constantFrom(...adminReads),
  params: fc.array(segment, { minLength: 3, maxLength: 3 }),
  q: query,
  method: fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'OPTIONS'),
  extra: extraHeaders,
}).map(({ template, params, q, method, extra }) => {
  let i = 0;
  const path = template.replace(/:/g, () => params[i++] ?? 'x');
  return { method, path: `${path}${q}`, headers: extra, body: null, mutating: false };
});

/** Paths no route has, with any method: a mutation among them must still be refused. */
const adminNoRoute: fc.Arbitrary<HttpCase> = fc.record({
  method: fc.constantFrom(...methods),
  parts: fc.array(segment, { minLength: 0, maxLength: 6 }),
  lead: fc.constantFrom('/', '//', '/v1/', '/v1//', '///'),
  body: fc.option(fc.string({ maxLength: 100 }), { nil: null }),
}).map(({ method, parts, lead, body }) => ({
  method, path: `${lead}${parts.join('/')}`, headers: { 'content-type': 'application/json' }, body: method === 'GET' || method === 'HEAD' ? null : body,
  mutating: method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS',
})).filter((c) => !isRealAdminMutation(c));

function isRealAdminMutation(c: HttpCase): boolean {
  return /^\/v1\/(volumes|storage-classes|cluster|daemon|keys)(\/|$)/.test(c.path) && c.method !== 'GET' && c.method !== 'HEAD' && c.method !== 'OPTIONS';
}

export const adminCase: fc.Arbitrary<HttpCase> = fc.oneof({ weight: 5, arbitrary: adminMutation }, { weight: 3, arbitrary: adminRead }, { weight: 1, arbitrary: adminNoRoute });

// ---- data port ------------------------------------------------------------------------------------

/** What the data-port grammar may name: a volume that exists (so defects are tested on a real PG). */
export interface DataTargets { volumeId: string }

const concern = fc.oneof(fc.constantFrom('acknowledged', 'durable', 'replicated', 'distributed'), anyText.map(encodeURIComponent), badSegment);
const goodInt = fc.nat({ max: 64 }).map(String);

/** [inode, block, epoch] with at least one of them malformed. */
const intsWithDefect = fc.tuple(fc.oneof(goodInt, badInt), fc.oneof(goodInt, badInt), fc.oneof(goodInt, badInt), fc.nat({ max: 2 }), badInt)
  .map(([a, b, c, which, bad]) => { const v = [a, b, c]; v[which] = bad; return v as [string, string, string]; });

function blockWrite(t: DataTargets): fc.Arbitrary<HttpCase> {
  return fc.record({ method: fc.constantFrom('PUT', 'DELETE'), vol: fc.oneof(fc.constant(t.volumeId), segment), ints: intsWithDefect, c: concern, body: fc.uint8Array({ maxLength: 512 }) })
    .map(({ method, vol, ints: [inode, block, epoch], c, body }) => ({
      method, path: `/v1/blocks/${vol}/${inode}/${block}?epoch=${epoch}&concern=${c}`, headers: {}, body: method === 'PUT' ? Buffer.from(body) : null, mutating: true,
    }));
}

const replicateHeaderNames = ['x-galleon-volume', 'x-galleon-inode', 'x-galleon-block', 'x-galleon-pg', 'x-galleon-seq', 'x-galleon-epoch', 'x-galleon-op', 'x-galleon-primary'] as const;
function replicateOne(t: DataTargets): fc.Arbitrary<HttpCase> {
  return fc.record({
    which: fc.constantFrom(...replicateHeaderNames), drop: fc.boolean(), bad: fc.oneof(badInt, badSegment),
    op: fc.constantFrom('put', 'delete'), body: fc.uint8Array({ maxLength: 256 }),
  }).map(({ which, drop, bad, op, body }) => {
    const h: Record<string, string> = {
      'x-galleon-volume': t.volumeId, 'x-galleon-inode': '0', 'x-galleon-block': '0', 'x-galleon-pg': '0', 'x-galleon-seq': '1', 'x-galleon-epoch': '1', 'x-galleon-op': op, 'x-galleon-primary': '127.0.0.1:1',
    };
    // The defect: a header missing, or an integer/op/volume that is malformed.
    if (drop || which === 'x-galleon-primary') delete h[which];
    else h[which] = which === 'x-galleon-op' ? `${bad}x` : which === 'x-galleon-volume' ? '%zz' : bad;
    if (h[which] === '' ) delete h[which];
    return { method: 'POST', path: '/v1/replicate', headers: h, body: op === 'put' ? Buffer.from(body) : null, mutating: true };
  });
}

/** A batch body that can never decode: random bytes, or a real magic followed by a truncated frame. */
const badBatch = (magic: number): fc.Arbitrary<Buffer> => fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 60 }), fc.nat({ max: 59 })).map(([frame, cut]) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(magic, 0);
    // Frames have at least 30 fixed bytes: anything shorter than 30 after the magic is truncated.
    return Buffer.concat([head, Buffer.from(frame).subarray(0, Math.min(cut, 29))]);
  }).filter((b) => b.length > 4),
  fc.constant(Buffer.from([0x47, 0x42, 0x57])),
);

function batches(): fc.Arbitrary<HttpCase> {
  return fc.oneof(
    badBatch(BatchMagic.blockWrites).map((body) => ({ method: 'POST', path: '/v1/blocks-batch', headers: {}, body, mutating: true })),
    badBatch(BatchMagic.replicateOps).map((body) => ({ method: 'POST', path: '/v1/replicate-batch', headers: {}, body, mutating: true })),
  );
}

function peering(t: DataTargets): fc.Arbitrary<HttpCase> {
  return fc.record({ kind: fc.constantFrom('peer', 'catchup'), vol: fc.oneof(fc.constant(t.volumeId), segment), pg: fc.oneof(goodInt, badInt), epoch: badInt, swap: fc.boolean() })
    .map(({ kind, vol, pg, epoch, swap }) => {
      // Either pg or epoch is malformed; catch-up names an address nobody listens on.
      const [p, e] = swap ? [epoch === '' ? 'x' : epoch, '1'] : [pg, epoch];
      const primary = kind === 'catchup' ? '&primary=127.0.0.1:1' : '';
      return { method: 'POST', path: `/v1/${kind}/${vol}/${p}?epoch=${e}${primary}`, headers: {}, body: null, mutating: true };
    });
}

function dataReads(t: DataTargets): fc.Arbitrary<HttpCase> {
  return fc.record({
    template: fc.constantFrom('/v1/blocks/:/:/:', '/v1/block-head/:/:/:', '/v1/journal/:/:', '/v1/pg-blocks/:/:', '/v1/pgs', '/healthz', '/metrics', '/', '/v1/nope'),
    params: fc.array(fc.oneof(fc.constant(t.volumeId), segment, badInt, goodInt), { minLength: 3, maxLength: 3 }),
    q: query,
  }).map(({ template, params, q }) => {
    let i = 0;
    return { method: 'GET', path: `${template.replace(/:/g, () => params[i++] ?? 'x')}${q}`, headers: {}, body: null, mutating: false };
  });
}

/** POST /v1/block-range with a body its schema refuses (or a range across objects): a read that must be a one-line 4xx, never a 5xx. */
function rangeReads(t: DataTargets): fc.Arbitrary<HttpCase> {
  const across = fc.record({ inode: fc.nat({ max: 99 }), at: fc.integer({ min: 1, max: 63 }), extra: fc.integer({ min: 1, max: 63 }) })
    .map(({ inode, at, extra }) => JSON.stringify({ inode, from: 64 - at, count: Math.min(64, at + extra) }));
  return fc.record({ vol: fc.oneof(fc.constant(t.volumeId), segment), body: fc.oneof(refusedBy(rangeBody), across) })
    .map(({ vol, body }) => ({ method: 'POST', path: `/v1/block-range/${vol}`, headers: { 'content-type': 'application/json' }, body, mutating: true }));
}

const placementGarbage: fc.Arbitrary<HttpCase> = fc.oneof(fc.string({ maxLength: 100 }), jsonValue.map((v) => JSON.stringify(v) ?? 'null'))
  .map((body) => ({ method: 'PUT', path: '/v1/admin/placement', headers: { 'content-type': 'application/json' }, body, mutating: true }));

export function dataCase(t: DataTargets): fc.Arbitrary<HttpCase> {
  return fc.oneof(blockWrite(t), replicateOne(t), batches(), peering(t), dataReads(t), rangeReads(t), placementGarbage, adminNoRoute.map((c) => ({ ...c, mutating: c.method !== 'GET' && c.method !== 'HEAD' })));
}

// ---- metadata gRPC ----------------------------------------------------------------------------------

export interface GrpcCallCase { kind: 'call'; method: string; args: string; client_id: string; seq: number; stale: boolean; mutating: boolean }
export interface GrpcRawCase { kind: 'raw'; path: string; bytes: Buffer }
export interface RaftCase { kind: 'raft'; frames: { from: string; batch: Buffer; from_address: string }[] }
export type GrpcCase = GrpcCallCase | GrpcRawCase | RaftCase;

const commandMethods = ['createStorageClass', 'deleteStorageClass', 'createVolume', 'updateVolumeLabels', 'expandVolume', 'deleteVolume', 'registerDataNode', 'heartbeatDataNode', 'acquireLease', 'renewLease', 'releaseLease', 'claimPgPrimary', 'markPgReplicaOutOfSync'];
const queryMethods = ['getStorageClass', 'listStorageClasses', 'getVolume', 'listVolumes', 'listDataNodes', 'getPlacement', 'clusterStatus'];
const clusterMutations = ['addMember', 'promoteMember', 'removeMember', 'transferLeadership'];
const notAnArray = fc.oneof(fc.string({ maxLength: 60 }), jsonValue.filter((v) => !Array.isArray(v)).map((v) => JSON.stringify(v) ?? 'null'));
const anyArgs = fc.oneof(notAnArray, fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 4 }).map((a) => JSON.stringify(a)));
/** Cluster-method arguments whose first or second item is not a non-empty string (refused by `str`). */
const badMemberArgs = fc.tuple(fc.oneof(fc.constant(''), fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })), fc.jsonValue({ maxDepth: 1 }), fc.boolean())
  .map(([bad, other]) => JSON.stringify([bad, other]));

const grpcCall: fc.Arbitrary<GrpcCallCase> = fc.oneof(
  // Commands: the args are not an array, or the client id / seq is missing — each refused before any proposal.
  fc.record({ method: fc.constantFrom(...commandMethods), defect: fc.constantFrom('args', 'client', 'seq'), args: notAnArray, anyArgs, seq: fc.nat() })
    .map(({ method, defect, args, anyArgs: a, seq }) => ({
      kind: 'call' as const, method, args: defect === 'args' ? args : a, client_id: defect === 'client' ? '' : 'fuzz-client', seq: defect === 'seq' ? 0 : seq + 1, stale: false, mutating: true,
    })),
  fc.record({ method: fc.constantFrom(...clusterMutations), args: fc.oneof(notAnArray, badMemberArgs) })
    .map(({ method, args }) => ({ kind: 'call' as const, method, args, client_id: 'fuzz-client', seq: 1, stale: false, mutating: true })),
  fc.record({ method: fc.constantFrom(...queryMethods), args: anyArgs, stale: fc.boolean() })
    .map(({ method, args, stale }) => ({ kind: 'call' as const, method, args, client_id: '', seq: 0, stale, mutating: false })),
  fc.record({ method: fc.string({ maxLength: 40 }).filter((m) => ![...commandMethods, ...queryMethods, ...clusterMutations].includes(m)), args: anyArgs })
    .map(({ method, args }) => ({ kind: 'call' as const, method, args, client_id: 'fuzz-client', seq: 1, stale: false, mutating: true })),
);

/** Bytes that are not a valid protobuf of the method's request (or are, by chance: then they are decoded garbage). */
const grpcRaw: fc.Arbitrary<GrpcRawCase> = fc.record({
  path: fc.constantFrom('/galleon.metadata.Metadata/Call', '/galleon.metadata.Metadata/Nope', '/nope.Service/Call', '/galleon.raft.RaftTransport/Stream', '/galleon.raft.RaftTransport/InstallSnapshot'),
  bytes: fc.uint8Array({ maxLength: 200 }),
}).filter((c) => c.path !== '/galleon.metadata.Metadata/Call' || !decodesAsMutation(Buffer.from(c.bytes))).map((c) => ({ kind: 'raw' as const, path: c.path, bytes: Buffer.from(c.bytes) }));

/** Conservative: a random byte string that starts with the tag of field 2 (method) might name a command. */
function decodesAsMutation(b: Buffer): boolean {
  return b.includes(0x12);
}

/** A raft batch whose header is malformed (never a well-formed message from a member). */
const badRaftBatch: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
  fc.array(fc.record({
    y: fc.oneof(fc.constantFrom('vote', 'app', 'heartbeat', 'snap', 'nope', ''), fc.integer()),
    f: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    t: fc.oneof(fc.string({ maxLength: 8 }), fc.constant(null)),
    e: fc.oneof(fc.constant(-1), fc.constant('7'), fc.double(), fc.constant(null)),
    lt: fc.jsonValue({ maxDepth: 1 }), i: fc.jsonValue({ maxDepth: 1 }), c: fc.jsonValue({ maxDepth: 1 }),
    n: fc.oneof(fc.constant(1e9), fc.constant(-1), fc.nat({ max: 3 })),
  }), { minLength: 1, maxLength: 3 }).map((msgs) => {
    const header = Buffer.from(JSON.stringify(msgs));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(header.length, 0);
    return Buffer.concat([len, header]);
  }),
);

const raftStream: fc.Arbitrary<RaftCase> = fc.array(fc.record({ from: fc.string({ maxLength: 12 }), batch: badRaftBatch, from_address: fc.constantFrom('', 'x', '127.0.0.1:1') }), { minLength: 1, maxLength: 4 })
  .map((frames) => ({ kind: 'raft' as const, frames }));

export const grpcCase: fc.Arbitrary<GrpcCase> = fc.oneof({ weight: 6, arbitrary: grpcCall }, { weight: 2, arbitrary: grpcRaw }, { weight: 1, arbitrary: raftStream });

/** Bytes that are not HTTP (nor HTTP/2) at all, or HTTP broken mid-way. */
export const tcpGarbage: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 400 }).map((b) => Buffer.from(b)),
  fc.constantFrom('GET / HTTP/9.9\r\n\r\n', 'GET\r\n\r\n', '\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n', 'GET / HTTP/1.1\r\nBad Header\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\ngarbage')
    .map((s) => Buffer.from(s, 'latin1')),
);
