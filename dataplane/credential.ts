/**
 * Outgoing block traffic carries the node credential (issue #12): `authorization: Bearer <token>`
 * added to every request of a dispatcher by one undici interceptor, so no request site of the
 * block client, the replication peers or the repair source has to remember it. Until mutual TLS
 * lands (x-tls), this header is how a data node knows a replicate or peering request comes from
 * a node of its cluster.
 */
import type { Dispatcher } from 'undici';
import { authorizationHeader, bearer } from '../proto/auth-token.js';

/** `d` itself without a token; otherwise `d` with the header added to every request. */
export function withNodeCredential(d: Dispatcher, token: string | undefined): Dispatcher {
  if (token === undefined) return d;
  const value = bearer(token);
  return d.compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: addHeader(opts.headers, value) }, handler));
}

/** Plain headers for a one-off `request()` (the repair source). */
export function credentialHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { [authorizationHeader]: bearer(token) };
}

function addHeader(headers: Dispatcher.DispatchOptions['headers'], value: string): NonNullable<Dispatcher.DispatchOptions['headers']> {
  if (headers === undefined || headers === null) return { [authorizationHeader]: value };
  if (Array.isArray(headers)) return [...headers, authorizationHeader, value];
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return [...(headers as Iterable<[string, string]>)].flat().concat([authorizationHeader, value]);
  }
  return { ...(headers as Record<string, string>), [authorizationHeader]: value };
}
