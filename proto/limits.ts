/**
 * Limits and defaults that more than one layer uses (metadata/, dataplane/, cli/, vfs/): defined
 * here once, each named with its unit, so a daemon's config, the roles it starts and the checks
 * the metadata service applies cannot drift apart. A limit only one module uses stays there.
 * Pure constants: every layer (including the pure cores) may import this file.
 */

/** Replicas of a placement group a storage class or a volume may ask for. */
export const minReplicaCount = 1;
export const maxReplicaCount = 7;
/** What a storage class gets when it names no replica count. */
export const defaultReplicaCount = 3;

/** How often a data node reports to the metadata service (data role, data node, daemon config). */
export const defaultHeartbeatIntervalMs = 1_000;
/** The heartbeat intervals a daemon may be configured with (and a registration may name). */
export const minHeartbeatIntervalMs = 50;
export const maxHeartbeatIntervalMs = 60_000;
/** A PG primary's lease on the metadata service (lease guard, data role, daemon config). */
export const defaultLeaseTtlMs = 4_000;
/** A data node is marked down after this long without a heartbeat (controllers, daemon config). */
export const defaultDataNodeDownAfterMs = 10_000;
/** ...and never before this many heartbeat intervals went missing (daemon config check). */
export const minMissedHeartbeatCount = 2;

/**
 * How much earlier than its lease's expiry a primary stops acknowledging writes: the lease guard
 * applies it, the daemon config makes "down after" exceed ttl + margin so that two primaries can
 * never acknowledge in the same window.
 */
export function leaseSafetyMarginMs(ttlMs: number): number {
  return Math.max(50, Math.floor(ttlMs / 10));
}

/** The largest volume (the metadata service's size parser and the CLI's). */
export const maxVolumeSizeBytes = 2 ** 50;

/** The largest block body a data node takes by default (block server and block store). */
export const defaultMaxBlockBodyBytes = 4 * 1024 * 1024;

/** The attribute/entry cache timeout a mount may ask for (daemon admin schema, mount manager). */
export const maxMountCacheTimeoutSec = 60;

/** Volume, storage-class and node names (DNS-label style): the admin schema and the state machine. */
export const maxNameChars = 63;
/** Volume labels: the admin schema and the state machine. */
export const maxLabelCount = 64;
export const maxLabelKeyChars = 63;
export const maxLabelValueChars = 255;

/** One path component in a volume's namespace (the state machine, the FUSE statfs answer). */
export const maxFileNameBytes = 255;
/** Largest file (ext4's with 4 KiB blocks): a truncate or write past it is EFBIG (the state machine, the mount). */
export const maxFileSizeBytes = 2 ** 44;
