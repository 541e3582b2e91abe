/**
 * Applying committed records to a Tx: dedupe by (clientId, seq), run the command in a child Tx
 * so a failure changes nothing, record the result, keep the applied index. Pure: the only input
 * besides the records is `deriveId`, itself a pure function of its argument.
 */
import { ErrorCode, GalleonError, invariant, isGalleonError } from '../../../proto/errors.js';
import type { AppliedRecord, Command, CommandResult, MemberRecord } from '../contract.js';
import { builtInStorageClasses } from './storage-classes.js';
import { executeCommand, type CommandContext } from './commands.js';
import { MissingKeys, Table, Tx, type StateReader } from './tx.js';

/** Results kept per client: enough for a client that pipelines this many commands. */
export const maxResultsPerClient = 32;
/** A client silent this long (by leader stamps) is forgotten: its retries would be years late. */
export const clientIdleForgetMs = 6 * 60 * 60 * 1000;
/** How often (by leader stamps) the client table is swept. */
export const clientSweepIntervalMs = 60 * 1000;

export const metaApplied = 'applied';
const metaClientSweepAtMs = 'clientSweepAtMs';

interface ClientSession {
  lastStampMs: number;
  /** Ascending by seq, at most maxResultsPerClient. */
  results: [seq: number, result: CommandResult][];
}

export function appliedIndexOf(r: StateReader): number {
  return r.get<number>(Table.Meta, metaApplied) ?? 0;
}

/** Writes the built-in classes into a store that has never applied anything. */
export function seedBuiltIns(tx: Tx): void {
  for (const sc of builtInStorageClasses()) {
    if (tx.get(Table.StorageClass, sc.name) === undefined) tx.put(Table.StorageClass, sc.name, sc);
  }
}

export function applyRecord(tx: Tx, record: AppliedRecord, deriveId: (seed: string) => string): CommandResult {
  const applied = appliedIndexOf(tx);
  invariant(Number.isSafeInteger(record.index) && record.index === applied + 1,
    `record ${record.index} applied after ${applied} (records must come in order, without gaps)`);
  tx.put(Table.Meta, metaApplied, record.index);
  switch (record.kind) {
    case 'noop':
      return { ok: true, value: null };
    case 'member':
      applyMember(tx, record);
      return { ok: true, value: null };
    case 'command':
      return applyCommand(tx, record.index, record.command, deriveId);
  }
}

function applyMember(tx: Tx, record: Extract<AppliedRecord, { kind: 'member' }>): void {
  if (record.change === 'remove-node') {
    tx.del(Table.Member, record.memberId);
    return;
  }
  const old = tx.get<MemberRecord>(Table.Member, record.memberId);
  const address = record.address ?? old?.address;
  // A promotion of a member we never saw added carries nothing to record; an add must say where.
  if (address === undefined && record.change === 'promote-learner') return;
  invariant(address !== undefined && address !== null, `member ${record.memberId} added without an address`);
  const member: MemberRecord = { id: record.memberId, address, adminAddress: record.adminAddress ?? old?.adminAddress ?? null };
  tx.put(Table.Member, member.id, member);
}

function applyCommand(tx: Tx, index: number, command: Command, deriveId: (seed: string) => string): CommandResult {
  invariant(Number.isFinite(command.stampMs), `command ${command.method} has no leader stamp`);
  sweepIdleClients(tx, command.stampMs);
  if (typeof command.clientId !== 'string' || command.clientId.length === 0 || !Number.isSafeInteger(command.seq) || command.seq < 1) {
    return failure(new GalleonError(ErrorCode.INVALID_ARGUMENT, `command ${command.method} has no valid (clientId, seq)`,
      { hint: 'stamp every command with a client id and a sequence number from 1' }));
  }
  const session = tx.get<ClientSession>(Table.Client, command.clientId) ?? { lastStampMs: command.stampMs, results: [] };
  const earlier = session.results.find(([seq]) => seq === command.seq);
  if (earlier !== undefined) return earlier[1];
  const oldest = session.results[0];
  if (session.results.length >= maxResultsPerClient && oldest !== undefined && command.seq < oldest[0]) {
    // Either applied and forgotten, or never applied: neither may be applied now.
    return failure(new GalleonError(ErrorCode.FAILED_PRECONDITION,
      `command ${command.clientId}#${command.seq} is older than the ${maxResultsPerClient} results kept for its client`,
      { hint: 'the command may have been applied already; read the state before retrying with a new sequence number' }));
  }
  const ctx: CommandContext = {
    stampMs: command.stampMs,
    clientId: command.clientId,
    seq: command.seq,
    // The log index makes the seed unique even if a forgotten client reuses a seq: a retry never
    // gets here (the session answers it), so ids stay stable for the same command.
    newId: (tag) => deriveId(`${index}:${command.clientId}:${command.seq}:${tag}`),
  };
  const child = new Tx(tx);
  let result: CommandResult;
  try {
    result = { ok: true, value: executeCommand(child, ctx, command.method, command.args) ?? null };
    child.commitTo(tx);
  } catch (err) {
    // Not a failure: the shell fetches the cold state asked for and runs the record again.
    if (err instanceof MissingKeys) throw err;
    // A validation failure is part of the replicated outcome; anything else is a bug and must stop us.
    if (!isGalleonError(err)) {
      throw new GalleonError(ErrorCode.INVARIANT_VIOLATION,
        `invariant violated: ${command.method} (${command.clientId}#${command.seq}) threw ${err instanceof Error ? err.message : String(err)}`,
        { cause: err });
    }
    if (err.code === ErrorCode.INVARIANT_VIOLATION || err.code === ErrorCode.INTERNAL) throw err;
    result = failure(err);
  }
  const results = [...session.results, [command.seq, result] as [number, CommandResult]]
    .sort((a, b) => a[0] - b[0])
    .slice(-maxResultsPerClient);
  tx.put(Table.Client, command.clientId, { lastStampMs: Math.max(session.lastStampMs, command.stampMs), results } satisfies ClientSession);
  return result;
}

function failure(err: GalleonError): CommandResult {
  return { ok: false, error: err.toJSON() };
}

/** Forgets idle clients, at most once per sweep interval: the trigger is state, so all replicas agree. */
function sweepIdleClients(tx: Tx, stampMs: number): void {
  const last = tx.get<number>(Table.Meta, metaClientSweepAtMs) ?? 0;
  if (stampMs < last + clientSweepIntervalMs) return;
  tx.put(Table.Meta, metaClientSweepAtMs, stampMs);
  for (const id of tx.ids(Table.Client)) {
    const s = tx.get<ClientSession>(Table.Client, id);
    if (s !== undefined && s.lastStampMs + clientIdleForgetMs <= stampMs) tx.del(Table.Client, id);
  }
}

/** What a record at or below the applied index answers: its remembered result when it had one. */
export function resultOfApplied(r: StateReader, record: AppliedRecord): CommandResult {
  if (record.kind !== 'command') return { ok: true, value: null };
  const session = r.get<ClientSession>(Table.Client, record.command.clientId);
  const earlier = session?.results.find(([seq]) => seq === record.command.seq);
  return earlier?.[1] ?? { ok: true, value: null };
}
