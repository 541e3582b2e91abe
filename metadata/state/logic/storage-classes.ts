/**
 * Storage classes: the two built-ins of the product and the validation that turns a
 * StorageClassSpec into a StorageClass (filling defaults). Pure: `createdAtMs` is passed in.
 */
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { defaultReplicaCount, maxReplicaCount, minReplicaCount } from '../../../proto/limits.js';
import type { ReclaimPolicy, StorageClass, StorageClassSpec, VolumeBindingMode, WriteConcern, ZoneSpread } from '../../../proto/metadata-types.js';
import { writeConcernOrder } from '../../../proto/metadata-types.js';
import { checkInt, checkKeys, checkName, checkOneOf, invalidArgument, isRecord } from './validate.js';

export const supportedEncryptionAlgorithm = 'AES-256-GCM';
export const defaultProvisioner = 'galleonfs.io/distributed';
export const zoneSpreads: readonly ZoneSpread[] = ['none', 'prefer', 'require'];
export const reclaimPolicies: readonly ReclaimPolicy[] = ['Delete', 'Retain'];
export const bindingModes: readonly VolumeBindingMode[] = ['Immediate', 'WaitForFirstConsumer'];
const specKeys = ['name', 'provisioner', 'parameters', 'replicas', 'encryption', 'writeConcern', 'zoneSpread',
  'reclaimPolicy', 'volumeBindingMode', 'allowedTopologies', 'mountOptions', 'tenant'] as const;

export const FAST_LOCAL_SSD = 'fast-local-ssd';
export const ENCRYPTED_STORAGE = 'encrypted-storage';
/** The spec's default class for a volume created without one. */
export const defaultStorageClass = ENCRYPTED_STORAGE;

export function builtInStorageClasses(): StorageClass[] {
  return [
    {
      name: ENCRYPTED_STORAGE, provisioner: defaultProvisioner, parameters: {}, replicas: 3, encryption: true,
      encryptionAlgorithm: supportedEncryptionAlgorithm, writeConcern: 'replicated', zoneSpread: 'prefer',
      reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer', allowedTopologies: [], mountOptions: [],
      builtIn: true, createdAtMs: 0,
    },
    {
      name: FAST_LOCAL_SSD, provisioner: 'galleonfs.io/local-ssd', parameters: {}, replicas: 1, encryption: false,
      encryptionAlgorithm: null, writeConcern: 'durable', zoneSpread: 'none',
      reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate', allowedTopologies: [], mountOptions: [],
      builtIn: true, createdAtMs: 0,
    },
  ];
}

/** The least number of replicas a write concern can be met with. */
export function minReplicasFor(writeConcern: WriteConcern): number {
  return writeConcern === 'replicated' || writeConcern === 'distributed' ? 2 : 1;
}

export function buildStorageClass(raw: unknown, createdAtMs: number): StorageClass {
  if (!isRecord(raw)) throw invalidArgument('storage class spec must be an object', 'pass {"name": ..., ...}');
  checkKeys('storage class', raw, specKeys);
  const spec = raw as unknown as StorageClassSpec;
  const name = checkName('storage class', spec.name);
  const provisioner = spec.provisioner ?? defaultProvisioner;
  if (typeof provisioner !== 'string' || provisioner.length === 0) {
    throw invalidArgument('provisioner must be a non-empty string', `e.g. ${defaultProvisioner}`);
  }
  const parameters = checkStringMap('parameters', spec.parameters);
  const replicas = spec.replicas === undefined ? defaultReplicaCount : checkInt('replicas', spec.replicas, minReplicaCount, maxReplicaCount);
  if (spec.encryption !== undefined && typeof spec.encryption !== 'boolean') {
    throw invalidArgument('encryption must be true or false', 'set encryption to true or false');
  }
  const encryption = spec.encryption ?? false;
  const algorithm = parameters.encryption_algorithm;
  if (algorithm !== undefined && algorithm !== supportedEncryptionAlgorithm) {
    throw invalidArgument(`unsupported encryption algorithm ${JSON.stringify(algorithm)}`, `only ${supportedEncryptionAlgorithm} is supported`);
  }
  const writeConcern = spec.writeConcern === undefined
    ? (replicas >= 2 ? 'replicated' : 'durable')
    : checkOneOf('write concern', spec.writeConcern, writeConcernOrder);
  if (replicas < minReplicasFor(writeConcern)) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT,
      `write concern ${writeConcern} needs at least ${minReplicasFor(writeConcern)} replicas, the class has ${replicas}`,
      { hint: 'raise replicas or choose write concern durable or acknowledged' });
  }
  const zoneSpread = spec.zoneSpread === undefined
    ? (writeConcern === 'distributed' ? 'require' : 'prefer')
    : checkOneOf('zone spread', spec.zoneSpread, zoneSpreads);
  return {
    name,
    provisioner,
    parameters,
    replicas,
    encryption,
    encryptionAlgorithm: encryption ? supportedEncryptionAlgorithm : null,
    writeConcern,
    zoneSpread,
    reclaimPolicy: spec.reclaimPolicy === undefined ? 'Delete' : checkOneOf('reclaim policy', spec.reclaimPolicy, reclaimPolicies),
    volumeBindingMode: spec.volumeBindingMode === undefined ? 'Immediate' : checkOneOf('volume binding mode', spec.volumeBindingMode, bindingModes),
    allowedTopologies: checkStringList('allowedTopologies', spec.allowedTopologies),
    mountOptions: checkStringList('mountOptions', spec.mountOptions),
    builtIn: false,
    createdAtMs,
    ...(spec.tenant === undefined ? {} : { tenant: checkName('tenant', spec.tenant) }),
  };
}

function checkStringMap(what: string, raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (!isRecord(raw)) throw invalidArgument(`${what} must be an object of strings`, `write ${what} as key: "value" pairs`);
  const out: Record<string, string> = {};
  for (const k of Object.keys(raw).sort()) {
    const v = raw[k];
    if (typeof v !== 'string') throw invalidArgument(`${what}.${k} must be a string`, `quote the value of ${what}.${k}`);
    out[k] = v;
  }
  return out;
}

function checkStringList(what: string, raw: unknown): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string' || x.length === 0)) {
    throw invalidArgument(`${what} must be a list of non-empty strings`, `write ${what} as a list, e.g. [zone-a, zone-b]`);
  }
  return [...(raw as string[])];
}
