/**
 * Turns any failure into the CLI's one line and exit code. Pure.
 * Exit codes: 1 other failure, 2 bad input, 3 no daemon / cluster unavailable, 4 not found,
 * 5 conflict (exists, in use, precondition), 6 refused: no or a bad token (401), or not allowed (403).
 */
import { ErrorCode, GalleonError, isGalleonError } from '../../proto/errors.js';

export const ExitCode = { Failure: 1, Usage: 2, Unavailable: 3, NotFound: 4, Conflict: 5, Denied: 6 } as const;

const exitByCode: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: ExitCode.Usage, INVALID_SIZE: ExitCode.Usage, OUT_OF_RANGE: ExitCode.Usage, TLS_REQUIRED: ExitCode.Usage,
  DAEMON_UNREACHABLE: ExitCode.Unavailable, UNAVAILABLE: ExitCode.Unavailable, NO_LEADER: ExitCode.Unavailable,
  TIMEOUT: ExitCode.Unavailable, NOT_LEADER: ExitCode.Unavailable, PROPOSAL_DROPPED: ExitCode.Unavailable,
  VOLUME_NOT_FOUND: ExitCode.NotFound, STORAGE_CLASS_NOT_FOUND: ExitCode.NotFound, NODE_NOT_FOUND: ExitCode.NotFound,
  MEMBER_NOT_FOUND: ExitCode.NotFound, SNAPSHOT_NOT_FOUND: ExitCode.NotFound,
  SNAPSHOT_EXISTS: ExitCode.Conflict, SNAPSHOT_IN_USE: ExitCode.Conflict,
  BACKUP_TARGET_NOT_FOUND: ExitCode.NotFound, BACKUP_NOT_FOUND: ExitCode.NotFound, BACKUP_POLICY_NOT_FOUND: ExitCode.NotFound, OPERATION_NOT_FOUND: ExitCode.NotFound,
  BACKUP_TARGET_EXISTS: ExitCode.Conflict,
  USER_NOT_FOUND: ExitCode.NotFound, TOKEN_NOT_FOUND: ExitCode.NotFound,
  USER_EXISTS: ExitCode.Conflict,
  UNAUTHENTICATED: ExitCode.Denied, PERMISSION_DENIED: ExitCode.Denied,
  VOLUME_EXISTS: ExitCode.Conflict, STORAGE_CLASS_EXISTS: ExitCode.Conflict, STORAGE_CLASS_IN_USE: ExitCode.Conflict,
  FAILED_PRECONDITION: ExitCode.Conflict, INSUFFICIENT_NODES: ExitCode.Conflict,
};

export interface RenderedError {
  line: string;
  exitCode: number;
  error: { code: string; message: string; hint?: string };
}

/** oclif's parser errors are several lines ending in "See more help with --help": keep the first. */
function firstLine(message: string): string {
  const line = message.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? 'unknown error';
  return line.replace(/^Error:\s*/, '');
}

/** oclif's parser spreads one problem over lines ("Parsing --replicas", "Expected an integer…"): join them. */
function parserMessage(message: string): string {
  const lines = message.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l !== '' && !/^See more help/i.test(l));
  let out = '';
  for (const line of lines) out = out === '' ? line : `${out}${out.endsWith(':') ? ' ' : ': '}${line}`;
  return (out === '' ? 'unknown error' : out)
    .replace(/^Error:\s*/, '')
    // oclif's preamble to its list of problems says nothing the problem does not.
    .replace(/^The following errors? occurred:\s*/i, '')
    .replace(/^Missing required flag:?\s*-*([\w-]+)/, 'missing required flag --$1');
}

export function renderError(err: unknown, commandId: string | undefined): RenderedError {
  if (isGalleonError(err)) {
    const message = firstLine(err.message);
    const line = err.hint === undefined ? `Error: ${message}` : `Error: ${message} — ${err.hint}`;
    const error: RenderedError['error'] = { code: err.code, message };
    if (err.hint !== undefined) error.hint = err.hint;
    return { line, exitCode: exitByCode[err.code] ?? ExitCode.Failure, error };
  }
  const message = parserMessage(err instanceof Error ? err.message : String(err));
  // Anything else reaching here comes from oclif's parser (unknown flag, bad option, missing arg).
  const hint = `see \`galleon ${commandId === undefined ? '' : `${commandId.replaceAll(':', ' ')} `}--help\``;
  return { line: `Error: ${message} — ${hint}`, exitCode: ExitCode.Usage, error: { code: ErrorCode.INVALID_ARGUMENT, message, hint } };
}

export function usageError(message: string, hint: string): GalleonError {
  return new GalleonError(ErrorCode.INVALID_ARGUMENT, message, { hint });
}
