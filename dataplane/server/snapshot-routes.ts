/**
 * The data node's snapshot routes (issue #11), apart from the block server's own so that the
 * replication files stay untouched:
 *   GET  /v1/versions/:volume/:inode/:block?below=CUT&epoch=E  the block as of a cut (primary only)
 *        200 with the body, or 200 empty with `x-galleon-version: absent|deleted`, the PG's
 *        watermark (read first) and a tombstone's seq (`x-galleon-deleted-seq`): issue #12
 *   GET  /v1/volume-blocks/:volume                              addresses with a live or kept entry
 *   GET  /v1/volume-versions/:volume                            kept versions here (tests, `snapshot get`)
 *   POST /v1/prune {volumeId, cuts, horizon, dryRun?}            drop versions no cut needs (paced)
 *   POST /v1/fence/:volume                                       record the PG epochs the metadata service shows now
 */
import type http from 'node:http';
import { z } from 'zod';
import { GalleonError } from '../../proto/errors.js';
import type { BlockAddress, BlockStore } from '../store/types.js';
import { isVersionedStore } from '../store/versions.js';
import type { PruneResult, VersionedStore } from '../store/versions.js';
import { Header, intParam } from '../wire.js';
import type { VolumePlacement } from '../placement.js';

export const versionHeader = 'x-galleon-version';
/** The routes handled here (a set lookup keeps the block server's hot path free of an await). */
export const snapshotRoutes: ReadonlySet<string> = new Set([
  'GET /v1/versions', 'GET /v1/volume-blocks', 'GET /v1/volume-versions', 'POST /v1/prune', 'POST /v1/fence',
]);
/** A prune request body: the cut list of one volume. */
export const maxPruneBodyBytes = 256 * 1024;
/** Addresses listed per volume-blocks answer at most (a backup of a bigger volume pages by PG: not yet). */
export const maxListedAddresses = 4_000_000;

const pruneBody = z.object({
  volumeId: z.string().min(1).max(255),
  cuts: z.array(z.number().int().nonnegative()).max(100_000),
  horizon: z.number().int().nonnegative(),
  dryRun: z.boolean().optional(),
}).strict();

export interface SnapshotRouteHost {
  store: BlockStore;
  nodeId: string;
  /** The volume's placement read again from the metadata service (not the cache). */
  freshPlacement(volumeId: string): Promise<VolumePlacement>;
  /** The PG of an address under this node's placement. */
  pgOf(address: BlockAddress): Promise<number>;
  /** Refuses unless this node is the PG's primary at `epoch` (as for ordinary reads). */
  admitPrimaryRead(address: BlockAddress, epoch: number): Promise<void>;
  readJson(req: http.IncomingMessage, maxBytes: number): Promise<unknown>;
}

function versioned(store: BlockStore): VersionedStore {
  if (!isVersionedStore(store)) throw new GalleonError('FAILED_PRECONDITION', 'this data node\'s store keeps no block versions', { hint: 'snapshots need the LevelDB block store' });
  return store;
}

function addressOf(parts: readonly string[]): BlockAddress {
  const [, , volumeId, inode, blockNo] = parts;
  if (volumeId === undefined || parts.length !== 5) throw new GalleonError('INVALID_ARGUMENT', 'path is /v1/versions/:volume/:inode/:block');
  return { volumeId, inode: intParam('inode', inode), blockNo: intParam('block', blockNo) };
}

/** Handles the route and returns true, or returns false when it is not a snapshot route. */
export async function handleSnapshotRoute(host: SnapshotRouteHost, route: string, parts: readonly string[], query: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
  switch (route) {
    case 'GET /v1/versions': {
      const address = addressOf(parts);
      const below = intParam('below', query.get('below'));
      const epochRaw = query.get('epoch');
      if (epochRaw !== null) await host.admitPrimaryRead(address, intParam('epoch', epochRaw));
      // The watermark first, as for a block head: a reader of an encrypted volume judges an absence against the other replicas.
      // A node that no longer places the volume (diagnostics of a departed copy) answers without it.
      const appliedSeq = await host.pgOf(address).then((pg) => host.store.pgState(address.volumeId, pg)).then((s) => s.appliedSeq, () => null);
      const r = await versioned(host.store).readBelow(address, below);
      if (r.kind !== 'block') {
        const deleted = r.kind === 'deleted' ? { [Header.epoch]: r.epoch, [Header.deletedSeq]: r.seq } : {};
        res.writeHead(200, { 'content-length': 0, [versionHeader]: r.kind, ...(appliedSeq === null ? {} : { [Header.appliedSeq]: appliedSeq }), ...deleted });
        res.end();
        return true;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream', 'content-length': r.block.data.length, [versionHeader]: 'block',
        [Header.seq]: r.block.seq, [Header.epoch]: r.block.epoch, [Header.pg]: r.block.pg,
      });
      res.end(r.block.data);
      return true;
    }
    case 'GET /v1/volume-blocks': {
      const volumeId = parts[2];
      if (volumeId === undefined || parts.length !== 3) throw new GalleonError('INVALID_ARGUMENT', 'path is /v1/volume-blocks/:volume');
      const out: [number, number][] = [];
      for await (const a of versioned(host.store).iterateVersionedAddresses(volumeId)) {
        if (out.length >= maxListedAddresses) throw new GalleonError('OUT_OF_RANGE', `volume ${volumeId} has more than ${maxListedAddresses} blocks here`, { hint: 'list it per PG (not implemented yet)' });
        out.push([a.inode, a.blockNo]);
      }
      json(res, { blocks: out });
      return true;
    }
    case 'POST /v1/fence': {
      // After a snapshot or restore command moved the volume's PGs to a new epoch: record it now,
      // so a write still carrying the old epoch is refused (STALE_EPOCH) from here on, not taken
      // into the snapshot. The epoch comes from the metadata service itself, never the caller.
      const volumeId = parts[2];
      if (volumeId === undefined || parts.length !== 3) throw new GalleonError('INVALID_ARGUMENT', 'path is /v1/fence/:volume');
      const p = await host.freshPlacement(volumeId);
      let fenced = 0;
      for (const g of p.groups) {
        if (!g.replicas.includes(host.nodeId)) continue;
        await host.store.observeEpoch(volumeId, g.pg, g.epoch);
        fenced++;
      }
      json(res, { fenced });
      return true;
    }
    case 'GET /v1/volume-versions': {
      const volumeId = parts[2];
      if (volumeId === undefined || parts.length !== 3) throw new GalleonError('INVALID_ARGUMENT', 'path is /v1/volume-versions/:volume');
      const versions = await versioned(host.store).listVersions(volumeId);
      if (versions.length > maxListedAddresses) throw new GalleonError('OUT_OF_RANGE', `volume ${volumeId} has more than ${maxListedAddresses} kept versions here`);
      json(res, { versions: versions.map((v) => [v.address.inode, v.address.blockNo, v.epoch, v.seq]) });
      return true;
    }
    case 'POST /v1/prune': {
      let raw: unknown;
      try {
        raw = await host.readJson(req, maxPruneBodyBytes);
      } catch (err) {
        if (err instanceof GalleonError) throw err;
        throw new GalleonError('INVALID_ARGUMENT', 'prune body is not JSON', { hint: 'send {volumeId, cuts, horizon, dryRun?}' });
      }
      const parsed = pruneBody.safeParse(raw);
      if (!parsed.success) throw new GalleonError('INVALID_ARGUMENT', `prune body: ${parsed.error.issues[0]?.message ?? 'wrong shape'}`, { hint: 'send {volumeId, cuts, horizon, dryRun?}' });
      const b = parsed.data;
      const result: PruneResult = await versioned(host.store).pruneVersions(b.volumeId, { cuts: b.cuts, horizon: b.horizon, dryRun: b.dryRun ?? false });
      json(res, result);
      return true;
    }
    default:
      return false;
  }
}

function json(res: http.ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
