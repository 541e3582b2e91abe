/**
 * Reads a storage class definition (JSON or YAML, in the spec's snake_case or our camelCase)
 * into a StorageClassSpec. Unknown keys are an error naming the key, so a typo never silently
 * drops a setting. Pure apart from the caller handing in the text.
 */
import { parse as parseYaml } from 'yaml';
import type { ReclaimPolicy, StorageClassSpec, VolumeBindingMode, WriteConcern, ZoneSpread } from '../../proto/metadata-types.js';
import { writeConcernOrder } from '../../proto/metadata-types.js';
import { ErrorCode, GalleonError } from '../../proto/errors.js';

const keyAliases: Record<string, keyof StorageClassSpec> = {
  name: 'name', provisioner: 'provisioner', parameters: 'parameters', replicas: 'replicas', encryption: 'encryption',
  write_concern: 'writeConcern', writeConcern: 'writeConcern', zone_spread: 'zoneSpread', zoneSpread: 'zoneSpread',
  reclaim_policy: 'reclaimPolicy', reclaimPolicy: 'reclaimPolicy', volume_binding_mode: 'volumeBindingMode',
  volumeBindingMode: 'volumeBindingMode', allowed_topologies: 'allowedTopologies', allowedTopologies: 'allowedTopologies',
  mount_options: 'mountOptions', mountOptions: 'mountOptions',
};

function bad(file: string, message: string, hint = 'fix the file; see the storage class examples in the README'): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, `${file}: ${message}`, { hint });
}

function oneOf<T extends string>(file: string, key: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw bad(file, `${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function stringList(file: string, key: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw bad(file, `${key} must be a list of strings`);
  return value;
}

export function parseStorageClassText(text: string, file: string): StorageClassSpec {
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw bad(file, `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'} (${(err as Error).message.split('\n')[0] ?? ''})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(file, 'expected one object with at least a name');
  const spec: StorageClassSpec = { name: '' };
  for (const [key, value] of Object.entries(raw)) {
    const field = keyAliases[key];
    if (field === undefined) throw bad(file, `unknown key "${key}"`, `allowed keys: ${Object.keys(keyAliases).filter((k) => !/[A-Z]/.test(k)).join(', ')}`);
    switch (field) {
      case 'name':
      case 'provisioner':
        if (typeof value !== 'string' || value === '') throw bad(file, `${key} must be a non-empty string`);
        spec[field] = value;
        break;
      case 'parameters':
        if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(file, 'parameters must be a map of strings');
        spec.parameters = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
        break;
      case 'replicas':
        if (!Number.isInteger(value) || (value as number) < 1) throw bad(file, 'replicas must be a whole number of at least 1');
        spec.replicas = value as number;
        break;
      case 'encryption':
        if (typeof value !== 'boolean') throw bad(file, 'encryption must be true or false');
        spec.encryption = value;
        break;
      case 'writeConcern':
        spec.writeConcern = oneOf<WriteConcern>(file, key, value, writeConcernOrder);
        break;
      case 'zoneSpread':
        spec.zoneSpread = oneOf<ZoneSpread>(file, key, value, ['none', 'prefer', 'require']);
        break;
      case 'reclaimPolicy':
        spec.reclaimPolicy = oneOf<ReclaimPolicy>(file, key, value, ['Delete', 'Retain']);
        break;
      case 'volumeBindingMode':
        spec.volumeBindingMode = oneOf<VolumeBindingMode>(file, key, value, ['Immediate', 'WaitForFirstConsumer']);
        break;
      case 'allowedTopologies':
      case 'mountOptions':
        spec[field] = stringList(file, key, value);
        break;
    }
  }
  if (spec.name === '') throw bad(file, 'missing "name"');
  // The spec's examples carry encryption and replication as string parameters.
  const params = spec.parameters ?? {};
  if (spec.encryption === undefined && params.encryption !== undefined) spec.encryption = params.encryption === 'true';
  if (spec.replicas === undefined && params.replication !== undefined) {
    const n = Number(params.replication);
    if (!Number.isInteger(n) || n < 1) throw bad(file, `parameters.replication must be a whole number, got "${params.replication}"`);
    spec.replicas = n;
  }
  return spec;
}
