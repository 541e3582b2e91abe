/**
 * Reads a storage-class file (the product's JSON/YAML format) into a StorageClassSpec.
 *
 * Top-level keys are snake_case and closed: an unknown one is an error naming it, since a typo
 * there (`reclaim_polcy`) would otherwise silently give a default. `parameters` is open (the
 * provisioner's own settings such as `disk_type`) but the keys we interpret in it are checked:
 * `encryption`, `encryption_algorithm`, `replication`/`replicas`, `write_concern`, `zone_spread`.
 * Our keys `replicas`, `write_concern`, `zone_spread` and `encryption` may also be given at the
 * top level, and every top-level key also in camelCase (`reclaimPolicy`), as the API spells it.
 */
import { parse as parseYaml } from 'yaml';
import { ErrorCode, GalleonError, isGalleonError } from '../../../proto/errors.js';
import type { StorageClassSpec } from '../../../proto/metadata-types.js';
import { writeConcernOrder } from '../../../proto/metadata-types.js';
import { maxReplicaCount, minReplicaCount } from '../../../proto/limits.js';
import { bindingModes, buildStorageClass, reclaimPolicies, zoneSpreads } from './storage-classes.js';
import { isRecord } from './validate.js';

const documentKeys = ['name', 'provisioner', 'parameters', 'reclaim_policy', 'volume_binding_mode', 'allowed_topologies',
  'mount_options', 'replicas', 'encryption', 'write_concern', 'zone_spread'] as const;

const snakeCase = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
/** Bigger files are not storage classes; refuse them before parsing. */
export const maxDocumentBytes = 64 * 1024;

export function parseStorageClassDocument(text: string, fileName: string): StorageClassSpec {
  const fail = (message: string, hint: string): GalleonError =>
    new GalleonError(ErrorCode.INVALID_ARGUMENT, `${fileName}: ${message}`, { hint });
  if (text.length > maxDocumentBytes) throw fail(`file is larger than ${maxDocumentBytes} bytes`, 'a storage class file holds one small document');
  const raw = readDocument(text, fileName, fail);
  if (!isRecord(raw)) throw fail('expected one object (a mapping) at the top level', 'see `galleon storage-class create --help` for the format');
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const key = snakeCase(k);
    if (!(documentKeys as readonly string[]).includes(key)) {
      throw fail(`unknown key ${JSON.stringify(k)}`, `allowed keys: ${documentKeys.join(', ')}`);
    }
    if (key in doc) throw fail(`${k} is given twice (as ${key} too)`, `give ${key} once`);
    doc[key] = v;
  }
  const spec: StorageClassSpec = { name: str(doc, 'name', fail, true) ?? '' };
  const provisioner = str(doc, 'provisioner', fail, false);
  if (provisioner !== undefined) spec.provisioner = provisioner;

  const params: Record<string, string> = {};
  if (doc.parameters !== undefined) {
    if (!isRecord(doc.parameters)) throw fail('parameters must be a mapping of key: value', 'write parameters as key: "value" pairs');
    for (const k of Object.keys(doc.parameters).sort()) {
      const v = doc.parameters[k];
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
        throw fail(`parameters.${k} must be a string, number or boolean`, `quote the value of parameters.${k}`);
      }
      params[k] = String(v);
    }
  }
  spec.parameters = params;

  if (doc.encryption !== undefined) {
    if (typeof doc.encryption !== 'boolean') throw fail('encryption must be true or false', 'write encryption: true or encryption: false');
    if (params.encryption !== undefined && params.encryption !== String(doc.encryption)) {
      throw fail(`encryption (${doc.encryption}) disagrees with parameters.encryption (${params.encryption})`, 'give encryption once');
    }
    spec.encryption = doc.encryption;
  } else if (params.encryption !== undefined) {
    if (params.encryption !== 'true' && params.encryption !== 'false') {
      throw fail(`parameters.encryption must be "true" or "false", got ${JSON.stringify(params.encryption)}`, 'set encryption: "true" or "false"');
    }
    spec.encryption = params.encryption === 'true';
  } else if (params.encryption_algorithm !== undefined) {
    spec.encryption = true;
  }

  const replicaSources: [string, unknown][] = [];
  if (doc.replicas !== undefined) replicaSources.push(['replicas', doc.replicas]);
  if (params.replicas !== undefined) replicaSources.push(['parameters.replicas', params.replicas]);
  if (params.replication !== undefined) replicaSources.push(['parameters.replication', params.replication]);
  for (const [where, raw] of replicaSources) {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < minReplicaCount || n > maxReplicaCount) {
      throw fail(`${where} must be a whole number from ${minReplicaCount} to ${maxReplicaCount}, got ${JSON.stringify(raw)}`, `e.g. ${where}: 3`);
    }
    if (spec.replicas !== undefined && spec.replicas !== n) {
      throw fail(`${where} (${n}) disagrees with ${replicaSources[0]?.[0]} (${spec.replicas})`, 'give the replica count once');
    }
    spec.replicas = n;
  }

  const writeConcern = oneOf(doc, params, 'write_concern', writeConcernOrder, fail);
  if (writeConcern !== undefined) spec.writeConcern = writeConcern;
  const zoneSpread = oneOf(doc, params, 'zone_spread', zoneSpreads, fail);
  if (zoneSpread !== undefined) spec.zoneSpread = zoneSpread;
  const reclaim = oneOf(doc, {}, 'reclaim_policy', reclaimPolicies, fail);
  if (reclaim !== undefined) spec.reclaimPolicy = reclaim;
  const binding = oneOf(doc, {}, 'volume_binding_mode', bindingModes, fail);
  if (binding !== undefined) spec.volumeBindingMode = binding;
  const topologies = list(doc, 'allowed_topologies', fail);
  if (topologies !== undefined) spec.allowedTopologies = topologies;
  const mountOptions = list(doc, 'mount_options', fail);
  if (mountOptions !== undefined) spec.mountOptions = mountOptions;

  // The same checks the state machine applies, reported against the file now rather than later.
  try {
    buildStorageClass(spec, 0);
  } catch (err) {
    if (isGalleonError(err, ErrorCode.INVALID_ARGUMENT)) throw fail(err.message, err.hint ?? '');
    throw err;
  }
  return spec;
}

type Fail = (message: string, hint: string) => GalleonError;

function readDocument(text: string, fileName: string, fail: Fail): unknown {
  const lower = fileName.toLowerCase();
  const looksJson = lower.endsWith('.json') || (!lower.endsWith('.yaml') && !lower.endsWith('.yml') && /^\s*[{[]/.test(text));
  try {
    // YAML 1.2 is a superset of JSON, but JSON.parse gives the clearer message for a .json file.
    return looksJson ? JSON.parse(text) as unknown : parseYaml(text, { uniqueKeys: true, maxAliasCount: 16 }) as unknown;
  } catch (err) {
    const detail = err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err);
    throw fail(`not valid ${looksJson ? 'JSON' : 'YAML'}: ${detail}`, 'check the file syntax');
  }
}

function str(doc: Record<string, unknown>, key: string, fail: Fail, required: boolean): string | undefined {
  const v = doc[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw fail(`${key} must be a non-empty string`, `add ${key}: <value>`);
  return v;
}

function oneOf<T extends string>(doc: Record<string, unknown>, params: Record<string, string>, key: string, allowed: readonly T[], fail: Fail): T | undefined {
  const top = doc[key];
  const inParams = params[key];
  if (top !== undefined && inParams !== undefined && top !== inParams) {
    throw fail(`${key} (${JSON.stringify(top)}) disagrees with parameters.${key} (${JSON.stringify(inParams)})`, `give ${key} once`);
  }
  const v = top ?? inParams;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw fail(`unknown ${key.replace(/_/g, ' ')} ${JSON.stringify(v)}`, `use one of: ${allowed.join(', ')}`);
  }
  return v as T;
}

function list(doc: Record<string, unknown>, key: string, fail: Fail): string[] | undefined {
  const v = doc[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.trim().length === 0)) {
    throw fail(`${key} must be a list of non-empty strings`, `write ${key} as a list, e.g. [a, b]`);
  }
  return (v as string[]).map((x) => x.trim());
}
