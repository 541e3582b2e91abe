/**
 * The daemon's configuration: defaults, then a TOML or YAML file (the keys of the spec's
 * daemon.conf), then command-line flags. Unknown keys and bad values are errors that name the
 * key. Pure: the caller reads the file and hands in its text.
 */
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { defaultBindAddress, defaultDataAddress, defaultIpcAddress, formatHostPort, parseHostPort, parsePeerList } from '../lib/address.js';
import { isPowerOfTwo, parseSize } from '../lib/size.js';
import type { DaemonConfig, PersistenceLevel, ReplicationStrategy, Role } from './types.js';
import { allRoles, persistenceLevels, replicationStrategies } from './types.js';

export const minBlockSizeBytes = 512;
export const maxBlockSizeBytes = 1024 * 1024;
export const defaultTargetVoters = 3;
const allowedTargetVoters = [1, 3, 5] as const;
const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Settings as they come from the file or flags, before defaults and validation. */
export interface DaemonSettings {
  nodeId?: string;
  roles?: string | string[];
  storagePath?: string;
  bindAddress?: string;
  ipcAddress?: string;
  dataAddress?: string;
  peerAddresses?: string | string[];
  blockSize?: string | number;
  replicationStrategy?: string;
  persistenceLevel?: string;
  zone?: string;
  targetVoters?: number;
}

/** `section.key` in the file → setting. Keys of the spec's sample that we do not implement are not listed: they are errors. */
const fileKeys: Record<string, Record<string, keyof DaemonSettings>> = {
  daemon: { node_id: 'nodeId', roles: 'roles', storage_path: 'storagePath', block_size: 'blockSize', bind_address: 'bindAddress', ipc_address: 'ipcAddress', data_address: 'dataAddress', zone: 'zone' },
  cluster: { peer_addresses: 'peerAddresses', target_voters: 'targetVoters' },
  replication: { strategy: 'replicationStrategy' },
  persistence: { level: 'persistenceLevel' },
};

export const defaultDaemonSettings = {
  storagePath: './galleonfs_storage',
  bindAddress: defaultBindAddress,
  ipcAddress: defaultIpcAddress,
  dataAddress: defaultDataAddress,
  blockSize: 4096,
  replicationStrategy: 'synchronous',
  persistenceLevel: 'enhanced',
  zone: 'default',
  targetVoters: defaultTargetVoters,
} as const;

function configError(where: string, message: string, hint: string): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, `${where}: ${message}`, { hint });
}

export function parseConfigFile(text: string, file: string): DaemonSettings {
  const isYaml = /\.ya?ml$/i.test(file);
  let raw: unknown;
  try {
    raw = isYaml ? parseYaml(text) : parseToml(text);
  } catch (err) {
    const first = (err as Error).message.split('\n')[0] ?? '';
    throw configError(file, `not valid ${isYaml ? 'YAML' : 'TOML'} (${first})`, 'fix the syntax; see deploy/daemon.toml for a sample');
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw configError(file, 'expected sections like [daemon] and [cluster]', 'see deploy/daemon.toml for a sample');
  const out: DaemonSettings = {};
  for (const [section, body] of Object.entries(raw as Record<string, unknown>)) {
    const keys = fileKeys[section];
    if (keys === undefined) {
      throw configError(file, `unknown section "${section}"`, `known sections: ${Object.keys(fileKeys).join(', ')}`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw configError(file, `"${section}" must be a section of keys`, 'see deploy/daemon.toml for a sample');
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      const setting = keys[key];
      if (setting === undefined) {
        throw configError(file, `unknown key "${section}.${key}"`, `known keys in [${section}]: ${Object.keys(keys).join(', ')}`);
      }
      const typeOk = setting === 'targetVoters' ? typeof value === 'number'
        : setting === 'blockSize' ? typeof value === 'number' || typeof value === 'string'
          : setting === 'roles' || setting === 'peerAddresses' ? typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
            : typeof value === 'string';
      if (!typeOk) throw configError(file, `"${section}.${key}" has the wrong type (${JSON.stringify(value)})`, 'see deploy/daemon.toml for a sample');
      (out as Record<string, unknown>)[setting] = value;
    }
  }
  return out;
}

function pick<T extends string>(where: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw configError(where, `"${value}" is not one of ${allowed.join(', ')}`, `use one of ${allowed.join(', ')}`);
  return value as T;
}

/** Merges file settings under flag settings, applies defaults and validates everything. */
export function resolveDaemonConfig(fromFile: DaemonSettings, fromFlags: DaemonSettings, configFile: string | null): DaemonConfig {
  const s: DaemonSettings = { ...fromFile };
  for (const [k, v] of Object.entries(fromFlags)) if (v !== undefined) (s as Record<string, unknown>)[k] = v;

  const rolesRaw = s.roles ?? [...allRoles];
  const roleList = (typeof rolesRaw === 'string' ? rolesRaw.split(',') : rolesRaw).map((r) => r.trim()).filter((r) => r !== '');
  const roles = [...new Set(roleList.map((r) => pick<Role>('roles', r, allRoles)))];
  if (roles.length === 0) throw configError('roles', 'at least one role is needed', `use ${allRoles.join(',')}`);

  const blockSizeBytes = parseSize(s.blockSize ?? defaultDaemonSettings.blockSize, 'block size');
  if (!isPowerOfTwo(blockSizeBytes) || blockSizeBytes < minBlockSizeBytes || blockSizeBytes > maxBlockSizeBytes) {
    throw configError('block-size', `${blockSizeBytes} is not a power of two between ${minBlockSizeBytes} and ${maxBlockSizeBytes}`, 'use e.g. 4096 or 64K');
  }
  const targetVoters = s.targetVoters ?? defaultDaemonSettings.targetVoters;
  if (!(allowedTargetVoters as readonly number[]).includes(targetVoters)) {
    throw configError('cluster.target_voters', `${targetVoters} is not allowed`, 'use 3 (or 5 for larger clusters; 1 for a single node)');
  }
  if (s.nodeId !== undefined && !nodeIdPattern.test(s.nodeId)) {
    throw configError('node-id', `"${s.nodeId}" is not a valid node id`, 'use letters, digits, dot, dash or underscore (at most 63)');
  }
  const zone = s.zone ?? defaultDaemonSettings.zone;
  if (!nodeIdPattern.test(zone)) throw configError('zone', `"${zone}" is not a valid zone name`, 'use letters, digits, dot, dash or underscore');

  const bindAddress = formatHostPort(parseHostPort(s.bindAddress ?? defaultDaemonSettings.bindAddress, 'bind address'));
  const ipcAddress = formatHostPort(parseHostPort(s.ipcAddress ?? defaultDaemonSettings.ipcAddress, 'IPC address'));
  const dataAddress = formatHostPort(parseHostPort(s.dataAddress ?? defaultDaemonSettings.dataAddress, 'data address'));
  if (new Set([bindAddress, ipcAddress, dataAddress]).size < 3) {
    throw configError('addresses', `bind (${bindAddress}), IPC (${ipcAddress}) and data (${dataAddress}) addresses must differ`, 'give each its own port');
  }
  const peerAddresses = parsePeerList(s.peerAddresses ?? []).filter((p) => p !== bindAddress);

  if (!roles.includes('metadata') && peerAddresses.length === 0) {
    throw configError('roles', 'a node without the metadata role needs the cluster\'s addresses', 'add --peer-addresses with the bind addresses of metadata members');
  }

  return {
    nodeId: s.nodeId ?? null,
    roles,
    storagePath: s.storagePath ?? defaultDaemonSettings.storagePath,
    bindAddress,
    ipcAddress,
    dataAddress,
    peerAddresses,
    blockSizeBytes,
    replicationStrategy: pick<ReplicationStrategy>('replication-strategy', s.replicationStrategy ?? defaultDaemonSettings.replicationStrategy, replicationStrategies),
    persistenceLevel: pick<PersistenceLevel>('persistence-level', s.persistenceLevel ?? defaultDaemonSettings.persistenceLevel, persistenceLevels),
    zone,
    targetVoters,
    configFile,
  };
}
