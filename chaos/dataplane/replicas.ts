/**
 * Looks at what each data node holds, through the nodes' own read-only routes (`GET /v1/pgs`
 * for watermarks, `GET /v1/pg-blocks/:volume/:pg` for every live block of a PG): the settle
 * condition and the per-PG digests compared across replicas.
 */
import { crc32c } from '@node-rs/crc32';
import { Agent, request, type Dispatcher } from 'undici';
import type { PgState } from '../../dataplane/store/types.js';
import { httpUrl, undiciConnectOptions } from '../../proto/tls.js';
import { readTlsDir } from '../../proto/tls.js';
import type { ChaosPki } from '../cluster/pki.js';
import { streamJournalFrames, type JournalFrameMeta } from '../../dataplane/wire.js';
import { decodeBlock } from './content.js';

export const inspectTimeoutMs = 10_000;

/**
 * How the harness reaches a data node's node-only routes. Under mutual TLS a node certificate
 * speaks only for its own node (dataplane/server/README.md): a PG's blocks are read with the
 * certificate of a replica of that PG, a catch-up nudge or a forged forward is sent with the
 * primary's. So every request names the node it acts as.
 */
export interface NodeAccess {
  url(address: string): string;
  as(nodeId: string): Promise<{ dispatcher?: Dispatcher }>;
  close(): Promise<void>;
}

export function nodeAccess(pki: ChaosPki | null): NodeAccess {
  const agents = new Map<string, Promise<Agent>>();
  return {
    url: (address) => httpUrl(address, pki === null ? null : pki.client),
    as: async (nodeId) => {
      if (pki === null) return {};
      let a = agents.get(nodeId);
      if (a === undefined) {
        a = pki.dirOf(nodeId).then(readTlsDir).then((tls) => new Agent({ connect: { ...undiciConnectOptions(tls), timeout: inspectTimeoutMs } }));
        agents.set(nodeId, a);
      }
      return { dispatcher: await a };
    },
    close: async () => { await Promise.all([...agents.values()].map(async (a) => (await a).close())); },
  };
}

export async function fetchPgStates(address: string, access: NodeAccess, asNode: string): Promise<PgState[]> {
  const res = await request(`${access.url(address)}/v1/pgs`, { ...await access.as(asNode), headersTimeout: inspectTimeoutMs, bodyTimeout: inspectTimeoutMs });
  if (res.statusCode !== 200) throw new Error(`GET /v1/pgs on ${address} answered ${res.statusCode}: ${await res.body.text()}`);
  return (await res.body.json()) as PgState[];
}

/** One entry of a block as a node holds it: live or kept for snapshots; `crc` null for a tombstone. */
export interface StampedEntry { epoch: number; seq: number; crc: number | null; value: string | null }

/** One replica's view of one PG: block key → the value it carries (see content.ts) and a crc of the body. */
export interface PgContents {
  blocks: Map<string, { value: string; crc: number; seq: number }>;
  /** crc32c over the sorted block list: equal digests ⇔ identical blocks (up to crc collisions). */
  digest: string;
  /** Per block key, every entry the node holds: the live one (body or tombstone) and the kept versions. */
  entries: Map<string, StampedEntry[]>;
}

/**
 * `asNode`: a replica of the PG (the node read itself is one). `blocks` and `digest` are the live
 * blocks only: the route then sends the versions the node keeps for snapshots (`kept`) and its
 * live tombstones, and a kept version taken for the live block made replicas whose kept versions
 * differ (pruned at different times; not live data) look divergent. Those are in `entries`, for
 * the comparison of reads at cuts (`diffAtCuts`).
 */
export async function fetchPgContents(address: string, volumeId: string, pg: number, access: NodeAccess, asNode: string): Promise<PgContents> {
  const res = await request(`${access.url(address)}/v1/pg-blocks/${encodeURIComponent(volumeId)}/${pg}`, { ...await access.as(asNode), headersTimeout: inspectTimeoutMs, bodyTimeout: inspectTimeoutMs });
  if (res.statusCode !== 200) throw new Error(`GET /v1/pg-blocks on ${address} answered ${res.statusCode}: ${await res.body.text()}`);
  return contentsOf(streamJournalFrames(res.body), `GET /v1/pg-blocks on ${address}`);
}

/** A PG's contents from the frames of a full resync (`GET /v1/pg-blocks`, `pgBlockFrames`); `from` names the source in errors. */
export async function contentsOf(frames: AsyncIterable<{ meta: JournalFrameMeta; data: Buffer }> | Iterable<{ meta: JournalFrameMeta; data: Buffer }>, from: string): Promise<PgContents> {
  const blocks = new Map<string, { value: string; crc: number; seq: number }>();
  const entries = new Map<string, StampedEntry[]>();
  for await (const { meta, data } of frames) {
    const key = `${meta.inode}/${meta.blockNo}`;
    const put = meta.kind === 'put';
    entries.set(key, [...entries.get(key) ?? [], { epoch: meta.epoch, seq: meta.seq, crc: put ? crc32c(data) : null, value: put ? decodeBlock(data) : null }]);
    if (meta.kept === true || !put) continue;
    if (blocks.has(key)) throw new Error(`${from} sent live block ${key} twice`);
    blocks.set(key, { value: decodeBlock(data), crc: crc32c(data), seq: meta.seq });
  }
  const canonical = [...blocks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}:${v.crc}`).join(',');
  return { blocks, digest: crc32c(canonical).toString(16).padStart(8, '0'), entries };
}

/** What a read at cut `cut` (every write of an epoch below it) sees among a block's entries: the newest such, or null. */
export function visibleAt(entries: readonly StampedEntry[], cut: number): StampedEntry | null {
  let best: StampedEntry | null = null;
  for (const e of entries) if (e.epoch < cut && (best === null || e.epoch > best.epoch || (e.epoch === best.epoch && e.seq > best.seq))) best = e;
  return best;
}

/**
 * Blocks that read differently at one of `cuts` on two replicas (a snapshot at that cut would
 * change on failover). Sound only at cuts no prune may have touched: a prune drops the versions
 * no retained cut needs, at its own time on each node. A tombstone reads as nothing, like an
 * absent block: the reclaimer purges tombstones without versions on each node's own schedule.
 */
export function diffAtCuts(a: PgContents, b: PgContents, cuts: readonly number[]): string[] {
  const out: string[] = [];
  const show = (e: StampedEntry | null): string => (e?.crc == null ? 'nothing' : `${e.value ?? ''}@${e.epoch}/${e.seq}`);
  for (const k of new Set([...a.entries.keys(), ...b.entries.keys()])) {
    for (const cut of cuts) {
      const x = visibleAt(a.entries.get(k) ?? [], cut);
      const y = visibleAt(b.entries.get(k) ?? [], cut);
      if ((x?.crc ?? null) !== (y?.crc ?? null)) out.push(`${k} at cut ${cut}: ${show(x)} vs ${show(y)}`);
    }
  }
  return out.sort();
}

/** Blocks where two replicas differ: missing on one side or different bodies. */
export function diffContents(a: PgContents, b: PgContents): string[] {
  const keys = new Set([...a.blocks.keys(), ...b.blocks.keys()]);
  const out: string[] = [];
  for (const k of keys) {
    const x = a.blocks.get(k);
    const y = b.blocks.get(k);
    if (x?.crc !== y?.crc) out.push(`${k}: ${x === undefined ? 'absent' : `${x.value}@${x.seq}`} vs ${y === undefined ? 'absent' : `${y.value}@${y.seq}`}`);
  }
  return out.sort();
}
