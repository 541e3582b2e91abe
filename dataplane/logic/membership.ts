/**
 * Pure checks a data node makes before it lets a request change what it knows: whether the
 * request came from the host a cluster member registered, whether a block address lies inside
 * its volume, and how often a request may make the node re-read its placement.
 */
/** Inode numbers above this are refused (the CLI and file layer use far fewer; 2^32 - 1). */
export const maxInodeNumber = 0xffff_ffff;

/** 4 for an IPv4 literal, 6 for an IPv6 one, 0 otherwise (node:net's isIP, without importing node:). */
export function ipVersion(s: string): 0 | 4 | 6 {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4 !== null) return v4.slice(1).every((o) => Number(o) <= 255) ? 4 : 0;
  return s.includes(':') && /^[0-9a-f:.]+$/i.test(s) ? 6 : 0;
}

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) → `127.0.0.1`; lower case. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && ipVersion(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/** The host of `host:port` or `[v6]:port`. */
export function hostOf(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const colon = address.lastIndexOf(':');
  return colon < 0 ? address : address.slice(0, colon);
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}

/**
 * Whether a connection from `remoteIp` may come from the node registered at `registered`
 * (host:port). An IP literal must match (any loopback address matches any other: a node bound to
 * 127.0.0.1 may connect out from 127.0.0.x). A registration by host name or an unspecified address
 * (0.0.0.0, ::) cannot be checked without a resolver and passes; `localhost` needs a loopback peer.
 * This is a cheap filter against other hosts, not authentication: any process on the member's host
 * passes it (mTLS, issue #12, closes that).
 */
export function senderMayBe(registered: string, remoteIp: string | undefined): boolean {
  if (remoteIp === undefined) return false;
  const remote = normalizeIp(remoteIp);
  const host = hostOf(registered).toLowerCase();
  if (host === 'localhost') return isLoopback(remote);
  if (ipVersion(host) === 0 || host === '0.0.0.0' || host === '::') return true;
  const want = normalizeIp(host);
  return want === remote || (isLoopback(want) && isLoopback(remote));
}

/**
 * Why a block address is outside its volume, or null when it is inside: every inode's block
 * numbers stop at the volume's block count (a file cannot hold more than the volume), and inode
 * numbers at `maxInodeNumber`. Without a known size (a static placement) only the inode is checked.
 */
export function blockOutsideVolume(a: { inode: number; blockNo: number }, volume: { sizeBytes?: number; blockSizeBytes?: number }): string | null {
  if (a.inode > maxInodeNumber) return `inode ${a.inode} is above the largest inode number ${maxInodeNumber}`;
  if (volume.sizeBytes === undefined || volume.blockSizeBytes === undefined || volume.blockSizeBytes <= 0) return null;
  const blocks = Math.ceil(volume.sizeBytes / volume.blockSizeBytes);
  if (a.blockNo >= blocks) return `block ${a.blockNo} is beyond the end of the volume (${blocks} blocks of ${volume.blockSizeBytes} bytes)`;
  return null;
}

export interface RefreshLimits {
  /** One request-triggered placement read per volume at most this often. */
  minIntervalMs: number;
  /** Node-wide budget of request-triggered reads (token bucket). */
  perSecond: number;
  burst: number;
}

export interface RefreshBudgetState {
  tokens: number;
  refilledAtMs: number;
}

export type RefreshDecision = { kind: 'start'; state: RefreshBudgetState } | { kind: 'wait'; ms: number } | { kind: 'refuse' };

/**
 * Whether a request may make the node read a volume's placement from the metadata service now:
 * wait while the volume's last read is younger than `minIntervalMs`, refuse when the node-wide
 * bucket is empty (a flood of requests naming unknown epochs or volumes must not become a flood
 * of metadata reads), else start and take a token.
 */
export function decideRefresh(lastStartMs: number | undefined, state: RefreshBudgetState, nowMs: number, limits: RefreshLimits): RefreshDecision {
  if (lastStartMs !== undefined && nowMs - lastStartMs < limits.minIntervalMs) return { kind: 'wait', ms: limits.minIntervalMs - (nowMs - lastStartMs) };
  const tokens = Math.min(limits.burst, state.tokens + ((nowMs - state.refilledAtMs) * limits.perSecond) / 1000);
  if (tokens < 1) return { kind: 'refuse' };
  return { kind: 'start', state: { tokens: tokens - 1, refilledAtMs: nowMs } };
}
