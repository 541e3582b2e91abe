/**
 * A real 3-node local cluster (`galleon up`) whose nodes mount every volume under
 * `<dir>/mnt/<node>/<volume>`, for the `*.fuse.test.ts` suites. Teardown always runs: a graceful
 * `galleon down`, then SIGKILL of any daemon left (by pid), then a lazy unmount of any FUSE
 * mount left under the folder, then the folder is removed.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fuseMountPoints, unmountDir } from '../../vfs/fuse/index.js';
import { killClusterDir, makeTempDir, runCli, waitFor } from '../cli/helpers.js';
import { upClientEnv } from '../support/tls.js';

export interface ClusterNode {
  id: string;
  storagePath: string;
  bindAddress: string;
  ipcAddress: string;
  dataAddress: string;
  mountPoint: string;
}

export interface MountedCluster {
  dir: string;
  nodes: ClusterNode[];
  /** `<node mount point>/<volume>` */
  path(node: number, volume: string, ...rest: string[]): string;
  cli(node: number, args: string[]): ReturnType<typeof runCli>;
  teardown(): Promise<void>;
}

export async function startMountedCluster(prefix: string): Promise<MountedCluster> {
  const dir = await makeTempDir(prefix);
  const teardown = async (): Promise<void> => {
    await runCli(['down', '--dir', dir], {}, 60_000).catch(() => undefined);
    await killClusterDir(dir).catch(() => undefined);
    for (const mp of await fuseMountPoints()) if (mp.startsWith(`${dir}/`)) await unmountDir(mp, true).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const up = await runCli(['up', '--dir', dir, '--base-port', '0'], {}, 180_000);
    if (up.code !== 0) throw new Error(`galleon up failed: ${up.stderr}`);
    const cluster = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { nodes: ClusterNode[] };
    const nodes = cluster.nodes;
    // `up` requires tokens and mutual TLS (issue #12): the commands go as its admin, with the
    // token and the client certificate it wrote (upClientEnv).
    return {
      dir, nodes, teardown,
      path: (node, volume, ...rest) => join(nodes[node - 1]?.mountPoint ?? '', volume, ...rest),
      cli: (node, args) => runCli([...args, '--daemon-address', nodes[node - 1]?.ipcAddress ?? ''], upClientEnv(dir)),
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** Waits until `dir` is a live FUSE mount (listed and answering). */
export async function waitMounted(dir: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(`${dir} mounted`, timeoutMs, async () => (await fuseMountPoints()).has(dir));
}

/** The errno name a file-system call failed with, 'no error' if it did not fail. */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'no code';
  }
  return 'no error';
}
