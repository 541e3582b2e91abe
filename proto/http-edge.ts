/**
 * The parsing every HTTP port does before any route runs (the daemon's admin endpoint and the
 * data node's block server): the request target, its path segments and query, and the limits on
 * them. Each function is total: any input gives a value or a GalleonError INVALID_ARGUMENT with a
 * hint — never a TypeError or URIError, which the servers would answer as a 500 (issue #10:
 * `new URL` threw on the target `//[` and killed the daemon; a malformed `%` escape gave 500s).
 *
 * Why no `new URL`: a target is a path and a query, not a URL. `new URL('//[', base)` reads
 * `//[` as a host, and Node's parser is stricter than its HTTP parser, so the two disagree.
 */
import { ErrorCode, GalleonError } from './errors.js';

/** Longest request target (path + query) any route needs; Node caps headers at 16 KiB anyway. */
export const maxRequestTargetChars = 4096;
/** Longest decoded path segment: names are ≤ 63 chars, ids and numbers shorter still. */
export const maxPathSegmentChars = 256;
/** A route has at most 7 segments (/v1/volumes/:ref/inodes/:n/blocks/:n); allow some slack. */
export const maxPathSegments = 16;

export interface RequestTarget {
  /** The raw path (before `?`), still percent-encoded: match routes against it, then decode. */
  rawPath: string;
  /** Decoded, non-empty path segments. */
  segments: string[];
  query: URLSearchParams;
}

function invalid(message: string, hint: string): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, message, { hint });
}

/** Decodes one percent-encoded path segment, refusing malformed escapes, NUL and overlong ones. */
export function decodePathSegment(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw invalid(`path segment ${JSON.stringify(raw.slice(0, 64))} has a malformed % escape`, 'percent-encode names as encodeURIComponent does (%XX with two hex digits)');
  }
  if (decoded.length > maxPathSegmentChars) throw invalid(`a path segment is longer than ${maxPathSegmentChars} characters`, 'names and ids are at most 63 characters');
  if (decoded.includes('\0')) throw invalid('a path segment holds a NUL character', 'names never contain control characters');
  return decoded;
}

/**
 * Splits an origin-form request target (`/path?query`). Absolute-form, authority-form and `*`
 * targets are refused: no route of ours takes them.
 */
export function parseRequestTarget(raw: string | undefined): RequestTarget {
  const target = raw ?? '';
  if (!target.startsWith('/')) throw invalid(`request target ${JSON.stringify(target.slice(0, 64))} is not a path`, 'send an origin-form target such as /v1/volumes');
  if (target.length > maxRequestTargetChars) throw invalid(`request target is longer than ${maxRequestTargetChars} characters`, 'send a shorter path and query');
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawSegments = rawPath.split('/').filter((p) => p !== '');
  if (rawSegments.length > maxPathSegments) throw invalid(`request path has more than ${maxPathSegments} segments`, 'no route is that deep');
  // URLSearchParams never throws: a malformed escape in the query stays as literal text.
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  return { rawPath, segments: rawSegments.map(decodePathSegment), query };
}

/** `application/json`, with or without parameters (`; charset=utf-8`), case-insensitive. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const media = header.split(';')[0]?.trim().toLowerCase();
  return media === 'application/json';
}

/** The state-changing methods: the ones a cross-site page must never drive. */
export function isStateChangingMethod(method: string | undefined): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
}
