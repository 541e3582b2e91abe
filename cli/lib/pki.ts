/**
 * The cluster's certificate authority: create it, issue node and client certificates, rotate
 * them, describe them. Certificates and keys are PEM files; keys are written with mode 0600.
 *
 * Library: @peculiar/x509 builds and signs the certificates. It is typed TypeScript, maintained,
 * and signs through WebCrypto, so key generation and signatures are node's native ECDSA P-256
 * (a few ms) instead of a pure-JS RSA implementation (node-forge: RSA only, seconds per key),
 * and no external `openssl` binary has to be present. It needs a Reflect polyfill (tsyringe);
 * this module, loaded only by `galleon cert` and `galleon up`, imports it. Parsing and
 * verification use node's own `crypto.X509Certificate`.
 *
 * Layout: a CA folder holds `ca.crt`, `ca.key` and `issued.json` (what it issued, for
 * `cert list`); a TLS folder (one per node or client) holds `ca.crt`, `tls.crt`, `tls.key`,
 * which is what the daemon's `--tls-dir` and the CLI's `--tls-dir` read (cli/lib/tls.ts).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
import { isIP } from 'node:net';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { clientOrgUnit, nodeOrgUnit } from '../../proto/tls.js';
import { normalizeSerial } from '../../proto/tls-live.js';
import { tlsFileNames } from './tls.js';
import { readRevoked, revokedFileName, type RevokedRecord } from './tls-watch.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const caFileNames = { cert: 'ca.crt', key: 'ca.key', issued: 'issued.json' } as const;
export const defaultCaDays = 3650;
export const defaultCertDays = 365;
export const maxCertDays = 3650;
/** Certificates are valid from a little before now, so clocks a bit behind still accept them. */
const clockSkewMs = 5 * 60_000;
const dayMs = 86_400_000;
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export type CertKind = 'node' | 'client';

export interface IssueRequest {
  kind: CertKind;
  name: string;
  dns: string[];
  ips: string[];
  days: number;
}

export interface IssuedRecord {
  serial: string;
  kind: CertKind;
  name: string;
  dns: string[];
  ips: string[];
  notAfter: string;
  dir: string;
  issuedAt: string;
}

export interface CertInfo {
  file: string;
  subject: string;
  issuer: string;
  kind: CertKind | 'ca' | 'unknown';
  serial: string;
  notBefore: string;
  notAfter: string;
  expired: boolean;
  subjectAltName: string | null;
  fingerprint256: string;
  /** Signed by the CA next to it (ca.crt in the same folder), when there is one. */
  signedByCa: boolean | null;
}

function badInput(message: string, hint: string): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, message, { hint });
}

async function exists(file: string): Promise<boolean> {
  try {
    await readFile(file);
    return true;
  } catch {
    return false;
  }
}

/** Written beside the file under a name of its own, then renamed over it: never half a file, never another writer's. */
const tmpOf = (file: string): string => `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;

async function writePrivate(file: string, text: string): Promise<void> {
  const tmp = tmpOf(file);
  await writeFile(tmp, text, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

async function writePublic(file: string, text: string): Promise<void> {
  const tmp = tmpOf(file);
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function serial(): string {
  // Positive (top bit clear), 16 random bytes: unique without a counter to keep.
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString('hex');
}

function checkDays(days: number, max: number): void {
  if (!Number.isInteger(days) || days < 1 || days > max) throw badInput(`validity ${days} days is not a whole number from 1 to ${max}`, `e.g. --days ${defaultCertDays}`);
}

/** Creates a CA in `dir` (refuses to overwrite one). */
export async function initCa(dir: string, days = defaultCaDays, name = 'galleon-cluster-ca'): Promise<{ dir: string; cert: CertInfo }> {
  checkDays(days, maxCertDays * 2);
  if (await exists(join(dir, caFileNames.key))) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `a CA already exists in ${dir}`, { hint: 'use it (`galleon cert issue --ca-dir`), or pick another --ca-dir' });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `CN=${name}, O=GalleonFS`, notBefore: new Date(now - clockSkewMs), notAfter: new Date(now + days * dayMs),
    keys, signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await writePrivate(join(dir, caFileNames.key), await keyPem(keys.privateKey));
  await writePublic(join(dir, caFileNames.cert), cert.toString('pem'));
  await writePublic(join(dir, caFileNames.issued), '[]\n');
  return { dir, cert: describe(Buffer.from(cert.toString('pem')), join(dir, caFileNames.cert), null) };
}

async function loadCa(dir: string): Promise<{ cert: x509.X509Certificate; key: CryptoKey; pem: string }> {
  let pem: string;
  let keyText: string;
  try {
    [pem, keyText] = await Promise.all([readFile(join(dir, caFileNames.cert), 'utf8'), readFile(join(dir, caFileNames.key), 'utf8')]);
  } catch (err) {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `no CA in ${dir} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, {
      hint: 'create one with `galleon cert init-ca --ca-dir DIR`, or point --ca-dir at it', cause: err,
    });
  }
  const key = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyText), algorithm, false, ['sign']);
  return { cert: new x509.X509Certificate(pem), key, pem };
}

function checkRequest(r: IssueRequest): void {
  if (!namePattern.test(r.name)) throw badInput(`"${r.name}" is not a valid ${r.kind} name`, 'use letters, digits, ".", "_" or "-" (at most 63)');
  for (const ip of r.ips) if (isIP(ip) === 0) throw badInput(`--ip ${ip} is not an IP address`, 'e.g. --ip 10.0.1.10');
  for (const d of r.dns) if (!/^[A-Za-z0-9*]([A-Za-z0-9.-]{0,252})$/.test(d)) throw badInput(`--dns ${d} is not a host name`, 'e.g. --dns node1.example.net');
  checkDays(r.days, maxCertDays);
}

/** Subject alternative names: a node is also reachable on loopback (its local CLI, `galleon up`). */
function sansOf(r: IssueRequest): { dns: string[]; ips: string[] } {
  if (r.kind === 'client') return { dns: [...new Set(r.dns)], ips: [...new Set(r.ips)] };
  return { dns: [...new Set(['localhost', ...r.dns])], ips: [...new Set(['127.0.0.1', '::1', ...r.ips])] };
}

/**
 * Issues a certificate signed by the CA in `caDir` into `outDir` (ca.crt, tls.crt, tls.key).
 * `nowMs` is the clock validity counts from (tests pass one in the past for an expired certificate).
 */
export async function issue(caDir: string, r: IssueRequest, outDir: string, nowMs: () => number = Date.now): Promise<{ record: IssuedRecord; cert: CertInfo }> {
  checkRequest(r);
  const ca = await loadCa(caDir);
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = nowMs();
  const notAfter = new Date(Math.min(now + r.days * dayMs, ca.cert.notAfter.getTime()));
  const sans = sansOf(r);
  const usages = r.kind === 'node' ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.clientAuth];
  const altNames = [...sans.dns.map((value) => ({ type: 'dns' as const, value })), ...sans.ips.map((value) => ({ type: 'ip' as const, value }))];
  const sn = serial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: sn, subject: `CN=${r.name}, OU=${r.kind === 'node' ? nodeOrgUnit : clientOrgUnit}, O=GalleonFS`, issuer: ca.cert.subject,
    notBefore: new Date(now - clockSkewMs), notAfter, publicKey: keys.publicKey, signingKey: ca.key, signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames, false)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
    ],
  });
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  await writePrivate(join(outDir, tlsFileNames.key), await keyPem(keys.privateKey));
  await writePublic(join(outDir, tlsFileNames.cert), cert.toString('pem'));
  await writePublic(join(outDir, tlsFileNames.ca), ca.pem);
  // A new folder knows what its CA revoked (a node issued after a revocation enforces it too).
  const revoked = await readRevoked(caDir).catch((): RevokedRecord[] => []);
  if (revoked.length > 0) await writeRevoked(outDir, revoked);
  const record: IssuedRecord = { serial: sn, kind: r.kind, name: r.name, dns: sans.dns, ips: sans.ips, notAfter: notAfter.toISOString(), dir: outDir, issuedAt: new Date(now).toISOString() };
  await appendIssued(caDir, record);
  return { record, cert: describe(Buffer.from(cert.toString('pem')), join(outDir, tlsFileNames.cert), Buffer.from(ca.pem)) };
}

export async function listIssued(caDir: string): Promise<IssuedRecord[]> {
  try {
    return JSON.parse(await readFile(join(caDir, caFileNames.issued), 'utf8')) as IssuedRecord[];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `no CA in ${caDir}`, { hint: 'point --ca-dir at a folder made by `galleon cert init-ca` (or `galleon up`: <dir>/ca)' });
    }
    throw err;
  }
}

/** Appends to the CA's list one at a time per folder (several certificates issued at once, as a harness does). */
const appending = new Map<string, Promise<void>>();

function appendIssued(caDir: string, record: IssuedRecord): Promise<void> {
  const next = (appending.get(caDir) ?? Promise.resolve()).then(async () => {
    const list = await listIssued(caDir).catch((): IssuedRecord[] => []);
    list.push(record);
    await writePublic(join(caDir, caFileNames.issued), `${JSON.stringify(list, null, 2)}\n`);
  });
  appending.set(caDir, next.catch(() => undefined));
  return next;
}

/** What a certificate file in `dir` says, to re-issue it as it was. */
export async function requestOf(dir: string, days: number): Promise<IssueRequest> {
  const pem = await readFile(join(dir, tlsFileNames.cert)).catch((err: unknown) => {
    throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `no certificate ${join(dir, tlsFileNames.cert)} to rotate`, { hint: 'issue one first: `galleon cert issue`', cause: err });
  });
  const c = new X509Certificate(pem);
  const info = describe(pem, join(dir, tlsFileNames.cert), null);
  const name = /CN=([^\n,]+)/.exec(c.subject)?.[1] ?? '';
  const sans = (c.subjectAltName ?? '').split(', ').filter((s) => s !== '');
  const kind: CertKind = info.kind === 'client' ? 'client' : 'node';
  const dns = sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  const ips = sans.filter((s) => s.startsWith('IP Address:')).map((s) => normalizeIp(s.slice(11)));
  return { kind, name, dns, ips, days };
}

/** node prints IPv6 SANs in full hex groups; give them back short so re-issue keeps them equal. */
function normalizeIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  return new URL(`http://[${ip}]/`).hostname.replace(/^\[|\]$/g, '');
}

/** Describes a PEM certificate; `caPem` (when given) is checked as its issuer. */
export function describe(pem: Buffer, file: string, caPem: Buffer | null): CertInfo {
  const c = new X509Certificate(pem);
  const kind = c.ca ? 'ca' : c.subject.includes(`OU=${nodeOrgUnit}`) ? 'node' : c.subject.includes(`OU=${clientOrgUnit}`) ? 'client' : 'unknown';
  let signedByCa: boolean | null = null;
  if (caPem !== null) {
    const ca = new X509Certificate(caPem);
    signedByCa = c.checkIssued(ca) && c.verify(ca.publicKey);
  }
  return {
    file, subject: c.subject.replace(/\n/g, ', '), issuer: c.issuer.replace(/\n/g, ', '), kind, serial: c.serialNumber.toLowerCase(),
    notBefore: new Date(c.validFrom).toISOString(), notAfter: new Date(c.validTo).toISOString(), expired: Date.parse(c.validTo) < Date.now(),
    subjectAltName: c.subjectAltName ?? null, fingerprint256: c.fingerprint256, signedByCa,
  };
}

/** Writes a revocation list into a CA or TLS folder (temp file + rename: a watcher never reads half). */
export async function writeRevoked(dir: string, list: readonly RevokedRecord[]): Promise<void> {
  await writePublic(join(dir, revokedFileName), `${JSON.stringify(list, null, 2)}\n`);
}

/**
 * Revokes in the CA's list every certificate it issued whose serial is `target` (or starts with
 * it: `cert list` prints 16 hex digits) or whose node or client name is `target`; answers the
 * records revoked now. Nothing matches: one line, nothing written.
 */
export async function revoke(caDir: string, target: string, nowMs: () => number = Date.now): Promise<{ revoked: RevokedRecord[]; list: RevokedRecord[] }> {
  const issued = await listIssued(caDir);
  const hex = /^[0-9a-fA-F:]{8,}$/.test(target) ? normalizeSerial(target) : null;
  const hits = issued.filter((r) => r.name === target || (hex !== null && normalizeSerial(r.serial).startsWith(hex)));
  if (hits.length === 0) {
    throw badInput(`the CA in ${caDir} issued no certificate with serial or name ${JSON.stringify(target).slice(0, 80)}`, 'see the serials and names with: galleon cert list');
  }
  const list = await readRevoked(caDir);
  const known = new Set(list.map((r) => normalizeSerial(r.serial)));
  const at = new Date(nowMs()).toISOString();
  const added = hits.filter((r) => !known.has(normalizeSerial(r.serial))).map((r) => ({ serial: normalizeSerial(r.serial), name: r.name, kind: r.kind, revokedAt: at }));
  const next = [...list, ...added];
  await writeRevoked(caDir, next);
  return { revoked: added, list: next };
}
