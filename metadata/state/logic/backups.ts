/**
 * Backup targets and backup policies as replicated state (the bytes and manifests live on the
 * targets: dataplane/backup). A target is validated whole here, so every node opens the same one.
 *
 * Policies carry their schedule's next due time and their last claimed run: the leader's
 * scheduler claims a run with `claimBackupRun(id, dueMs, nextDueMs)`, which succeeds once per due
 * time (a second claim of the same `dueMs`, by a retry or by a new leader, finds `nextDueMs`
 * moved and is refused), so across a leader change no run is doubled; a claim not marked done
 * by its claimer is the new leader's to finish (dataplane/backup/scheduler.ts), so none is lost.
 * The cron expression is parsed by the caller (croner): apply only checks the numbers it is given.
 */
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import type { BackupPolicy, BackupTarget } from '../../../proto/metadata-types.js';
import { requireVolume } from './lookup.js';
import { Table, type StateReader, type Tx } from './tx.js';
import type { CommandContext } from './commands.js';
import { checkInt, checkKeys, checkName, checkOneOf, checkString, invalidArgument, isRecord } from './validate.js';

const targetKeys = ['name', 'dir', 's3', 'bucket', 'prefix', 'region', 'accessKeyId', 'secretAccessKey'] as const;
const policyKeys = ['volume', 'target', 'schedule', 'strategy', 'keepDaily', 'keepWeekly', 'keepMonthly', 'verifySamplePercent', 'firstDueMs'] as const;
/** Longest path, endpoint, key or prefix accepted. */
export const maxTargetFieldChars = 1024;
/** Most backups a policy may keep per GFS class. */
export const maxKeepPerClass = 1000;
export const maxPolicies = 1000;
export const policyStrategies = ['full', 'incremental', 'differential'] as const;

function field(what: string, v: unknown, hint: string): string {
  const s = checkString(what, v, hint);
  if (s.length > maxTargetFieldChars) throw invalidArgument(`${what} is longer than ${maxTargetFieldChars} characters`, hint);
  return s;
}

export function buildTarget(spec: unknown, stampMs: number): BackupTarget {
  if (!isRecord(spec)) throw invalidArgument('backup target spec must be an object', 'pass {"name", "dir"} or {"name", "s3", "bucket"}');
  checkKeys('backup target spec', spec, targetKeys);
  const name = checkName('backup target', spec.name);
  if ((spec.dir === undefined) === (spec.s3 === undefined)) {
    throw invalidArgument(`backup target ${name} needs exactly one of a directory or an S3 endpoint`, 'give --dir PATH, or --s3 URL --bucket B');
  }
  if (spec.dir !== undefined) {
    const path = field('--dir', spec.dir, 'give an absolute directory path, e.g. /var/backups/galleon');
    if (!path.startsWith('/') || path.split('/').includes('..')) throw invalidArgument(`--dir ${JSON.stringify(path)} is not an absolute path`, 'give an absolute path without "..", e.g. /var/backups/galleon');
    for (const k of ['bucket', 'prefix', 'region', 'accessKeyId', 'secretAccessKey'] as const) {
      if (spec[k] !== undefined) throw invalidArgument(`${k} is for S3 targets, not a directory`, 'drop it, or use --s3 URL');
    }
    return { name, kind: 'dir', path: path.length > 1 ? path.replace(/\/+$/, '') : path, createdAtMs: stampMs };
  }
  const endpoint = field('--s3', spec.s3, 'give the endpoint as http(s)://host:port');
  if (!/^https?:\/\/[A-Za-z0-9.\-[\]:]+(:\d{1,5})?\/?$/.test(endpoint)) throw invalidArgument(`--s3 ${JSON.stringify(endpoint)} is not an http(s)://host[:port] URL`, 'give the endpoint as http(s)://host:port');
  const bucket = field('--bucket', spec.bucket, 'give the bucket name, e.g. --bucket galleon-backups');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw invalidArgument(`bucket ${JSON.stringify(bucket)} is not a valid S3 bucket name`, 'use 3-63 lowercase letters, digits, "." and "-"');
  const rawPrefix = spec.prefix === undefined ? '' : field('--prefix', spec.prefix, 'give a key prefix such as galleon/');
  if (!/^[0-9A-Za-z._\-/]*$/.test(rawPrefix) || rawPrefix.split('/').includes('..')) throw invalidArgument(`prefix ${JSON.stringify(rawPrefix)} has characters keys cannot hold`, 'use letters, digits, ".", "_", "-" and "/"');
  const prefix = rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix.replace(/^\/+/, '') : `${rawPrefix.replace(/^\/+/, '')}/`;
  const region = spec.region === undefined ? 'us-east-1' : field('region', spec.region, 'e.g. us-east-1');
  if ((spec.accessKeyId === undefined) !== (spec.secretAccessKey === undefined)) {
    throw invalidArgument('give both --access-key and --secret-key, or neither', 'without them the daemons use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY');
  }
  const creds = spec.accessKeyId === undefined ? {} : {
    accessKeyId: field('--access-key', spec.accessKeyId, 'give the access key id'),
    secretAccessKey: field('--secret-key', spec.secretAccessKey, 'give the secret key'),
  };
  return { name, kind: 's3', endpoint: endpoint.replace(/\/$/, ''), bucket, prefix, region, ...creds, createdAtMs: stampMs };
}

export function requireTarget(r: StateReader, name: unknown): BackupTarget {
  const t = typeof name === 'string' ? r.get<BackupTarget>(Table.BackupTarget, name) : undefined;
  if (t === undefined) {
    throw new GalleonError(ErrorCode.BACKUP_TARGET_NOT_FOUND, `backup target ${JSON.stringify(name)} not found`, { hint: 'see the targets with: galleon backup-target list' });
  }
  return t;
}

export function requirePolicy(r: StateReader, id: unknown): BackupPolicy {
  const p = typeof id === 'string' ? r.get<BackupPolicy>(Table.BackupPolicy, id) : undefined;
  if (p === undefined) throw new GalleonError(ErrorCode.BACKUP_POLICY_NOT_FOUND, `backup policy ${JSON.stringify(id)} not found`, { hint: 'see the policies with: galleon backup policy list' });
  return p;
}

function buildPolicy(tx: Tx, ctx: CommandContext, spec: unknown): BackupPolicy {
  if (!isRecord(spec)) throw invalidArgument('backup policy spec must be an object', 'pass {"volume", "target", "schedule", "firstDueMs"}');
  checkKeys('backup policy spec', spec, policyKeys);
  const vol = requireVolume(tx, spec.volume);
  const target = requireTarget(tx, spec.target);
  const schedule = field('--schedule', spec.schedule, 'give a cron expression such as "0 2 * * *"');
  const keep = (k: 'keepDaily' | 'keepWeekly' | 'keepMonthly', d: number): number => (spec[k] === undefined ? d : checkInt(k, spec[k], 0, maxKeepPerClass));
  return {
    id: ctx.newId('backup-policy').slice(0, 8),
    volumeId: vol.id, volume: vol.name, target: target.name, schedule,
    strategy: spec.strategy === undefined ? 'incremental' : checkOneOf('strategy', spec.strategy, policyStrategies),
    keepDaily: keep('keepDaily', 7), keepWeekly: keep('keepWeekly', 4), keepMonthly: keep('keepMonthly', 3),
    verifySamplePercent: spec.verifySamplePercent === undefined ? 10 : checkInt('verifySamplePercent', spec.verifySamplePercent, 0, 100),
    nextDueMs: checkInt('firstDueMs', spec.firstDueMs, ctx.stampMs, Number.MAX_SAFE_INTEGER),
    lastRun: null, createdAtMs: ctx.stampMs,
  };
}

type Handler = (tx: Tx, ctx: CommandContext, args: unknown[]) => unknown;

export const backupHandlers: Record<string, Handler> = {
  addBackupTarget(tx, ctx, [spec]) {
    const t = buildTarget(spec, ctx.stampMs);
    if (tx.get(Table.BackupTarget, t.name) !== undefined) {
      throw new GalleonError(ErrorCode.BACKUP_TARGET_EXISTS, `backup target ${t.name} already exists`, { hint: 'choose another name, or remove it first: galleon backup-target remove' });
    }
    tx.put(Table.BackupTarget, t.name, t);
    return t;
  },

  removeBackupTarget(tx, _ctx, [name]) {
    const t = requireTarget(tx, name);
    const users = tx.list<BackupPolicy>(Table.BackupPolicy).filter((p) => p.target === t.name).map((p) => p.id);
    if (users.length > 0) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `backup target ${t.name} is used by ${users.length} backup polic${users.length === 1 ? 'y' : 'ies'}: ${users.slice(0, 5).join(', ')}`,
        { hint: 'delete those policies first: galleon backup policy delete ID' });
    }
    tx.del(Table.BackupTarget, t.name);
    return t;
  },

  createBackupPolicy(tx, ctx, [spec]) {
    if (tx.ids(Table.BackupPolicy).length >= maxPolicies) throw invalidArgument(`at most ${maxPolicies} backup policies`, 'delete policies you no longer need');
    const p = buildPolicy(tx, ctx, spec);
    if (tx.get(Table.BackupPolicy, p.id) !== undefined) throw invalidArgument(`backup policy id ${p.id} is taken`, 'retry the command');
    tx.put(Table.BackupPolicy, p.id, p);
    return p;
  },

  deleteBackupPolicy(tx, _ctx, [id]) {
    const p = requirePolicy(tx, id);
    tx.del(Table.BackupPolicy, p.id);
    return p;
  },

  /**
   * Two cases. A new run: `dueMs` is the policy's next due time, it has come (by the leader's
   * stamp), and the last run is done. A takeover: the last run, due at `dueMs`, was claimed by
   * another scheduler (a former leader, or this node in an earlier term) and never finished; the
   * claim moves to `claimedBy` and the due time stays. Anything else is refused: at most one claim
   * per due time ever succeeds as a new run.
   */
  claimBackupRun(tx, ctx, [id, dueRaw, nextRaw, byRaw]) {
    const p = requirePolicy(tx, id);
    const dueMs = checkInt('dueMs', dueRaw, 0, Number.MAX_SAFE_INTEGER);
    const nextDueMs = checkInt('nextDueMs', nextRaw, dueMs + 1, Number.MAX_SAFE_INTEGER);
    const claimedBy = checkString('claimedBy', byRaw, 'name the scheduler that runs it');
    const last = p.lastRun;
    if (last !== null && !last.done) {
      if (last.dueMs !== dueMs || last.claimedBy === claimedBy) throw notClaimable(p, dueMs, `its run due at ${last.dueMs} is claimed by ${last.claimedBy} and not finished`);
      const next: BackupPolicy = { ...p, lastRun: { ...last, claimedBy, claimedAtMs: ctx.stampMs } };
      tx.put(Table.BackupPolicy, p.id, next);
      return next;
    }
    if (p.nextDueMs !== dueMs || ctx.stampMs < dueMs) throw notClaimable(p, dueMs, `next due at ${p.nextDueMs}`);
    const next: BackupPolicy = { ...p, nextDueMs, lastRun: { dueMs, claimedBy, claimedAtMs: ctx.stampMs, done: false, backupId: null, error: null } };
    tx.put(Table.BackupPolicy, p.id, next);
    return next;
  },

  /** Only the current claimer finishes a run (a deposed scheduler's late answer changes nothing). */
  finishBackupRun(tx, _ctx, [id, dueRaw, backupId, error, byRaw]) {
    const p = requirePolicy(tx, id);
    const dueMs = checkInt('dueMs', dueRaw, 0, Number.MAX_SAFE_INTEGER);
    const claimedBy = checkString('claimedBy', byRaw, 'name the scheduler that ran it');
    if (p.lastRun === null || p.lastRun.dueMs !== dueMs || p.lastRun.claimedBy !== claimedBy) {
      throw notClaimable(p, dueMs, `its run due at ${dueMs} is not claimed by ${claimedBy}`);
    }
    if (p.lastRun.done) return p;
    const next: BackupPolicy = {
      ...p,
      lastRun: { ...p.lastRun, done: true, backupId: typeof backupId === 'string' ? backupId : null, error: typeof error === 'string' ? error.slice(0, maxTargetFieldChars) : null },
    };
    tx.put(Table.BackupPolicy, p.id, next);
    return next;
  },
};

function notClaimable(p: BackupPolicy, dueMs: number, why: string): GalleonError {
  return new GalleonError(ErrorCode.FAILED_PRECONDITION, `run of backup policy ${p.id} due at ${dueMs} is not claimable: ${why}`,
    { hint: 'another scheduler holds it; read the policy again', details: { nextDueMs: p.nextDueMs } });
}

export const backupQueries: Record<string, (r: StateReader, args: unknown[]) => unknown> = {
  getBackupTarget: (r, [name]) => requireTarget(r, name),
  listBackupTargets: (r) => r.ids(Table.BackupTarget).map((id) => requireTarget(r, id)),
  listBackupPolicies: (r) => r.ids(Table.BackupPolicy).map((id) => requirePolicy(r, id)),
};
