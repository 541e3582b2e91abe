/**
 * The shapes of the admin endpoint's request bodies, checked at the edge with zod before any
 * handler runs: types, required fields, no unknown fields, and a limit on every size (string
 * lengths, label and array counts, numbers within safe integers). The meaning of a value (is
 * this name free, is this size above the volume's) stays with the state machine, which checks
 * it again; the edge only makes sure no handler ever sees a value of the wrong shape (issue #10:
 * `[1,2]` created a 1 GiB volume; `dataBase64: "!!!not base64***"` wrote 6 bytes).
 *
 * zod: see cli/README.md ("Request validation") for why this library.
 */
import { z } from 'zod';
import type { AdminBodyName } from '../lib/admin-routes.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { defaultMaxBlockBodyBytes, maxLabelCount, maxLabelKeyChars, maxLabelValueChars, maxMountCacheTimeoutSec, maxNameChars, maxReplicaCount, minReplicaCount } from '../../proto/limits.js';

/** Names (maxNameChars, as the state machine) and refs, which may be ids, a little longer. */
export const maxRefChars = 128;
/** A size string such as "10G" or "1048576". */
export const maxSizeStringChars = 32;
export const maxEnumChars = 32;
export const maxAddressChars = 261;
/** Parameters, topologies, mount options of a storage class. */
export const maxListItems = 64;
export const maxListItemChars = 253;
/** Base64 of the largest block (defaultMaxBlockBodyBytes): 4/3 of it, padded. */
export const maxBlockBase64Chars = Math.ceil(defaultMaxBlockBodyBytes / 3) * 4;
/** Request bodies of the JSON routes, except block writes (whose limit is maxRequestBodyBytes). */
export const maxJsonBodyBytes = 64 * 1024;

const name = z.string().min(1).max(maxNameChars);
const enumText = z.string().min(1).max(maxEnumChars);
const wholeNumber = z.number().int().nonnegative();
const size = z.union([wholeNumber, z.string().min(1).max(maxSizeStringChars)]);
const labelKey = z.string().min(1).max(maxLabelKeyChars);
const boundedRecord = <T extends z.ZodType>(value: T) =>
  z.record(labelKey, value).refine((r) => Object.keys(r).length <= maxLabelCount, { message: `at most ${maxLabelCount} entries` });

export const volumeSpecSchema = z.strictObject({
  name: name.optional(),
  type: enumText.optional(),
  size: size.optional(),
  blockSize: size.optional(),
  storageClass: name.optional(),
  replicas: z.number().int().min(minReplicaCount).max(maxReplicaCount).optional(),
  accessMode: enumText.optional(),
  labels: boundedRecord(z.string().max(maxLabelValueChars)).optional(),
});

export const expandSchema = z.strictObject({ size });
export const labelsSchema = z.strictObject({ labels: boundedRecord(z.string().max(maxLabelValueChars).nullable()) });

export const blockWriteSchema = z.strictObject({
  dataBase64: z.base64().max(maxBlockBase64Chars),
  concern: enumText.optional(),
});

const listOfText = z.array(z.string().max(maxListItemChars)).max(maxListItems);
export const storageClassSchema = z.strictObject({
  name,
  provisioner: z.string().min(1).max(maxListItemChars).optional(),
  parameters: z.record(z.string().min(1).max(maxListItemChars), z.string().max(maxListItemChars))
    .refine((r) => Object.keys(r).length <= maxListItems, { message: `at most ${maxListItems} entries` }).optional(),
  replicas: z.number().int().min(minReplicaCount).max(maxReplicaCount).optional(),
  encryption: z.boolean().optional(),
  writeConcern: enumText.optional(),
  zoneSpread: enumText.optional(),
  reclaimPolicy: enumText.optional(),
  volumeBindingMode: enumText.optional(),
  allowedTopologies: listOfText.optional(),
  mountOptions: listOfText.optional(),
});

export const joinSchema = z.strictObject({ address: z.string().min(1).max(maxAddressChars) });
/** `cluster leave` sends `{force}`; older clients sent nothing. */
export const leaveSchema = z.strictObject({ force: z.boolean().optional() }).optional();
/** A mount point or a volume ref given to the vfs routes (PATH_MAX). */
export const maxPathChars = 4096;
export const vfsMountSchema = z.strictObject({
  volume: z.string().min(1).max(maxRefChars),
  mountPoint: z.string().min(1).max(maxPathChars),
  readOnly: z.boolean().optional(),
  raw: z.boolean().optional(),
  cacheTimeoutSec: z.number().min(0).max(maxMountCacheTimeoutSec).optional(),
});
export const vfsUnmountSchema = z.strictObject({ target: z.string().min(1).max(maxPathChars) });
export const vfsSyncSchema = z.strictObject({ volume: z.string().min(1).max(maxRefChars).optional() }).optional();
const field = z.string().min(1).max(maxPathChars);
export const backupTargetSchema = z.strictObject({
  name, dir: field.optional(), s3: field.optional(), bucket: field.optional(), prefix: z.string().max(maxPathChars).optional(),
  region: enumText.optional(), accessKeyId: field.optional(), secretAccessKey: field.optional(),
});
export const backupCreateSchema = z.strictObject({ volume: z.string().min(1).max(maxRefChars), target: name, strategy: enumText.optional(), snapshot: z.string().min(1).max(maxRefChars).optional() });
export const backupRestoreSchema = z.strictObject({ name, sourceKeyFile: field.optional() });
export const backupVerifySchema = z.strictObject({ samplePercent: z.number().gt(0).max(100).optional() });
/** Most backups a policy keeps per GFS class (as metadata/state/logic/backups.ts). */
export const maxKeep = 1000;
export const backupPolicySchema = z.strictObject({
  volume: z.string().min(1).max(maxRefChars), target: name, schedule: z.string().min(1).max(maxListItemChars), strategy: enumText.optional(),
  keepDaily: z.number().int().min(0).max(maxKeep).optional(), keepWeekly: z.number().int().min(0).max(maxKeep).optional(),
  keepMonthly: z.number().int().min(0).max(maxKeep).optional(), verifySamplePercent: z.number().int().min(0).max(100).optional(),
});
/** Issue #12: users, tokens, access policies, audit queries. */
export const userSpecSchema = z.strictObject({ name, role: enumText, tenant: name.optional() });
/** Longest token lifetime `token create --ttl` accepts: ten years. */
export const maxTokenTtlSec = 10 * 365 * 24 * 3600;
export const tokenSpecSchema = z.strictObject({ user: name, ttlSec: z.number().int().min(1).max(maxTokenTtlSec).optional() });
export const maxPolicyEntries = 64;
export const policySchema = z.strictObject({
  entries: z.array(z.strictObject({ subject: z.string().min(1).max(maxRefChars), access: enumText })).max(maxPolicyEntries),
});
export const auditQuerySchema = z.strictObject({
  sinceMs: wholeNumber.optional(), user: name.optional(), limit: z.number().int().min(1).max(10_000).optional(),
}).optional();
/** Routes that take no body: nothing, or an empty object. */
export const noBodySchema = z.strictObject({}).optional();

/** `snapshot create` (issue #11): hooks run on the daemon's host with /bin/sh. */
export const maxHookChars = 4096;
export const snapshotCreateSchema = z.strictObject({
  volume: z.string().min(1).max(maxRefChars),
  name: z.string().min(1).max(maxRefChars).optional(),
  hookPre: z.string().min(1).max(maxHookChars).optional(),
  hookPost: z.string().min(1).max(maxHookChars).optional(),
  hookTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  onError: z.enum(['fail', 'continue']).optional(),
  flush: z.boolean().optional(),
  flushTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
});
export const snapshotDeleteSchema = z.strictObject({ dryRun: z.boolean().optional(), wait: z.boolean().optional() }).optional();
export const cloneSchema = z.strictObject({ name: z.string().min(1).max(maxRefChars) });
export const restoreSchema = z.strictObject({ snapshot: z.string().min(1).max(maxRefChars), wait: z.boolean().optional() });

/** Each body schema by the name the route table (cli/lib/admin-routes.ts) gives it. */
export const bodySchemas = {
  volumeSpec: volumeSpecSchema, expand: expandSchema, labels: labelsSchema, blockWrite: blockWriteSchema,
  storageClass: storageClassSchema, join: joinSchema, leave: leaveSchema,
  vfsMount: vfsMountSchema, vfsUnmount: vfsUnmountSchema, vfsSync: vfsSyncSchema, none: noBodySchema,
  snapshotCreate: snapshotCreateSchema, snapshotDelete: snapshotDeleteSchema, clone: cloneSchema, restore: restoreSchema,
  backupTarget: backupTargetSchema, backupCreate: backupCreateSchema, backupRestore: backupRestoreSchema,
  backupVerify: backupVerifySchema, backupPolicy: backupPolicySchema,
  userSpec: userSpecSchema, tokenSpec: tokenSpecSchema, policy: policySchema, auditQuery: auditQuerySchema,
} as const satisfies Record<AdminBodyName, z.ZodType>;

/** Removes keys whose value is undefined (zod's optional output vs. exactOptionalPropertyTypes). */
function defined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}

/**
 * Parses `body` with `schema`, or throws INVALID_ARGUMENT naming the first wrong field — one line,
 * never zod's multi-line report.
 */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, route: string): z.output<S> {
  const r = schema.safeParse(body);
  if (r.success) {
    const v = r.data as unknown;
    return (typeof v === 'object' && v !== null && !Array.isArray(v) ? defined(v) : v) as z.output<S>;
  }
  const issue = r.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? 'request body' : `request body field "${issue.path.map(String).join('.')}"`;
  const what = body === undefined ? 'is missing' : `is invalid: ${issue?.message ?? 'wrong shape'}`;
  throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `${route}: ${where} ${what}`.replace(/\s+/g, ' '), {
    hint: 'send a JSON object as the galleon CLI does (see cli/README.md, "Admin endpoint")',
  });
}
