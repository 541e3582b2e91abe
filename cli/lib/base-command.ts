/**
 * Base of every `galleon` command: the global `--daemon-address` flag, `--json`, and errors as
 * ONE line on stderr with a hint and a non-zero exit code (stack traces only with GALLEON_DEBUG=1).
 * Heavy modules (undici, cli-table3) are imported inside run() paths, so `--help` stays fast.
 */
import { Command, Flags, Errors } from '@oclif/core';
import type { AdminClient } from './admin-client.js';
import { defaultIpcAddress } from './address.js';
import { renderError, usageError } from './errors.js';
import { defaultClusterDir } from './daemon-candidates.js';

/** `--yes` / `-y` of the commands that destroy something (volume delete, storage-class delete, node remove). */
export const yesFlag = Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation (needed without a terminal).', default: false });

export abstract class GalleonCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    'daemon-address': Flags.string({
      summary: `Admin (IPC) address of the daemon to talk to; a comma-separated list is tried in order. [default: ${defaultIpcAddress}]`,
      env: 'GALLEON_ADDRESS',
      helpGroup: 'GLOBAL',
    }),
    dir: Flags.string({
      summary: 'Local cluster folder (of `galleon up`) whose daemons are tried when --daemon-address does not answer.',
      default: defaultClusterDir,
      helpGroup: 'GLOBAL',
    }),
    token: Flags.string({
      summary: 'Token to authenticate with (galleon token create). [default: <dir>/admin-token when present, as galleon up writes it]',
      env: 'GALLEON_TOKEN',
      helpGroup: 'GLOBAL',
    }),
    'tls-dir': Flags.string({
      summary: 'Folder with the client certificate for mutual TLS (ca.crt, tls.crt, tls.key). [default: the config file\'s [security] tls_dir, else <--dir>/tls/client]',
      env: 'GALLEON_TLS_DIR',
      helpGroup: 'GLOBAL',
    }),
  };

  /** A command aimed at one daemon (daemon stop, cluster join) never falls back to another. */
  static daemonScoped = false;

  private adminClient: AdminClient | undefined;

  /**
   * Client for the daemon picked by --daemon-address / GALLEON_ADDRESS; when none of those
   * answers, the config file's and the local cluster's daemons (daemon-candidates.ts), saying
   * on stderr which one it used (stdout stays the --json result).
   */
  protected async admin(flags: { 'daemon-address'?: string | undefined; dir?: string | undefined; token?: string | undefined; 'tls-dir'?: string | undefined }): Promise<AdminClient> {
    if (this.adminClient === undefined) {
      const [{ AdminClient: Client }, { givenCandidates, knownCandidates, defaultConfigFile }, { resolveToken }, { resolveClientTls }] = await Promise.all([
        import('./admin-client.js'), import('./daemon-candidates.js'), import('./token-source.js'), import('./tls.js'),
      ]);
      const scoped = (this.constructor as typeof GalleonCommand).daemonScoped;
      const token = await resolveToken(flags.token, flags.dir);
      const tls = await resolveClientTls(flags['tls-dir'], flags.dir ?? defaultClusterDir, defaultConfigFile);
      this.adminClient = new Client(givenCandidates(flags['daemon-address']), {
        tls,
        fallback: !scoped,
        onFallback: (line) => process.stderr.write(`${line}\n`),
        more: () => knownCandidates(flags.dir),
        ...(token === undefined ? {} : { token }),
      });
    }
    return this.adminClient;
  }

  /**
   * Asks before a destructive operation, as kubectl/heroku do: on a terminal, `<question> [y/N]`
   * on stderr (stdout stays clean for --json); without one, refuses unless --yes was given.
   */
  protected async confirm(action: string, question: string, yes: boolean): Promise<void> {
    if (yes) return;
    if (process.stdin.isTTY !== true) throw usageError(`refusing to ${action} without confirmation (no terminal to ask on)`, 'pass --yes to confirm');
    const { createInterface } = await import('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(`${question} [y/N] `).finally(() => rl.close());
    if (!/^y(es)?$/i.test(answer.trim())) throw usageError(`did not ${action}: not confirmed`, 'answer y, or pass --yes');
  }

  /** Human output only: with --json oclif prints run()'s return value instead. */
  protected print(text: string): void {
    if (!this.jsonEnabled()) this.log(text);
  }

  protected override catch(err: Error & { exitCode?: number }): Promise<unknown> {
    // `this.exit()` and oclif's help/version exits travel as ExitError: let oclif finish them.
    if (err instanceof Errors.ExitError) throw err;
    const rendered = renderError(err, this.id);
    process.exitCode = rendered.exitCode;
    if (this.jsonEnabled()) this.logJson({ error: rendered.error });
    process.stderr.write(`${rendered.line}\n`);
    if (process.env.GALLEON_DEBUG === '1' && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
    return Promise.resolve(undefined);
  }
}
