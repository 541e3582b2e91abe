/**
 * Pure decisions of the file-data layer: which blocks a byte range touches, which bytes of a
 * block a buffer already covers, and when to read ahead. No I/O, clock or randomness (the
 * lint config enforces it), so every rule here is tested exhaustively in memory
 * (test/vfs/data/layout.test.ts).
 */
import { invariant } from '../../proto/errors.js';

/** A half-open byte range [start, end) inside one block. */
export type Span = readonly [start: number, end: number];

/** The blocks [first, last] that bytes [offset, offset + length) touch (length > 0). */
export function blockRange(offset: number, length: number, blockSizeBytes: number): { first: number; last: number } {
  invariant(length > 0 && offset >= 0, `block range of ${length} bytes at ${offset}`);
  return { first: Math.floor(offset / blockSizeBytes), last: Math.floor((offset + length - 1) / blockSizeBytes) };
}

/** How many blocks a file of `sizeBytes` spans (its last one may be partial). */
export function blocksOf(sizeBytes: number, blockSizeBytes: number): number {
  return Math.ceil(sizeBytes / blockSizeBytes);
}

/** The bytes of block `blockNo` a file of `sizeBytes` holds: B for inner blocks, less for the last, 0 beyond. */
export function blockLength(blockNo: number, sizeBytes: number, blockSizeBytes: number): number {
  return Math.max(0, Math.min(blockSizeBytes, sizeBytes - blockNo * blockSizeBytes));
}

/** `spans` (sorted, disjoint, non-adjacent) with [start, end) added and neighbours merged. */
export function addSpan(spans: readonly Span[], start: number, end: number): Span[] {
  invariant(start < end, `empty span [${start}, ${end})`);
  const out: Span[] = [];
  let s = start;
  let e = end;
  for (const sp of spans) {
    if (sp[1] < s) out.push(sp);
    else if (sp[0] > e) out.push(sp);
    else { s = Math.min(s, sp[0]); e = Math.max(e, sp[1]); }
  }
  out.push([s, e]);
  return out.sort((a, b) => a[0] - b[0]);
}

/** The spans cut off at `end` (what a truncate leaves of a buffered block). */
export function clipSpans(spans: readonly Span[], end: number): Span[] {
  return spans.filter((s) => s[0] < end).map((s) => [s[0], Math.min(s[1], end)] as const);
}

/** The parts of [start, end) that no span covers: where a block's stored bytes must be merged in. */
export function gaps(spans: readonly Span[], start: number, end: number): Span[] {
  const out: Span[] = [];
  let at = start;
  for (const [s, e] of spans) {
    if (e <= at) continue;
    if (s >= end) break;
    if (s > at) out.push([at, s]);
    at = Math.max(at, e);
  }
  if (at < end) out.push([at, end]);
  return out;
}

export interface ReadAheadState {
  /** The block a sequential reader reads next. */
  nextBlock: number;
  /** Blocks fetched ahead of the reader; 0 while access looks random. */
  windowBlocks: number;
}

export interface ReadAheadLimits {
  initialWindowBlocks: number;
  maxWindowBlocks: number;
}

export const noReadAhead: ReadAheadState = { nextBlock: 0, windowBlocks: 0 };

/**
 * After a read of blocks [first, last]: access is sequential when it starts where the previous
 * read ended (or inside that read's last block, as 128 KiB reads of a 1 MiB block do). The
 * window starts at `initialWindowBlocks` and doubles each time the reader enters a new block,
 * up to `maxWindowBlocks`; a random read closes it. Returns the blocks to fetch ahead,
 * [from, to), empty when the window is closed.
 *
 * While the window is open, the kernel has several reads of the stream in flight at once (its
 * own read-ahead, FUSE async reads) and they reach us in any order: a read that starts within
 * the window around the reader's position (`windowBlocks` behind or ahead of `nextBlock`) is
 * still the stream. One behind the position keeps the window and the position; one ahead
 * moves the position and grows the window. Only a read outside that band closes it.
 */
export function planReadAhead(s: ReadAheadState, first: number, last: number, l: ReadAheadLimits): { state: ReadAheadState; from: number; to: number } {
  invariant(first <= last && l.initialWindowBlocks >= 1 && l.maxWindowBlocks >= l.initialWindowBlocks, 'read-ahead plan arguments');
  const W = s.windowBlocks;
  const inBand = W > 0 ? first >= s.nextBlock - 1 - W && first <= s.nextBlock + W : first === s.nextBlock || first === s.nextBlock - 1;
  let state: ReadAheadState;
  if (!inBand) state = { nextBlock: last + 1, windowBlocks: 0 };
  else if (last < s.nextBlock) state = { nextBlock: s.nextBlock, windowBlocks: W };
  else state = { nextBlock: last + 1, windowBlocks: W === 0 ? l.initialWindowBlocks : Math.min(2 * W, l.maxWindowBlocks) };
  invariant(state.windowBlocks <= l.maxWindowBlocks && state.nextBlock > last, 'read-ahead position past the read, window within its bound');
  return { state, from: state.nextBlock, to: state.nextBlock + state.windowBlocks };
}

/**
 * Which blocks of the read-ahead window [from, to) to fetch now: runs [start, end) of blocks not
 * `held` (cached, in flight or buffered), clipped at `limitBlock` (the end of the stored data).
 * As the window slides one block per read, fetching what is missing at once costs one request per
 * block; so the fetch waits until `minBatchBlocks` of the window are missing and takes them in one
 * range read — unless the reader's next block itself is missing (it would stall) or the window
 * reaches the end of the data (what is left there never grows to a batch).
 */
export function readAheadRuns(from: number, to: number, limitBlock: number, held: (b: number) => boolean, minBatchBlocks: number): [number, number][] {
  invariant(from <= to && minBatchBlocks >= 1, 'read-ahead runs arguments');
  const end = Math.min(to, limitBlock);
  const runs: [number, number][] = [];
  let missing = 0;
  for (let b = from; b < end; b++) {
    if (held(b)) continue;
    missing++;
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === b) last[1] = b + 1;
    else runs.push([b, b + 1]);
  }
  if (missing === 0) return [];
  const urgent = runs[0]?.[0] === from || end < to;
  return urgent || missing >= minBatchBlocks ? runs : [];
}
