/**
 * The daemon's configuration: defaults, then a TOML or YAML file (the keys of the spec's
 * daemon.conf), then command-line flags. Unknown keys and bad values are errors that name the
 * key. Pure: the caller reads the file and hands in its text.
 */
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { defaultDataNodeDownAfterMs, defaultHeartbeatIntervalMs, defaultLeaseTtlMs, leaseSafetyMarginMs, minMissedHeartbeatCount } from '../../proto/limits.js';
import { defaultBindAddress, defaultDataAddress, defaultIpcAddress, formatHostPort, parseHostPort, parsePeerList } from '../lib/address.js';
import { isPowerOfTwo, parseSize } from '../lib/size.js';
import type { DaemonConfig, PersistenceLevel, ReplicationStrategy, Role } from './types.js';
import { allRoles, freshnessSettings, persistenceLevels, replicationStrategies } from './types.js';
import { defaultBlockSizeBytes, maxBlockSizeBytes, minBlockSizeBytes } from '../../proto/metadata-types.js';

export { maxBlockSizeBytes, minBlockSizeBytes } from '../../proto/metadata-types.js';
export const defaultTargetVoters = 3;
/** The node credential's file under the storage path when none is named. */
export const defaultNodeTokenFileName = 'node-token';
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
  heartbeatIntervalMs?: number | string;
  leaseTtlMs?: number | string;
  dataNodeDownAfterMs?: number | string;
  /** `[log] level`: the only setting SIGHUP applies live (see reloadPlan). */
  logLevel?: string;
  mountPoint?: string;
  /** `[security]`: the cluster key file (internal key provider). */
  keyFile?: string;
  /** `[security]`: Vault transit engine address and key name (external key provider). */
  kmsAddress?: string;
  kmsKey?: string;
  /** `[security] auth_required` / `--auth` (issue #12): every request needs a token. Default: on when a node token file is named. */
  authRequired?: boolean | string;
  /** `[security] node_token_file` / `--node-token-file`: the cluster's node credential (0600). Default `<storage>/node-token`. */
  nodeTokenFile?: string;
  /** `[security] tls`: false runs every endpoint in plaintext (development only; `--insecure-plaintext`). */
  tls?: boolean;
  /** `[security] tls_dir`: ca.crt, tls.crt, tls.key of this node (default `<storage>/tls`). */
  tlsDir?: string;
  /** `[security] freshness` / `--freshness`: strict or best-effort (default) for encrypted reads no other replica can check. */
  freshness?: string;
}

/** Bounds of the failover timings (ms): what a cluster on one LAN can sensibly use. */
export const timingBoundsMs = {
  heartbeatIntervalMs: { min: 50, max: 60_000 },
  leaseTtlMs: { min: 500, max: 10 * 60_000 },
  dataNodeDownAfterMs: { min: 500, max: 60 * 60_000 },
} as const;

export interface FailoverTimings {
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  dataNodeDownAfterMs: number;
}

/** `section.key` in the file → setting. Keys of the spec's sample that we do not implement are not listed: they are errors. */
const fileKeys: Record<string, Record<string, keyof DaemonSettings>> = {
  daemon: { node_id: 'nodeId', roles: 'roles', storage_path: 'storagePath', block_size: 'blockSize', bind_address: 'bindAddress', ipc_address: 'ipcAddress', data_address: 'dataAddress', zone: 'zone', mount_point: 'mountPoint' },
  cluster: { peer_addresses: 'peerAddresses', target_voters: 'targetVoters', heartbeat_interval_ms: 'heartbeatIntervalMs', lease_ttl_ms: 'leaseTtlMs', data_node_down_after_ms: 'dataNodeDownAfterMs' },
  replication: { strategy: 'replicationStrategy' },
  persistence: { level: 'persistenceLevel' },
  log: { level: 'logLevel' },
  security: { key_file: 'keyFile', kms_address: 'kmsAddress', kms_key: 'kmsKey', auth_required: 'authRequired', node_token_file: 'nodeTokenFile', tls: 'tls', tls_dir: 'tlsDir', freshness: 'freshness' },
};

export const defaultDaemonSettings = {
  storagePath: './galleonfs_storage',
  bindAddress: defaultBindAddress,
  ipcAddress: defaultIpcAddress,
  dataAddress: defaultDataAddress,
  blockSize: defaultBlockSizeBytes,
  replicationStrategy: 'synchronous',
  persistenceLevel: 'enhanced',
  zone: 'default',
  targetVoters: defaultTargetVoters,
  // The data role's, lease guard's and controllers' own defaults: one definition in proto/limits.ts
  // (`galleon up` loads this file, so it imports only cli/ and proto/).
  heartbeatIntervalMs: defaultHeartbeatIntervalMs,
  leaseTtlMs: defaultLeaseTtlMs,
  dataNodeDownAfterMs: defaultDataNodeDownAfterMs,
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
      const typeOk = setting === 'targetVoters' || setting === 'heartbeatIntervalMs' || setting === 'leaseTtlMs' || setting === 'dataNodeDownAfterMs' ? typeof value === 'number'
        : setting === 'tls' ? typeof value === 'boolean'
        : setting === 'blockSize' ? typeof value === 'number' || typeof value === 'string'
          : setting === 'roles' || setting === 'peerAddresses' ? typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
            : setting === 'authRequired' ? typeof value === 'boolean'
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

const timingNames: Record<keyof FailoverTimings, string> = {
  heartbeatIntervalMs: 'heartbeat-interval-ms', leaseTtlMs: 'lease-ttl-ms', dataNodeDownAfterMs: 'data-node-down-after-ms',
};

function timingMs(key: keyof FailoverTimings, raw: number | string | undefined): number {
  const value = raw === undefined ? defaultDaemonSettings[key] : typeof raw === 'number' ? raw : /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  const { min, max } = timingBoundsMs[key];
  if (!Number.isInteger(value) || value < min || value > max) {
    throw configError(timingNames[key], `${JSON.stringify(raw)} is not a whole number of milliseconds from ${min} to ${max}`, `e.g. --${timingNames[key]} ${defaultDaemonSettings[key]}`);
  }
  return value;
}

/**
 * The heartbeat interval, pg-primary lease ttl and "data node down after" of a cluster, checked
 * together: a primary must have stopped acknowledging (its lease, minus the safety margin it
 * subtracts, has run out) before the controller names a successor, so down-after must exceed
 * ttl + margin; and a node must miss a few heartbeats, not one, before it is marked down.
 * Every node should use the same values (the metadata role checks against its own lease ttl).
 */
export function resolveFailoverTimings(s: Pick<DaemonSettings, keyof FailoverTimings>): FailoverTimings {
  const t: FailoverTimings = {
    heartbeatIntervalMs: timingMs('heartbeatIntervalMs', s.heartbeatIntervalMs),
    leaseTtlMs: timingMs('leaseTtlMs', s.leaseTtlMs),
    dataNodeDownAfterMs: timingMs('dataNodeDownAfterMs', s.dataNodeDownAfterMs),
  };
  const floor = t.leaseTtlMs + leaseSafetyMarginMs(t.leaseTtlMs);
  if (t.dataNodeDownAfterMs <= floor) {
    throw configError('data-node-down-after-ms', `${t.dataNodeDownAfterMs} ms must exceed the lease ttl ${t.leaseTtlMs} ms plus its ${floor - t.leaseTtlMs} ms safety margin (${floor} ms), or two primaries could acknowledge writes`,
      `raise --data-node-down-after-ms above ${floor}, or lower --lease-ttl-ms`);
  }
  if (t.dataNodeDownAfterMs < minMissedHeartbeatCount * t.heartbeatIntervalMs) {
    throw configError('data-node-down-after-ms', `${t.dataNodeDownAfterMs} ms is less than ${minMissedHeartbeatCount} heartbeat intervals of ${t.heartbeatIntervalMs} ms: healthy nodes would be marked down`,
      `raise --data-node-down-after-ms to at least ${minMissedHeartbeatCount * t.heartbeatIntervalMs}, or lower --heartbeat-interval-ms`);
  }
  return t;
}

/** What a SIGHUP can apply without a restart; every other setting that changed needs one. */
export const liveSettings: readonly (keyof DaemonSettings)[] = ['logLevel'];

export interface ReloadPlan {
  /** The log level to use now: the file's `[log] level`, else GALLEON_LOG_LEVEL, else info. */
  logLevel: string;
  /** Settings whose value in the file changed since start but apply only on a restart. */
  needsRestart: (keyof DaemonSettings)[];
}

/** Compares the file as read at start with the file now (pure); throws on a bad log level. */
export function reloadPlan(before: DaemonSettings, now: DaemonSettings, envLevel: string | undefined): ReloadPlan {
  const logLevel = resolveLogLevel(now.logLevel, envLevel);
  const keys = new Set([...Object.keys(before), ...Object.keys(now)] as (keyof DaemonSettings)[]);
  const needsRestart = [...keys].filter((k) => !liveSettings.includes(k) && JSON.stringify(before[k]) !== JSON.stringify(now[k])).sort();
  return { logLevel, needsRestart };
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The file's level wins over GALLEON_LOG_LEVEL (so that a SIGHUP can change it); info by default. */
export function resolveLogLevel(fileLevel: string | undefined, envLevel: string | undefined): string {
  if (fileLevel !== undefined) return pick('log.level', fileLevel, logLevels);
  return envLevel !== undefined && (logLevels as readonly string[]).includes(envLevel) ? envLevel : 'info';
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
    throw configError('block-size', `${blockSizeBytes} is not a power of two between ${minBlockSizeBytes} and ${maxBlockSizeBytes}`, 'use e.g. 4K, 128K or 1M');
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

  const timings = resolveFailoverTimings(s);
  if (s.logLevel !== undefined) resolveLogLevel(s.logLevel, undefined);

  const kms = resolveKms(s);
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
    ...timings,
    configFile,
    mountPoint: s.mountPoint === undefined || s.mountPoint === '' ? null : s.mountPoint,
    keyFile: s.keyFile === undefined || s.keyFile === '' ? null : s.keyFile,
    kms,
    nodeTokenFile: resolveNodeTokenFile(s),
    tls: s.tls ?? true,
    tlsDir: s.tlsDir === undefined || s.tlsDir === '' ? null : s.tlsDir,
    freshness: pick('freshness', s.freshness ?? 'best-effort', freshnessSettings),
  };
}

/** Vault transit needs both its address and the key's name; the token comes from the environment only. */
function resolveKms(s: DaemonSettings): DaemonConfig['kms'] {
  const address = s.kmsAddress ?? '';
  const keyName = s.kmsKey ?? '';
  if (address === '' && keyName === '') return null;
  if (address === '' || keyName === '') throw configError('kms', 'a KMS needs both its address and a key name', 'give --kms-address http://host:8200 and --kms-key NAME (or [security] kms_address and kms_key)');
  if (!/^https?:\/\/[^\s/]+/.test(address)) throw configError('kms-address', `"${address}" is not an http(s) URL`, 'e.g. --kms-address http://127.0.0.1:8200');
  if (!/^[\w.-]{1,128}$/.test(keyName)) throw configError('kms-key', `"${keyName}" is not a transit key name`, 'use letters, digits, dot, dash or underscore');
  return { address, keyName };
}

/** The node token file when authentication is on, else null. */
function resolveNodeTokenFile(s: DaemonSettings): string | null {
  const raw = s.authRequired;
  const on = raw === undefined ? s.nodeTokenFile !== undefined
    : raw === true || raw === 'true' ? true : raw === false || raw === 'false' ? false : Number.NaN;
  if (typeof on !== 'boolean') throw configError('security.auth_required', `${JSON.stringify(raw)} is not true or false`, 'write auth_required = true');
  if (!on) return null;
  return s.nodeTokenFile ?? join(s.storagePath ?? defaultDaemonSettings.storagePath, defaultNodeTokenFileName);
}
