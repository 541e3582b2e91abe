import { Flags } from '@oclif/core';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GalleonCommand } from '../../lib/base-command.js';
import { usageError } from '../../lib/errors.js';
import type { DaemonConfig, DaemonStatus } from '../../daemon/types.js';
import type { DaemonSettings } from '../../daemon/config.js';

export default class DaemonStart extends GalleonCommand {
  static override summary = 'Run a GalleonFS node (foreground, or in the background with --detach).';
  static override description = [
    'Run a GalleonFS node: a member of the metadata quorum and a data node (--roles).',
    'Without --peer-addresses it starts a new one-member cluster; with them it joins that running cluster',
    'as a learner and becomes a voter while the quorum has fewer than its target of voters.',
    'Runs in the foreground until SIGTERM/SIGINT (graceful stop); SIGHUP re-reads the config file and applies its [log] level.',
    '--detach runs it in the background (pid and log under --storage-path).',
  ].join('\n');

  static override examples = [
    '<%= config.bin %> daemon start',
    '<%= config.bin %> daemon start -d --storage-path ./node1 --bind-address 127.0.0.1:8081 --ipc-address 127.0.0.1:8091',
    '<%= config.bin %> daemon start -d --storage-path ./node2 --bind-address 127.0.0.1:8082 --ipc-address 127.0.0.1:8092 --peer-addresses 127.0.0.1:8081',
    '<%= config.bin %> daemon start --config /etc/galleonfs/daemon.toml',
  ];

  // No oclif defaults here: a flag must be told apart from "not given" so the config file can fill it.
  static override flags = {
    detach: Flags.boolean({ char: 'd', summary: 'Run in the background (pid file and log under the storage path).', default: false }),
    config: Flags.string({ summary: 'TOML or YAML configuration file (flags override it).' }),
    roles: Flags.string({ summary: 'Comma-separated roles: metadata,data. [default: metadata,data]' }),
    'storage-path': Flags.string({ summary: 'Storage directory. [default: ./galleonfs_storage]' }),
    'bind-address': Flags.string({ summary: 'gRPC address for Raft and the metadata API. [default: 127.0.0.1:8080]' }),
    'ipc-address': Flags.string({ summary: 'Admin HTTP/JSON address the CLI talks to. [default: 127.0.0.1:8090]' }),
    'data-address': Flags.string({ summary: 'Data-plane (block traffic) address this node registers. [default: 127.0.0.1:8070]' }),
    'peer-addresses': Flags.string({ summary: 'Comma-separated bind addresses of a running cluster to join.' }),
    'node-id': Flags.string({ summary: 'Node id (default: a random id persisted under the storage path).' }),
    'block-size': Flags.string({ summary: 'Default block size of volumes created through this daemon: a power of two from 4K to 1M. [default: 128K]' }),
    'replication-strategy': Flags.string({ summary: 'Replication strategy. [default: synchronous]', options: ['synchronous', 'asynchronous'] }),
    'persistence-level': Flags.string({ summary: 'Data persistence level. [default: enhanced]', options: ['basic', 'enhanced', 'high', 'maximum'] }),
    zone: Flags.string({ summary: 'Failure zone of this node. [default: default]' }),
    'target-voters': Flags.string({ summary: 'Voters the quorum grows to as nodes join. [default: 3]', options: ['1', '3', '5'] }),
    'heartbeat-interval-ms': Flags.string({ summary: 'Data role: heartbeat to the metadata service every this many ms. [default: 1000]' }),
    'lease-ttl-ms': Flags.string({ summary: 'pg-primary lease ttl in ms; use the same on every node. [default: 4000]' }),
    'mount-point': Flags.string({ summary: 'Mount every volume at <DIR>/<volume-name> as it is created (FUSE; unmounted at stop).' }),
    'key-file': Flags.string({ summary: 'Cluster key file that wraps encrypted volumes\' data keys (made, mode 0600, when a node starts a new cluster). [default: <storage-path>/cluster.key]' }),
    'kms-address': Flags.string({ summary: 'Vault transit engine (http://host:8200) that wraps new volumes\' data keys instead of the key file; token from GALLEON_KMS_TOKEN or VAULT_TOKEN.' }),
    'kms-key': Flags.string({ summary: 'Name of the Vault transit key (with --kms-address).' }),
    auth: Flags.boolean({ summary: 'Require a token on every request (admin endpoint, metadata API, block port). [default: on with --node-token-file]', allowNo: true }),
    'node-token-file': Flags.string({ summary: 'The cluster\'s node credential (mode 0600; made by the first node if missing). [default: <storage-path>/node-token]' }),
    'tls-dir': Flags.string({ summary: 'This node\'s TLS folder: ca.crt (the cluster CA), tls.crt and tls.key (`galleon cert issue --node ID --out DIR`). [default: <storage-path>/tls]' }),
    freshness: Flags.string({ summary: 'Encrypted reads no other in-sync replica can check for a rollback: serve and count them (best-effort), or refuse them (strict). [default: best-effort]', options: ['best-effort', 'strict'] }),
    'insecure-plaintext': Flags.boolean({ summary: 'Turn mutual TLS off on every endpoint (no encryption, no authentication of nodes or clients): for development only.', default: false }),
    'data-node-down-after-ms': Flags.string({ summary: 'Metadata role: mark a data node down after this many ms without heartbeats; must exceed the lease ttl plus its margin. [default: 10000]' }),
  };

  async run(): Promise<DaemonStatus | DaemonConfig> {
    const { flags } = await this.parse(DaemonStart);
    const { parseConfigFile, resolveDaemonConfig } = await import('../../daemon/config.js');
    let fromFile: DaemonSettings = {};
    let configFile: string | null = null;
    if (flags.config !== undefined) {
      configFile = resolve(flags.config);
      let text: string;
      try {
        text = await readFile(configFile, 'utf8');
      } catch (err) {
        throw usageError(`cannot read config file ${flags.config} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, 'check the --config path');
      }
      fromFile = parseConfigFile(text, flags.config);
    }
    const fromFlags: DaemonSettings = {};
    const set = <K extends keyof DaemonSettings>(key: K, value: DaemonSettings[K] | undefined): void => { if (value !== undefined) fromFlags[key] = value; };
    set('roles', flags.roles);
    set('storagePath', flags['storage-path']);
    set('bindAddress', flags['bind-address']);
    set('ipcAddress', flags['ipc-address']);
    set('dataAddress', flags['data-address']);
    set('peerAddresses', flags['peer-addresses']);
    set('nodeId', flags['node-id']);
    set('blockSize', flags['block-size']);
    set('replicationStrategy', flags['replication-strategy']);
    set('persistenceLevel', flags['persistence-level']);
    set('zone', flags.zone);
    set('targetVoters', flags['target-voters'] === undefined ? undefined : Number(flags['target-voters']));
    set('heartbeatIntervalMs', flags['heartbeat-interval-ms']);
    set('leaseTtlMs', flags['lease-ttl-ms']);
    set('dataNodeDownAfterMs', flags['data-node-down-after-ms']);
    set('mountPoint', flags['mount-point']);
    set('keyFile', flags['key-file']);
    set('kmsAddress', flags['kms-address']);
    set('kmsKey', flags['kms-key']);
    set('authRequired', flags.auth);
    set('nodeTokenFile', flags['node-token-file']);
    set('tlsDir', flags['tls-dir']);
    set('freshness', flags.freshness);
    if (flags['insecure-plaintext']) set('tls', false);
    const config = resolveDaemonConfig(fromFile, fromFlags, configFile);
    config.storagePath = resolve(config.storagePath);
    if (config.mountPoint !== null) config.mountPoint = resolve(config.mountPoint);
    if (config.keyFile !== null) config.keyFile = resolve(config.keyFile);
    if (config.nodeTokenFile !== null) config.nodeTokenFile = resolve(config.nodeTokenFile);
    if (config.tlsDir !== null) config.tlsDir = resolve(config.tlsDir);

    if (flags.detach) return this.detach(config);

    const { Daemon } = await import('../../daemon/daemon.js');
    const { installProcessGuard } = await import('../../../proto/process-guard.js');
    const daemon = await Daemon.start(config);
    installProcessGuard({ logger: daemon.logger, registry: daemon.registry, onFatal: () => daemon.removePidFileSync() });
    // SIGHUP's default is to die silently (issue #10): here it reloads, as systemd's ExecReload asks.
    const onHangup = (): void => { void daemon.reload(); };
    process.on('SIGHUP', onHangup);
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        daemon.logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      daemon.logger.info({ signal }, 'signal received, stopping gracefully');
      void daemon.stop();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    await daemon.stopped;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHangup);
    // gRPC and LevelDB handles are closed; exit now rather than wait on stray timers of libraries.
    process.exit(0);
  }

  private async detach(config: DaemonConfig): Promise<DaemonStatus> {
    const { spawnDetachedDaemon } = await import('../../lib/spawn-daemon.js');
    const { assertStorageFree } = await import('../../daemon/pidfile.js');
    await assertStorageFree(config.storagePath);
    const args = ['--roles', config.roles.join(','), '--storage-path', config.storagePath, '--bind-address', config.bindAddress,
      '--ipc-address', config.ipcAddress, '--data-address', config.dataAddress, '--block-size', String(config.blockSizeBytes), '--replication-strategy', config.replicationStrategy,
      '--persistence-level', config.persistenceLevel, '--zone', config.zone, '--target-voters', String(config.targetVoters),
      '--heartbeat-interval-ms', String(config.heartbeatIntervalMs), '--lease-ttl-ms', String(config.leaseTtlMs), '--data-node-down-after-ms', String(config.dataNodeDownAfterMs)];
    if (config.peerAddresses.length > 0) args.push('--peer-addresses', config.peerAddresses.join(','));
    if (config.nodeId !== null) args.push('--node-id', config.nodeId);
    if (config.mountPoint !== null) args.push('--mount-point', config.mountPoint);
    if (config.keyFile !== null) args.push('--key-file', config.keyFile);
    if (config.kms !== null) args.push('--kms-address', config.kms.address, '--kms-key', config.kms.keyName);
    if (config.nodeTokenFile !== null) args.push('--auth', '--node-token-file', config.nodeTokenFile);
    if (config.configFile !== null) args.push('--config', config.configFile);
    if (config.tlsDir !== null) args.push('--tls-dir', config.tlsDir);
    if (!config.tls) args.push('--insecure-plaintext');
    args.push('--freshness', config.freshness);
    // The node's own certificate (it also identifies a client) lets this process watch it start;
    // missing or mismatched files stop here with one line, before anything is spawned.
    const { loadNodeTls } = await import('../../lib/tls.js');
    const tls = await loadNodeTls(config);
    const started = await spawnDetachedDaemon(args, config.storagePath, config.ipcAddress, tls?.material ?? null, config.nodeTokenFile);
    this.print(`Daemon ${started.status.nodeId} started in the background (pid ${started.pid}).\n  admin: ${config.ipcAddress}\n  log:   ${started.logFile}\nStop it with: galleon daemon stop --daemon-address ${config.ipcAddress}`);
    return started.status;
  }
}
