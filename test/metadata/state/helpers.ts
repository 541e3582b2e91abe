/** A small harness: a real state machine in a temp dir, fed records the way the Raft driver would. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ErrorCode } from '../../../proto/errors.js';
import type { DataNode, PgReport, PlacementGroup, Volume } from '../../../proto/metadata-types.js';
import type { AppliedRecord, CommandResult, StateMachine } from '../../../metadata/state/contract.js';
import { openStateMachine } from '../../../metadata/state/index.js';

export const t0 = 1_700_000_000_000;

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'galleon-state-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Feeds commands with increasing index and seq; the clock is whatever the test sets. */
export class Feeder {
  index: number;
  seq = 0;
  stampMs = t0;
  readonly log: AppliedRecord[] = [];

  constructor(public sm: StateMachine, public clientId = 'client-a') {
    this.index = sm.appliedIndex();
  }

  record(method: string, args: unknown[], opts: { clientId?: string; seq?: number } = {}): AppliedRecord {
    this.index += 1;
    const seq = opts.seq ?? (this.seq += 1);
    const r: AppliedRecord = {
      index: this.index,
      kind: 'command',
      command: { clientId: opts.clientId ?? this.clientId, seq, stampMs: this.stampMs, method: method as never, args },
    };
    this.log.push(r);
    return r;
  }

  async run(method: string, ...args: unknown[]): Promise<CommandResult> {
    const [result] = await this.sm.apply([this.record(method, args)]);
    assert.ok(result !== undefined);
    return result;
  }

  /** Runs a command that must succeed and returns its value. */
  async ok<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    const r = await this.run(method, ...args);
    if (!r.ok) assert.fail(`${method} failed: ${r.error.code} ${r.error.message}`);
    return r.value as T;
  }

  /** Runs a command that must fail with `code`; returns the error (message and hint checked non-empty). */
  async fails(code: ErrorCode, method: string, ...args: unknown[]): Promise<{ message: string; hint?: string }> {
    const r = await this.run(method, ...args);
    if (r.ok) assert.fail(`${method} succeeded, expected ${code}: ${JSON.stringify(r.value)}`);
    assert.equal(r.error.code, code, r.error.message);
    assert.ok(r.error.message.length > 0 && !r.error.message.includes('\n'));
    assert.ok((r.error.hint ?? '').length > 0, `no hint on ${code}`);
    return r.error;
  }
}

export async function openTemp(): Promise<{ dir: string; sm: StateMachine }> {
  const dir = await tempDir();
  return { dir, sm: await openStateMachine(dir) };
}

/**
 * A real state machine in a temp dir for each test of the enclosing `describe` (opened before,
 * closed and removed after, even on failure). `opened` gets it and a Feeder; call this before
 * the describe's own `beforeEach`, which then runs against the fresh machine.
 */
export function useStateMachine(opened: (sm: StateMachine, f: Feeder) => void): void {
  let dir: string | undefined;
  let sm: StateMachine | undefined;
  beforeEach(async () => {
    ({ dir, sm } = await openTemp());
    opened(sm, new Feeder(sm));
  });
  afterEach(async () => {
    await sm?.close();
    sm = undefined;
    if (dir !== undefined) await removeDir(dir);
  });
}

/** Registers `count` data nodes named n1.. spread round-robin over `zones`. */
export async function addNodes(f: Feeder, count: number, zones = ['zone-a', 'zone-b', 'zone-c'], capacityBytes = 2 ** 40): Promise<void> {
  for (let i = 1; i <= count; i += 1) {
    await f.ok('registerDataNode', { id: `n${i}`, address: `127.0.0.1:${9000 + i}`, zone: zones[(i - 1) % zones.length], capacityBytes });
  }
}

/**
 * Every registered node heartbeats (at the feeder's stamp) a report of each PG it is a replica of,
 * at the PG's current epoch and `appliedSeq` (0: an empty PG), as caught-up replicas and their
 * primaries do: what markPgReplicaInSync checks before it takes a replica back in sync.
 */
export async function reportCaughtUp(f: Feeder, sm: StateMachine, appliedSeq = 0): Promise<void> {
  const reports = new Map<string, PgReport[]>();
  for (const v of await sm.query('listVolumes', []) as Volume[]) {
    for (const g of await sm.query('getPlacement', [v.id]) as PlacementGroup[]) {
      for (const id of g.replicas) reports.set(id, [...(reports.get(id) ?? []), { volumeId: v.id, pg: g.pg, epoch: g.epoch, appliedSeq }]);
    }
  }
  for (const n of await sm.query('listDataNodes', []) as DataNode[]) await f.ok('heartbeatDataNode', n.id, 0, reports.get(n.id) ?? []);
}
