/**
 * Where the daemon and the CLI find their TLS material (proto/tls.ts uses it): a folder with the
 * cluster CA (`ca.crt`), a certificate (`tls.crt`) and its key (`tls.key`), as `galleon cert
 * issue` and `galleon up` write it.
 *
 * The daemon: `--tls-dir` / `[security] tls_dir`, default `<storage>/tls`; missing files stop
 * it with one line, unless TLS is off (`--insecure-plaintext` / `[security] tls = false`).
 * The CLI: `--tls-dir` (or GALLEON_TLS_DIR), else the config file's `[security] tls_dir` (a
 * node's certificate also identifies a client), else `<--dir>/tls/client` of a local cluster
 * (`galleon up` writes the operator's certificate there), else plaintext: a TLS daemon then
 * answers TLS_REQUIRED and the CLI says where to get a certificate.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { folderError } from './folder.js';
import { peerKindOf, tlsFileNames, type TlsMaterial } from '../../proto/tls.js';

export { tlsFileNames } from '../../proto/tls.js';
/** The folder of a local cluster (`galleon up`) that holds the operator's client certificate. */
export const localClientTlsDir = (clusterDir: string): string => join(clusterDir, 'tls', 'client');
/** The folder of a local cluster's CA. */
export const localCaDir = (clusterDir: string): string => join(clusterDir, 'tls', 'ca');
/** A node's own TLS folder under its storage path (the daemon's default). */
export const nodeTlsDir = (storagePath: string): string => join(storagePath, 'tls');

/** Reads a TLS folder; a missing or unreadable file is one line naming it and what to run. */
export async function loadTlsDir(dir: string, forWhat: 'daemon' | 'cli'): Promise<TlsMaterial> {
  const read = async (name: string): Promise<Buffer> => {
    const file = join(dir, name);
    try {
      return await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `TLS: cannot read ${file} (${code})`, {
        hint: forWhat === 'daemon'
          ? 'issue this node a certificate (`galleon cert issue --node ID --out DIR`) and pass --tls-dir DIR, or --insecure-plaintext for development only'
          : 'issue a client certificate (`galleon cert issue --client NAME --out DIR`) and pass --tls-dir DIR',
        cause: err,
      });
    }
  };
  // Settled in order, so the line names the first missing file of ca, cert, key, whatever finished first.
  const [ca, cert, key] = await Promise.allSettled([read(tlsFileNames.ca), read(tlsFileNames.cert), read(tlsFileNames.key)]);
  for (const r of [ca, cert, key]) if (r.status === 'rejected') throw r.reason;
  const value = (r: PromiseSettledResult<Buffer>): Buffer => (r as PromiseFulfilledResult<Buffer>).value;
  return { ca: value(ca), cert: value(cert), key: value(key) };
}

async function isTlsDir(dir: string): Promise<boolean> {
  try {
    await readFile(join(dir, tlsFileNames.cert));
    return true;
  } catch {
    return false;
  }
}

async function configTlsDir(env: NodeJS.ProcessEnv, defaultConfigFile: string): Promise<string | null> {
  const file = env.GALLEON_CONFIG !== undefined && env.GALLEON_CONFIG !== '' ? env.GALLEON_CONFIG : defaultConfigFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const { parseConfigFile } = await import('../daemon/config.js');
    const s = parseConfigFile(text, file);
    if (s.tls === false) return null;
    return s.tlsDir ?? (s.storagePath === undefined ? null : nodeTlsDir(s.storagePath));
  } catch {
    return null;
  }
}

/**
 * The CLI's client certificate: the first of `--tls-dir` (GALLEON_TLS_DIR), the config file's,
 * the local cluster's; null when there is none (plaintext).
 */
export async function resolveClientTls(flag: string | undefined, clusterDir: string, defaultConfigFile: string, env: NodeJS.ProcessEnv = process.env): Promise<TlsMaterial | null> {
  if (flag !== undefined && flag !== '') return loadTlsDir(flag, 'cli');
  const fromConfig = await configTlsDir(env, defaultConfigFile);
  // The node's key may be readable only by the daemon's user: then this source adds nothing.
  if (fromConfig !== null && await isTlsDir(fromConfig)) {
    const m = await loadTlsDir(fromConfig, 'cli').catch(() => null);
    if (m !== null) return m;
  }
  const local = localClientTlsDir(resolve(clusterDir));
  if (await isTlsDir(local)) return loadTlsDir(local, 'cli');
  return null;
}

export interface TlsSummary {
  subject: string;
  notAfter: string;
  /** Lower-case hex, as `galleon cert list` and `cert revoke` name it. */
  serial: string;
}

/**
 * Checks a TLS folder's files belong together: the certificate is signed by the CA beside it,
 * matches the key, is in its validity period and (for a daemon) is a node certificate.
 */
export function checkTlsMaterial(m: TlsMaterial, dir: string, want: 'node' | 'any'): TlsSummary {
  const fail = (what: string, hint: string): GalleonError => new GalleonError(ErrorCode.FAILED_PRECONDITION, `TLS: ${join(dir, tlsFileNames.cert)} ${what}`, { hint });
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(m.cert);
    ca = new X509Certificate(m.ca);
  } catch (err) {
    throw fail(`or ${tlsFileNames.ca} is not a PEM certificate (${(err as Error).message})`, 'issue it again with `galleon cert issue`');
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw fail(`is not signed by the CA in ${tlsFileNames.ca}`, 'issue it with this cluster\'s CA (`galleon cert issue --ca-dir`)');
  let key;
  try {
    key = createPrivateKey(m.key);
  } catch (err) {
    throw fail(`has an unreadable key ${tlsFileNames.key} (${(err as Error).message})`, 'issue it again with `galleon cert issue`');
  }
  if (!cert.checkPrivateKey(key)) throw fail(`does not match the key ${tlsFileNames.key}`, 'issue it again with `galleon cert issue` (certificate and key are written together)');
  const now = Date.now();
  if (Date.parse(cert.validTo) < now) throw fail(`expired on ${new Date(cert.validTo).toISOString()}`, 'renew it: `galleon cert rotate DIR`');
  if (Date.parse(cert.validFrom) > now) throw fail(`is not valid before ${new Date(cert.validFrom).toISOString()}`, 'check this machine\'s clock');
  if (want === 'node' && peerKindOf(parseSubject(cert.subject)) !== 'node') {
    throw fail('is not a node certificate', 'a daemon needs `galleon cert issue --node ID`; client certificates are for the CLI');
  }
  return { subject: cert.subject.replace(/\n/g, ', '), notAfter: new Date(cert.validTo).toISOString(), serial: cert.serialNumber.toLowerCase() };
}

/** The node id a node certificate names (its CN), from `checkTlsMaterial`'s summary. */
export function certNodeId(summary: TlsSummary): string | null {
  return /(?:^|, )CN=([^,]+)/.exec(summary.subject)?.[1] ?? null;
}

function parseSubject(subject: string): { subject: Record<string, string | string[]> } {
  const out: Record<string, string[]> = {};
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) (out[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return { subject: out };
}

/**
 * A daemon's own TLS material, read and checked before it creates or starts anything; null when
 * TLS is off. Its default folder is under the storage path, so a file in that path is named as
 * the storage path's problem, as making the folder would name it.
 */
export async function loadNodeTls(cfg: { tls: boolean; tlsDir: string | null; storagePath: string }): Promise<{ material: TlsMaterial; summary: TlsSummary; dir: string } | null> {
  if (!cfg.tls) return null;
  const dir = cfg.tlsDir ?? nodeTlsDir(cfg.storagePath);
  const material = await loadTlsDir(dir, 'daemon').catch(async (err: unknown) => {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    if (cfg.tlsDir === null && cause?.code === 'ENOTDIR') {
      // The storage path itself a file, or a file above it: the same line making the folder gives.
      const isFile = await stat(cfg.storagePath).then((s) => !s.isDirectory(), () => false);
      throw folderError(isFile ? Object.assign(new Error('EEXIST'), { code: 'EEXIST' }) : cause, 'storage path', cfg.storagePath);
    }
    throw err;
  });
  return { material, summary: checkTlsMaterial(material, dir, 'node'), dir };
}
