/**
 * Handles released by the kernel whose namespace close is not sent yet. The kernel sends RELEASE
 * after close(2) has returned (FLUSH, which commits size and mtime, is what close(2) waits for),
 * so nothing waits on a close: it rides along with the mount's next fsCommitWrite (no Raft write
 * of its own), or goes as one fsCloseMany after `delayMs` when no commit comes, or at once when
 * `maxClosesPerCommand` are pending. A pending close only keeps an unlinked file's inode and
 * blocks a little longer (until it lands); it changes no name, size or content anyone can see.
 */
import type { Logger } from 'pino';
import type { FsCloses } from '../../proto/metadata-types.js';
import { ErrorCode, GalleonError, invariant } from '../../proto/errors.js';

/** Closes one command carries at most (the namespace's own bound, metadata/state/logic/ns-store.ts). */
export const maxClosesPerCommand = 1_024;
/** How long a released handle waits for a commit to ride on before it is sent alone. */
export const defaultCloseDelayMs = 50;

export interface CloseQueueOptions {
  /** Sends closes as one command (fsCloseMany). */
  send: (closes: FsCloses) => Promise<void>;
  /** Called after closes landed (a last close may have deleted a file: the block reaper's kick). */
  onClosed: (inos: number[]) => void;
  delayMs: number;
  log: Logger;
}

export class CloseQueue {
  private pending: { session: string; ino: number }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly o: CloseQueueOptions) {
    invariant(o.delayMs >= 0, `close delay ${o.delayMs} ms`);
  }

  get size(): number {
    return this.pending.length;
  }

  add(session: string, ino: number): void {
    this.pending.push({ session, ino });
    if (this.pending.length >= maxClosesPerCommand) void this.flush();
    else this.timer ??= setTimeout(() => { this.timer = null; void this.flush(); }, this.o.delayMs);
  }

  /** Takes the pending closes of `session` (up to the bound) for a command about to be sent. */
  take(session: string): FsCloses | undefined {
    const inos: number[] = [];
    const rest: { session: string; ino: number }[] = [];
    for (const p of this.pending) {
      if (p.session === session && inos.length < maxClosesPerCommand) inos.push(p.ino);
      else rest.push(p);
    }
    if (inos.length === 0) return undefined;
    this.pending = rest;
    if (rest.length === 0) this.clearTimer();
    return { session, inos };
  }

  /**
   * The command that carried `closes` answered. Landed: tell. Refused (a definite answer: the
   * command changed nothing): queue them again. No answer (timeout, member unreachable): the
   * command may have been applied, and closing twice could end a handle another open file of
   * this mount still holds — so they are dropped; the lease's end drops the session's handles.
   */
  settled(closes: FsCloses | undefined, err: unknown): void {
    if (closes === undefined) return;
    if (err === undefined) {
      this.o.onClosed(closes.inos);
      return;
    }
    if (err instanceof GalleonError && (err.code === ErrorCode.POSIX || err.code === ErrorCode.INVALID_ARGUMENT)) {
      for (const ino of closes.inos) this.add(closes.session, ino);
      return;
    }
    this.o.log.warn({ err, count: closes.inos.length }, 'closes not confirmed; the mount lease drops the handles when the mount ends');
  }

  /** Sends everything pending now (unmount, timer, bound); a refused or unanswered batch is logged and dropped. */
  async flush(): Promise<void> {
    this.clearTimer();
    const run = this.sending.then(async () => {
      while (this.pending.length > 0) {
        const closes = this.take(this.pending[0]!.session)!;
        try {
          await this.o.send(closes);
          this.o.onClosed(closes.inos);
        } catch (err) {
          this.o.log.warn({ err, count: closes.inos.length }, 'fsCloseMany failed; the mount lease drops the handles when the mount ends');
        }
      }
    });
    this.sending = run.catch(() => undefined);
    return run;
  }

  private clearTimer(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }
}
