import { Flags } from '@oclif/core';
import { GalleonCommand } from '../lib/base-command.js';
import { usageError } from '../lib/errors.js';
import type { NodeMount, UpResult } from '../local/cluster.js';

export default class Up extends GalleonCommand {
  static override summary = 'Start a local N-node cluster on loopback in the background.';
  static override description = [
    'Start a local cluster: N daemons on loopback in the background, storage, logs and pid files under --dir.',
    'Waits until it is healthy (a leader, all members voters) and writes <dir>/cluster.json.',
    'Node 1\'s admin address is 127.0.0.1:8090 when that port is free, so plain `galleon volume list` works.',
    'Running it again when the cluster is up says so; after `galleon down`, or when some nodes died, it restarts the nodes that are down on their own data.',
    'Every connection is mutual TLS: a new cluster gets a CA (<dir>/tls/ca), a certificate per node (<dir>/nodeN/tls) and yours (<dir>/tls/client, where the CLI looks); --insecure-plaintext for development.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> up', '<%= config.bin %> up --nodes 5 --dir /tmp/galleon', '<%= config.bin %> up --base-port 0',
    '<%= config.bin %> up --heartbeat-interval-ms 200 --lease-ttl-ms 1000 --data-node-down-after-ms 1500',
  ];
  static override flags = {
    nodes: Flags.integer({ summary: 'Number of nodes (1 to 7).', default: 3 }),
    dir: Flags.string({ summary: 'Folder for storage, logs, pid files and cluster.json.', default: './.galleon' }),
    'base-port': Flags.integer({ summary: 'First bind port (admin ports start 100 above, data ports 200 above); 0 lets the OS pick every port.' }),
    'heartbeat-interval-ms': Flags.string({ summary: 'Data nodes heartbeat every this many ms. [default: 1000]' }),
    'lease-ttl-ms': Flags.string({ summary: 'pg-primary lease ttl in ms. [default: 4000]' }),
    'data-node-down-after-ms': Flags.string({ summary: 'A data node silent this long is marked down; must exceed the lease ttl plus its margin. [default: 10000]' }),
    auth: Flags.boolean({ summary: 'A new cluster requires tokens (node credential in <dir>/node-token; the admin\'s token in <dir>/admin-token, used by the CLI).', default: true, allowNo: true }),
    'insecure-plaintext': Flags.boolean({ summary: 'Start a new cluster without TLS (no encryption, no authentication between nodes or of the CLI): development only.', default: false }),
    'first-volume': Flags.boolean({ summary: 'Create volume demo (1G, ReadWriteMany) in a cluster without volumes and wait until every node mounted it.', default: true, allowNo: true }),
  };

  async run(): Promise<UpResult & { firstVolumeCreated: boolean; mounts: NodeMount[] }> {
    const { flags } = await this.parse(Up);
    const given = { heartbeatIntervalMs: flags['heartbeat-interval-ms'], leaseTtlMs: flags['lease-ttl-ms'], dataNodeDownAfterMs: flags['data-node-down-after-ms'] };
    // Checked before anything is created or started: a bad combination changes nothing.
    const { resolveFailoverTimings } = await import('../daemon/config.js');
    const timings = Object.values(given).some((v) => v !== undefined)
      ? resolveFailoverTimings(Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)))
      : undefined;
    const base = flags['base-port'];
    // Checked before the folder is made: binds use base.., admin base+100.., data base+200.. .
    const highest = base === undefined ? 0 : base + 200 + flags.nodes - 1;
    if (base !== undefined && (base < 0 || highest > 65535)) {
      throw usageError(`--base-port ${base} puts ports outside 1-65535 (data ports reach ${highest})`, `use 1 to ${65535 - 200 - flags.nodes + 1}, or 0 to let the OS pick every port`);
    }
    const { clusterClient, clusterUp, ensureFirstVolume, firstVolume, waitForMounts } = await import('../local/cluster.js');
    const result = await clusterUp({
      dir: flags.dir, nodes: flags.nodes, basePort: flags['base-port'] ?? null, onProgress: (line) => this.print(line), ...(timings === undefined ? {} : { timings }),
      auth: flags.auth,
      insecurePlaintext: flags['insecure-plaintext'],
    });
    const { cluster, status } = result;
    const firstVolumeCreated = flags['first-volume'] && result.fresh ? await ensureFirstVolume(cluster) : false;
    if (firstVolumeCreated) this.print(`Created volume ${firstVolume.name} (${firstVolume.size}, ${firstVolume.accessMode}); mounting it on every node`);
    const names = (await (await clusterClient(cluster)).route<{ name: string }[]>('volumeList', {})).map((v) => v.name);
    const mounts = flags['first-volume'] && names.includes(firstVolume.name) ? await waitForMounts(cluster, firstVolume.name) : [];
    const mounted = mounts.filter((m) => m.state === 'mounted');
    const addr = cluster.daemonAddress;
    const flag = addr === '127.0.0.1:8090' ? '' : ` --daemon-address ${addr}`;
    const dirFlag = flags.dir === './.galleon' ? '' : ` --dir ${flags.dir}`;
    // Run through `npx galleon` (a fresh clone): suggest the same.
    const bin = process.env.npm_command === 'exec' ? 'npx galleon' : 'galleon';
    this.print([
      result.alreadyUp ? `The ${cluster.nodes.length}-node cluster in ${cluster.dir} is already up (leader ${status.leaderId ?? 'none'}).` : `Cluster ready: ${cluster.nodes.length} nodes, leader ${status.leaderId ?? 'none'}.`,
      ...(result.restarted.length > 0 && result.restarted.length < cluster.nodes.length ? [`Restarted ${result.restarted.join(', ')} (the other nodes were running).`] : []),
      ...mounts.map((m) => `  ${m.node}: ${m.mountPoint} ${m.state === 'mounted' ? '' : `NOT MOUNTED (${m.error ?? m.state})`}`.trimEnd()),
      ...(mounted[0] === undefined ? [] : ['', `Your volume ${firstVolume.name} is a directory on every node:`, `  cd ${mounted[0].mountPoint}`]),
      '',
      'Next:',
      `  ${bin}${flag} volume create --name data --size 1G --access-mode ReadWriteMany   # mounted at <dir>/mnt/<node>/data on every node (ReadWriteOnce, the default: on one)`,
      `  ${bin}${flag} vfs list`,
      `  ${bin}${flag} volume list`,
      `  ${bin}${flag} cluster status`,
      `  ${bin} down${dirFlag}            # stop it (add --purge to delete its data)`,
      ...(cluster.auth === true ? ['', `Commands authenticate as user admin with the token in ${cluster.dir}/admin-token (mode 0600); others: ${bin} user create / token create.`] : []),
      ...(flag === '' ? [] : ['', `Or export GALLEON_ADDRESS=${addr} instead of passing --daemon-address.`]),
      ...(cluster.tls === true
        ? ['', `Mutual TLS: the CLI uses the operator certificate in ${cluster.dir}/tls/client${dirFlag === '' ? '' : ` (pass --tls-dir ${cluster.dir}/tls/client, or${dirFlag})`}.`]
        : ['', 'PLAINTEXT cluster (--insecure-plaintext): nothing is encrypted or authenticated.']),
    ].join('\n'));
    return { ...result, firstVolumeCreated, mounts };
  }
}
