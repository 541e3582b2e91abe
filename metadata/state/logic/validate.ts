/** Argument checks shared by the command handlers: each throws INVALID_ARGUMENT with a hint. */
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { maxLabelCount, maxLabelKeyChars, maxLabelValueChars, maxNameChars } from '../../../proto/limits.js';

const namePattern = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const labelKeyPattern = /^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function invalidArgument(message: string, hint: string): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, message, { hint });
}

/** Volume and storage-class names: DNS-label style, so they are safe as paths and mount points. */
export function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > maxNameChars || !namePattern.test(name)) {
    throw invalidArgument(`invalid ${what} name ${JSON.stringify(name)}`,
      `use 1-${maxNameChars} lowercase letters, digits and '-', starting and ending with a letter or digit`);
  }
  return name;
}

export function checkNodeId(id: unknown): string {
  if (typeof id !== 'string' || !nodeIdPattern.test(id)) {
    throw invalidArgument(`invalid data node id ${JSON.stringify(id)}`, 'use 1-63 letters, digits, ".", "_" or "-"');
  }
  return id;
}

export function checkString(what: string, v: unknown, hint: string): string {
  if (typeof v !== 'string' || v.length === 0) throw invalidArgument(`${what} must be a non-empty string`, hint);
  return v;
}

/** host:port with a port in 1-65535 (host may be a name, IPv4, or [IPv6]). */
export function checkAddress(what: string, v: unknown): string {
  const hint = 'give host:port, e.g. 127.0.0.1:8081';
  if (typeof v !== 'string') throw invalidArgument(`${what} must be host:port`, hint);
  const colon = v.lastIndexOf(':');
  const host = v.slice(0, colon);
  const port = Number(v.slice(colon + 1));
  if (colon <= 0 || host.length === 0 || !Number.isInteger(port) || port < 1 || port > 65535 || /\s/.test(v)) {
    throw invalidArgument(`${what} ${JSON.stringify(v)} is not host:port`, hint);
  }
  return v;
}

export function checkInt(what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalidArgument(`${what} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`,
      `pass ${what} as an integer in [${min}, ${max}]`);
  }
  return v;
}

export function checkOneOf<T extends string>(what: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalidArgument(`unknown ${what} ${JSON.stringify(v)}`, `use one of: ${allowed.join(', ')}`);
  }
  return v as T;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function checkLabelKey(k: string): void {
  if (k.length > maxLabelKeyChars || !labelKeyPattern.test(k)) {
    throw invalidArgument(`invalid label key ${JSON.stringify(k)}`,
      `use 1-${maxLabelKeyChars} letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit`);
  }
}

export function checkLabelValue(k: string, v: unknown): string {
  if (typeof v !== 'string' || v.length > maxLabelValueChars) {
    throw invalidArgument(`label ${JSON.stringify(k)} must have a string value of at most ${maxLabelValueChars} characters`,
      'quote label values; use a null value to remove a label');
  }
  return v;
}

/** Labels of a new volume: strings only; keys sorted so equal label sets serialize identically. */
export function checkLabels(raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (!isRecord(raw)) throw invalidArgument('labels must be an object of string values', 'pass labels as {"key": "value"}');
  const out: Record<string, string> = {};
  for (const k of Object.keys(raw).sort()) {
    checkLabelKey(k);
    out[k] = checkLabelValue(k, raw[k]);
  }
  checkLabelCount(out);
  return out;
}

export function checkLabelCount(labels: Record<string, string>): void {
  if (Object.keys(labels).length > maxLabelCount) {
    throw invalidArgument(`a volume may have at most ${maxLabelCount} labels`, 'remove labels you no longer need (set them to null)');
  }
}

/** Rejects keys outside `allowed`, naming the first unknown one. */
export function checkKeys(what: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw invalidArgument(`unknown ${what} key ${JSON.stringify(k)}`, `allowed keys: ${allowed.join(', ')}`);
  }
}
