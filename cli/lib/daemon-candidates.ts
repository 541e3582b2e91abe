/**
 * Which daemons a client command may talk to, in order: the `--daemon-address` list (or
 * GALLEON_ADDRESS, or the default 127.0.0.1:8090), then — only when those do not answer — the
 * admin address of the config file (GALLEON_CONFIG, else /etc/galleonfs/daemon.toml) and every
 * node of the local cluster folder (`<--dir>/cluster.json`, default ./.galleon). The files are
 * read only when needed, and one that is missing or unreadable adds nothing.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { defaultIpcAddress } from './address.js';
import type { DaemonCandidate } from './admin-client.js';

export const defaultConfigFile = '/etc/galleonfs/daemon.toml';
export const defaultClusterDir = './.galleon';

/** The addresses given on the command line or in the environment (validated by the client). */
export function givenCandidates(flag: string | undefined): DaemonCandidate[] {
  if (flag === undefined || flag.trim() === '') return [{ address: defaultIpcAddress, source: 'the default address' }];
  return flag.split(',').map((a) => a.trim()).filter((a) => a !== '').map((address) => ({ address, source: '--daemon-address' }));
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}

async function fromConfigFile(file: string): Promise<DaemonCandidate[]> {
  const text = await readText(file);
  if (text === null) return [];
  try {
    const { parseConfigFile } = await import('../daemon/config.js');
    const ipc = parseConfigFile(text, file).ipcAddress;
    return ipc === undefined ? [] : [{ address: ipc, source: file }];
  } catch {
    return [];
  }
}

async function fromClusterDir(dir: string): Promise<DaemonCandidate[]> {
  const file = join(resolve(dir), 'cluster.json');
  const text = await readText(file);
  if (text === null) return [];
  try {
    const nodes = (JSON.parse(text) as { nodes?: { ipcAddress?: unknown }[] }).nodes ?? [];
    return nodes.flatMap((n) => (typeof n.ipcAddress === 'string' ? [{ address: n.ipcAddress, source: file }] : []));
  } catch {
    return [];
  }
}

/** The fallbacks: config file first (this host's own daemon), then the local cluster's nodes. */
export async function knownCandidates(dir: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<DaemonCandidate[]> {
  const configFile = env.GALLEON_CONFIG !== undefined && env.GALLEON_CONFIG !== '' ? env.GALLEON_CONFIG : defaultConfigFile;
  return [...await fromConfigFile(configFile), ...await fromClusterDir(dir ?? defaultClusterDir)];
}
