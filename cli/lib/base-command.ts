/**
 * Base of every `galleon` command: the global `--daemon-address` flag, `--json`, and errors as
 * ONE line on stderr with a hint and a non-zero exit code (stack traces only with GALLEON_DEBUG=1).
 * Heavy modules (undici, cli-table3) are imported inside run() paths, so `--help` stays fast.
 */
import { Command, Flags, Errors } from '@oclif/core';
import type { AdminClient } from './admin-client.js';
import { defaultIpcAddress } from './address.js';
import { renderError } from './errors.js';

export abstract class GalleonCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    'daemon-address': Flags.string({
      summary: 'Admin (IPC) address of the daemon to talk to.',
      env: 'GALLEON_ADDRESS',
      default: defaultIpcAddress,
      helpGroup: 'GLOBAL',
    }),
  };

  private adminClient: AdminClient | undefined;

  /** Client for the daemon picked by --daemon-address / GALLEON_ADDRESS. */
  protected async admin(address: string): Promise<AdminClient> {
    if (this.adminClient === undefined) {
      const { AdminClient: Client } = await import('./admin-client.js');
      this.adminClient = new Client(address);
    }
    return this.adminClient;
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
