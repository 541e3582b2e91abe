/**
 * One error type for the whole project. Callers branch on `code`, never on `message`.
 * `hint` is the one-line advice the CLI prints after the message. Mapping to gRPC / HTTP
 * status happens only at the edges (see `httpStatusOf`, `grpcStatusOf`).
 */
export const ErrorCode = {
  // client mistakes
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  INVALID_SIZE: 'INVALID_SIZE',
  VOLUME_NOT_FOUND: 'VOLUME_NOT_FOUND',
  VOLUME_EXISTS: 'VOLUME_EXISTS',
  STORAGE_CLASS_NOT_FOUND: 'STORAGE_CLASS_NOT_FOUND',
  STORAGE_CLASS_EXISTS: 'STORAGE_CLASS_EXISTS',
  STORAGE_CLASS_IN_USE: 'STORAGE_CLASS_IN_USE',
  SNAPSHOT_NOT_FOUND: 'SNAPSHOT_NOT_FOUND',
  SNAPSHOT_EXISTS: 'SNAPSHOT_EXISTS',
  /** A snapshot that clones read through, or a volume that still has snapshots. */
  SNAPSHOT_IN_USE: 'SNAPSHOT_IN_USE',
  NODE_NOT_FOUND: 'NODE_NOT_FOUND',
  MEMBER_NOT_FOUND: 'MEMBER_NOT_FOUND',
  INSUFFICIENT_NODES: 'INSUFFICIENT_NODES',
  LEASE_CONFLICT: 'LEASE_CONFLICT',
  LEASE_NOT_FOUND: 'LEASE_NOT_FOUND',
  /** A directory's entries are delegated to another mount session (`details.dir`, `details.session`): recall, then retry. */
  DELEGATED: 'DELEGATED',
  /** `vfs unmount/status/sync` of a volume or path this node has not mounted. */
  MOUNT_NOT_FOUND: 'MOUNT_NOT_FOUND',
  BACKUP_TARGET_NOT_FOUND: 'BACKUP_TARGET_NOT_FOUND',
  BACKUP_TARGET_EXISTS: 'BACKUP_TARGET_EXISTS',
  BACKUP_NOT_FOUND: 'BACKUP_NOT_FOUND',
  BACKUP_POLICY_NOT_FOUND: 'BACKUP_POLICY_NOT_FOUND',
  /** A background operation (snapshot delete, volume restore) this daemon does not know (cli/daemon/operations.ts). */
  OPERATION_NOT_FOUND: 'OPERATION_NOT_FOUND',
  FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  /** A file-system operation refused as POSIX would: `details.errno` holds the name (see posixErrnos). */
  POSIX: 'POSIX',
  /** A state-changing admin request from another site (its Origin is not the endpoint's own). */
  CROSS_ORIGIN_REFUSED: 'CROSS_ORIGIN_REFUSED',
  /** A state-changing admin request without `content-type: application/json`. */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** No credential, or a bad, expired or revoked one (HTTP 401, gRPC UNAUTHENTICATED). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** A known caller whose role or the volume's access policy does not allow the call (HTTP 403). */
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  USER_NOT_FOUND: 'USER_NOT_FOUND',
  USER_EXISTS: 'USER_EXISTS',
  TOKEN_NOT_FOUND: 'TOKEN_NOT_FOUND',
  /** A plaintext request to an endpoint that speaks only mutual TLS (proto/tls.ts). */
  TLS_REQUIRED: 'TLS_REQUIRED',
  // cluster state
  NOT_LEADER: 'NOT_LEADER',
  /** A data node asked to serve a PG as its primary is not its primary (`details.primary`, `details.epoch` say who is). */
  NOT_PRIMARY: 'NOT_PRIMARY',
  NO_LEADER: 'NO_LEADER',
  STALE_EPOCH: 'STALE_EPOCH',
  PROPOSAL_DROPPED: 'PROPOSAL_DROPPED',
  TIMEOUT: 'TIMEOUT',
  UNAVAILABLE: 'UNAVAILABLE',
  DAEMON_UNREACHABLE: 'DAEMON_UNREACHABLE',
  // data
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  BLOCK_NOT_FOUND: 'BLOCK_NOT_FOUND',
  OUT_OF_RANGE: 'OUT_OF_RANGE',
  NO_SPACE: 'NO_SPACE',
  IO_ERROR: 'IO_ERROR',
  WRITE_CONCERN_UNMET: 'WRITE_CONCERN_UNMET',
  /** An encrypted block body failed authentication (changed, moved, or sealed under another key). */
  INTEGRITY_ERROR: 'INTEGRITY_ERROR',
  /** A volume's data key cannot be unwrapped: the key file or KMS is missing, wrong or unreachable. */
  KEY_UNAVAILABLE: 'KEY_UNAVAILABLE',
  // bugs
  INVARIANT_VIOLATION: 'INVARIANT_VIOLATION',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface GalleonErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Structured detail that travels with the error (e.g. `leaderAddress` for NOT_LEADER). */
  details?: Record<string, unknown>;
}

export class GalleonError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: GalleonErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GalleonError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  toJSON(): SerializedError {
    const out: SerializedError = { code: this.code, message: this.message, details: this.details };
    if (this.hint !== undefined) out.hint = this.hint;
    return out;
  }

  static fromJSON(raw: unknown): GalleonError {
    if (isSerializedError(raw)) {
      const opts: GalleonErrorOptions = { details: raw.details ?? {} };
      if (raw.hint !== undefined) opts.hint = raw.hint;
      return new GalleonError(raw.code, raw.message, opts);
    }
    return new GalleonError(ErrorCode.INTERNAL, `malformed error: ${JSON.stringify(raw)}`);
  }
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
}

const knownCodes = new Set<string>(Object.values(ErrorCode));

export function isSerializedError(raw: unknown): raw is SerializedError {
  if (typeof raw !== 'object' || raw === null) return false;
  const r = raw as Record<string, unknown>;
  return typeof r.code === 'string' && knownCodes.has(r.code) && typeof r.message === 'string';
}

export function isGalleonError(err: unknown, code?: ErrorCode): err is GalleonError {
  return err instanceof GalleonError && (code === undefined || err.code === code);
}

/** A broken invariant is a bug: it must stop the process, never be handled and retried. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new GalleonError(ErrorCode.INVARIANT_VIOLATION, `invariant violated: ${message}`);
}

/**
 * The errnos file-system commands answer with (Linux numbers), carried as `details.errno` of a
 * POSIX GalleonError. The FUSE layer returns `-posixErrnoOf(err)` to the kernel.
 */
export const posixErrnos = {
  EPERM: 1, ENOENT: 2, EIO: 5, E2BIG: 7, EACCES: 13, EEXIST: 17, EXDEV: 18, ENOTDIR: 20, EISDIR: 21,
  EINVAL: 22, EFBIG: 27, ENOSPC: 28, EROFS: 30, EMLINK: 31, ERANGE: 34, ENAMETOOLONG: 36, ENOTEMPTY: 39,
  ENODATA: 61, EOPNOTSUPP: 95, ESTALE: 116,
} as const;
export type PosixErrno = keyof typeof posixErrnos;

export function posixError(errno: PosixErrno, message: string, hint: string): GalleonError {
  return new GalleonError(ErrorCode.POSIX, `${errno}: ${message}`, { hint, details: { errno } });
}

/** The errno number of a POSIX error, EIO for any other error (the kernel needs a number). */
export function posixErrnoOf(err: unknown): number {
  if (isGalleonError(err, ErrorCode.POSIX)) {
    const name = err.details.errno;
    if (typeof name === 'string' && Object.hasOwn(posixErrnos, name)) return posixErrnos[name as PosixErrno];
  }
  if (isGalleonError(err, ErrorCode.VOLUME_NOT_FOUND)) return posixErrnos.ENOENT;
  if (isGalleonError(err, ErrorCode.INVALID_ARGUMENT)) return posixErrnos.EINVAL;
  return posixErrnos.EIO;
}

const httpStatusByCode: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400, INVALID_SIZE: 400, OUT_OF_RANGE: 400,
  VOLUME_NOT_FOUND: 404, STORAGE_CLASS_NOT_FOUND: 404, NODE_NOT_FOUND: 404, MEMBER_NOT_FOUND: 404,
  BLOCK_NOT_FOUND: 404, LEASE_NOT_FOUND: 404, MOUNT_NOT_FOUND: 404, SNAPSHOT_NOT_FOUND: 404, SNAPSHOT_EXISTS: 409, SNAPSHOT_IN_USE: 409,
  BACKUP_TARGET_NOT_FOUND: 404, BACKUP_NOT_FOUND: 404, BACKUP_POLICY_NOT_FOUND: 404, OPERATION_NOT_FOUND: 404, BACKUP_TARGET_EXISTS: 409,
  VOLUME_EXISTS: 409, STORAGE_CLASS_EXISTS: 409, STORAGE_CLASS_IN_USE: 409, LEASE_CONFLICT: 409,
  STALE_EPOCH: 409, DELEGATED: 409, FAILED_PRECONDITION: 412, POSIX: 409, INSUFFICIENT_NODES: 422,
  CROSS_ORIGIN_REFUSED: 403, UNSUPPORTED_MEDIA_TYPE: 415, TLS_REQUIRED: 400,
  UNAUTHENTICATED: 401, PERMISSION_DENIED: 403, USER_NOT_FOUND: 404, TOKEN_NOT_FOUND: 404, USER_EXISTS: 409,
  NOT_LEADER: 421, NOT_PRIMARY: 421, NO_LEADER: 503, UNAVAILABLE: 503, PROPOSAL_DROPPED: 503, TIMEOUT: 504,
  NO_SPACE: 507, WRITE_CONCERN_UNMET: 503, INTEGRITY_ERROR: 502, KEY_UNAVAILABLE: 503,
};

export function httpStatusOf(code: ErrorCode): number {
  return httpStatusByCode[code] ?? 500;
}
