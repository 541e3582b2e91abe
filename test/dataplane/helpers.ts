import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pollUntil, type Probe } from '../support/poll.js';
import { pgOf } from '../../dataplane/logic/routing.js';
import { request } from 'undici';

export async function tempDir(label: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `galleon-${label}-`));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export function waitFor<T>(what: string, check: Probe<T>, timeoutMs = 10_000, intervalMs = 20): Promise<T> {
  return pollUntil(what, check, timeoutMs, intervalMs);
}

/** The first `count` block numbers of inode 0 that route to `pg` (dataplane/logic/routing.ts). */
export function blocksInPg(pgCount: number, pg: number, count: number): number[] {
  const out: number[] = [];
  for (let b = 0; out.length < count; b++) if (pgOf(0, b, pgCount) === pg) out.push(b);
  return out;
}

export function pattern(seed: number, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** A counter's value on a data node's Prometheus endpoint (0 while it has not counted yet). */
export async function metricCounter(address: string, name: string): Promise<number> {
  const text = await (await request(`http://${address}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}
