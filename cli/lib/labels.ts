/** `--label k=v` parsing. Pure. Keys follow the Kubernetes label-key shape so they survive export. */
import { usageError } from './errors.js';

const keyPattern = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$/;
const maxValueChars = 256;

export function parseLabels(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (eq < 0 || !keyPattern.test(key)) {
      throw usageError(`invalid label "${item}"`, 'write labels as key=value, e.g. --label team=web');
    }
    const value = item.slice(eq + 1);
    if (value.length > maxValueChars) throw usageError(`label "${key}" is longer than ${maxValueChars} characters`, 'shorten the value');
    out[key] = value;
  }
  return out;
}

/** `volume label`: `k=v` sets, `k-` removes (the kubectl convention). */
export function parseLabelChanges(items: readonly string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const item of items) {
    if (item.endsWith('-') && !item.includes('=')) {
      const key = item.slice(0, -1);
      if (!keyPattern.test(key)) throw usageError(`invalid label key "${key}"`, 'remove a label with key-, e.g. team-');
      out[key] = null;
    } else {
      Object.assign(out, parseLabels([item]));
    }
  }
  if (Object.keys(out).length === 0) throw usageError('no label changes given', 'set with key=value, remove with key-');
  return out;
}
