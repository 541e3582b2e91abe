/**
 * After healing: waits (polling, with a deadline) until every data node is up in the metadata
 * service and every replica of every PG of the volume has caught up with its primary — no
 * open gap (applied = highest seq) and applied ≥ the primary's applied seq.
 *
 * A replica that came back after the last write to a PG has nothing that tells it it is behind
 * (gaps are only noticed when the next write arrives). After `nudgeAfterMs` the harness asks
 * such a replica to pull from its primary's journal (`POST /v1/catchup`, the node's own
 * catch-up path, sent in the primary's name: a node takes it only from the primary's host and
 * pulls only from the primary's registered address); every nudge is counted and printed so a run shows how much help it needed.
 *
 * A PG whose node was declared down got a replacement replica when another node was free, or
 * gets the node back (re-replication) when it returns. This wait only counts PGs short of
 * replicas; the run's own final check (dataplane-chaos.ts) waits, bounded, for every PG to have
 * its full replica set in sync and fails otherwise.
 */
import { request } from 'undici';
import type { PgState } from '../../dataplane/store/types.js';
import type { PlacementGroup } from '../../proto/metadata-types.js';
import type { ChaosClient } from '../cluster/client.js';
import type { DataNodes } from '../cluster/data-nodes.js';
import { delay, withTimeout } from '../lib/wait.js';
import { fetchPgStates, inspectTimeoutMs, type NodeAccess } from './replicas.js';

export interface SettleOptions {
  api: ChaosClient;
  data: DataNodes;
  /** How the node-only routes are reached (TLS: as which node). */
  access: NodeAccess;
  volumeId: string;
  /** The volume's replica count: PGs with fewer are counted (the caller waits for them). */
  replicas: number;
  timeoutMs: number;
  /** 0 disables nudging. */
  nudgeAfterMs: number;
  pollMs: number;
  log: (line: string) => void;
}

export interface SettleResult {
  settled: boolean;
  elapsedMs: number;
  nudges: number;
  groups: PlacementGroup[];
  /** What still kept the cluster from settling at the deadline. */
  problems: string[];
  underReplicated: number;
}

export async function settle(o: SettleOptions): Promise<SettleResult> {
  const started = Date.now();
  let nudges = 0;
  let problems: string[] = ['not checked yet'];
  let groups: PlacementGroup[] = [];
  while (Date.now() - started < o.timeoutMs) {
    try {
      const nodes = await withTimeout(o.api.listDataNodes(), inspectTimeoutMs);
      groups = [...await withTimeout(o.api.getPlacement(o.volumeId), inspectTimeoutMs)].sort((a, b) => a.pg - b.pg);
      problems = nodes.filter((n) => n.state !== 'up').map((n) => `data node ${n.id} is ${n.state}`);
      const states = new Map<string, Map<number, PgState>>();
      for (const n of o.data.nodes) {
        const list = await fetchPgStates(n.address, o.access, n.id);
        states.set(n.id, new Map(list.filter((s) => s.volumeId === o.volumeId).map((s) => [s.pg, s])));
      }
      const stateOf = (node: string, pg: number): { appliedSeq: number; highestSeq: number } => states.get(node)?.get(pg) ?? { appliedSeq: 0, highestSeq: 0 };
      const lagging: { group: PlacementGroup; replica: string }[] = [];
      for (const g of groups) {
        const primary = stateOf(g.primary, g.pg);
        for (const r of g.replicas) {
          const s = stateOf(r, g.pg);
          if (s.appliedSeq !== s.highestSeq || s.appliedSeq < primary.appliedSeq) {
            lagging.push({ group: g, replica: r });
            problems.push(`pg ${g.pg} replica ${r}: applied ${s.appliedSeq}, highest ${s.highestSeq}, primary ${g.primary} applied ${primary.appliedSeq}`);
          }
        }
      }
      if (problems.length === 0) return { settled: true, elapsedMs: Date.now() - started, nudges, groups, problems, underReplicated: underReplicated(groups, o.replicas) };
      if (o.nudgeAfterMs > 0 && Date.now() - started >= o.nudgeAfterMs) {
        for (const { group, replica } of lagging) {
          if (replica === group.primary) continue;
          nudges++;
          await nudge(o.data.node(replica).address, o.volumeId, group, o.access).catch((err: unknown) => {
            o.log(`nudge of ${replica} pg ${group.pg} failed: ${err instanceof Error ? err.message : String(err)}`);
          });
        }
      }
    } catch (err) {
      problems = [`cluster not answering: ${err instanceof Error ? err.message : String(err)}`];
    }
    await delay(o.pollMs);
  }
  return { settled: false, elapsedMs: Date.now() - started, nudges, groups, problems, underReplicated: underReplicated(groups, o.replicas) };
}

function underReplicated(groups: readonly PlacementGroup[], replicas: number): number {
  return groups.filter((g) => g.replicas.length < replicas).length;
}

/** Sent as the primary (`from`): under TLS with its certificate. */
async function nudge(replicaAddress: string, volumeId: string, group: PlacementGroup, access: NodeAccess): Promise<void> {
  const res = await request(`${access.url(replicaAddress)}/v1/catchup/${encodeURIComponent(volumeId)}/${group.pg}?from=${encodeURIComponent(group.primary)}&epoch=${group.epoch}`, {
    ...await access.as(group.primary), method: 'POST', headersTimeout: inspectTimeoutMs, bodyTimeout: inspectTimeoutMs,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`answered ${res.statusCode}: ${text}`);
}
