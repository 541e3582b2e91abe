import { Flags } from '@oclif/core';
import { GalleonCommand } from '../../lib/base-command.js';
import { ErrorCode, GalleonError } from '../../../proto/errors.js';
import { isProcessAlive as isAlive } from '../../daemon/pidfile.js';

export const daemonStopTimeoutMs = 30_000;

function isLoopback(address: string): boolean {
  return /^(127\.|localhost:|\[::1\]:)/.test(address);
}

export default class DaemonStop extends GalleonCommand {
  static override daemonScoped = true;
  static override description = 'Stop the daemon gracefully and wait until it is gone.';
  static override examples = ['<%= config.bin %> daemon stop', '<%= config.bin %> daemon stop --daemon-address 127.0.0.1:8091'];
  static override flags = { 'no-wait': Flags.boolean({ summary: 'Return once the daemon has accepted the request.', default: false }) };

  async run(): Promise<{ nodeId: string; pid: number; stopped: boolean }> {
    const { flags } = await this.parse(DaemonStop);
    const client = await this.admin(flags);
    const res = await client.route<{ nodeId: string; pid: number }>('daemonStop', {});
    let stopped = false;
    if (!flags['no-wait']) {
      const deadline = Date.now() + daemonStopTimeoutMs;
      while (!stopped && Date.now() < deadline) {
        try {
          await client.route<unknown>('daemonStatus', {}, undefined, 1_000);
          await new Promise((r) => setTimeout(r, 100));
        } catch (err) {
          stopped = err instanceof GalleonError && err.code === ErrorCode.DAEMON_UNREACHABLE;
        }
      }
      // A daemon on this host: also wait for its process to exit (it closes its stores last).
      if (stopped && isLoopback(client.address)) {
        while (isAlive(res.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        stopped = !isAlive(res.pid);
      }
      if (!stopped) throw new GalleonError(ErrorCode.TIMEOUT, `daemon ${res.nodeId} (pid ${res.pid}) still answers after ${daemonStopTimeoutMs / 1000} s`, { hint: `check its log, or kill ${res.pid}` });
    }
    this.print(`Daemon ${res.nodeId} (pid ${res.pid}) ${stopped ? 'stopped' : 'is stopping'}.`);
    return { nodeId: res.nodeId, pid: res.pid, stopped };
  }
}
