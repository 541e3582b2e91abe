import { strict as assert } from 'node:assert';
import { parseConfigFile, resolveDaemonConfig } from '../../cli/daemon/config.js';
import { isGalleonError } from '../../proto/errors.js';

const toml = `
[daemon]
storage_path = "/var/lib/galleonfs"
block_size = 8192
bind_address = "0.0.0.0:8080"
ipc_address = "127.0.0.1:8090"
zone = "zone-a"

[cluster]
peer_addresses = ["10.0.1.11:8080", "10.0.1.12:8080"]
target_voters = 5

[replication]
strategy = "asynchronous"

[persistence]
level = "high"
`;

const yaml = `
daemon:
  storage_path: /srv/galleon
  block_size: 64K
  ipc_address: 127.0.0.1:9090
cluster:
  peer_addresses: 10.0.1.11:8080,10.0.1.12:8080
persistence:
  level: maximum
`;

function code(fn: () => unknown, wanted: string, messagePart: string): void {
  assert.throws(fn, (err) => {
    assert.ok(isGalleonError(err), `expected a GalleonError, got ${String(err)}`);
    assert.equal(err.code, wanted);
    assert.ok(err.message.includes(messagePart), `"${err.message}" should mention ${messagePart}`);
    assert.ok(err.hint !== undefined && err.hint !== '', 'every config error carries a hint');
    return true;
  });
}

describe('cli/daemon/config', () => {
  it('reads the spec\'s TOML sections into settings and resolves them', () => {
    const cfg = resolveDaemonConfig(parseConfigFile(toml, 'daemon.toml'), {}, '/etc/galleonfs/daemon.toml');
    assert.deepEqual(cfg, {
      nodeId: null, roles: ['metadata', 'data'], storagePath: '/var/lib/galleonfs', bindAddress: '0.0.0.0:8080',
      ipcAddress: '127.0.0.1:8090', dataAddress: '127.0.0.1:8070', peerAddresses: ['10.0.1.11:8080', '10.0.1.12:8080'],
      blockSizeBytes: 8192, replicationStrategy: 'asynchronous', persistenceLevel: 'high', zone: 'zone-a', targetVoters: 5,
      heartbeatIntervalMs: 1000, leaseTtlMs: 4000, dataNodeDownAfterMs: 10_000,
      configFile: '/etc/galleonfs/daemon.toml', mountPoint: null, keyFile: null, kms: null, nodeTokenFile: null, tls: true, tlsDir: null, freshness: 'best-effort',
    });
  });

  it('[security]: auth on with a node token file (default <storage>/node-token), off by default, a bad value refused', () => {
    assert.equal(resolveDaemonConfig({}, {}, null).nodeTokenFile, null, 'open unless asked (the spec\'s auth_required = false)');
    assert.equal(resolveDaemonConfig(parseConfigFile('[daemon]\nstorage_path = "/srv/g"\n[security]\nauth_required = true\n', 'd.toml'), {}, null).nodeTokenFile, '/srv/g/node-token');
    assert.equal(resolveDaemonConfig({}, { nodeTokenFile: '/etc/g/token' }, null).nodeTokenFile, '/etc/g/token', 'naming the file turns it on');
    assert.equal(resolveDaemonConfig({ authRequired: true }, { authRequired: false }, null).nodeTokenFile, null, '--no-auth wins over the file');
    assert.throws(() => resolveDaemonConfig({ authRequired: 'maybe' }, {}, null), /auth_required/);
  });

  it('reads the same keys from YAML (sizes with suffixes, comma lists)', () => {
    const cfg = resolveDaemonConfig(parseConfigFile(yaml, 'daemon.yaml'), {}, null);
    assert.equal(cfg.storagePath, '/srv/galleon');
    assert.equal(cfg.blockSizeBytes, 65536);
    assert.equal(cfg.ipcAddress, '127.0.0.1:9090');
    assert.deepEqual(cfg.peerAddresses, ['10.0.1.11:8080', '10.0.1.12:8080']);
    assert.equal(cfg.persistenceLevel, 'maximum');
    assert.equal(cfg.replicationStrategy, 'synchronous');
  });

  it('applies the documented defaults with no file and no flags', () => {
    const cfg = resolveDaemonConfig({}, {}, null);
    assert.equal(cfg.storagePath, './galleonfs_storage');
    assert.equal(cfg.bindAddress, '127.0.0.1:8080');
    assert.equal(cfg.ipcAddress, '127.0.0.1:8090');
    assert.equal(cfg.blockSizeBytes, 131072);
    assert.equal(cfg.replicationStrategy, 'synchronous');
    assert.equal(cfg.persistenceLevel, 'enhanced');
    assert.equal(cfg.zone, 'default');
    assert.equal(cfg.targetVoters, 3);
    assert.deepEqual(cfg.peerAddresses, []);
  });

  it('lets flags override the file, key by key', () => {
    const cfg = resolveDaemonConfig(parseConfigFile(toml, 'd.toml'), { blockSize: '4K', zone: 'zone-b', peerAddresses: '' }, null);
    assert.equal(cfg.blockSizeBytes, 4096);
    assert.equal(cfg.zone, 'zone-b');
    assert.deepEqual(cfg.peerAddresses, []);
    assert.equal(cfg.persistenceLevel, 'high');
  });

  it('drops our own bind address from the peer list', () => {
    const cfg = resolveDaemonConfig({}, { bindAddress: '127.0.0.1:7001', peerAddresses: '127.0.0.1:7001, 127.0.0.1:7002' }, null);
    assert.deepEqual(cfg.peerAddresses, ['127.0.0.1:7002']);
  });

  it('names an unknown key, an unknown section and a key of the spec we do not implement', () => {
    code(() => parseConfigFile('[daemon]\nstorage_pat = "/x"\n', 'd.toml'), 'INVALID_ARGUMENT', 'unknown key "daemon.storage_pat"');
    code(() => parseConfigFile('[securty]\nkey_file = "/x"\n', 'd.toml'), 'INVALID_ARGUMENT', 'unknown section "securty"');
    code(() => parseConfigFile('[security]\ntls_enabled = false\n', 'd.toml'), 'INVALID_ARGUMENT', 'unknown key "security.tls_enabled"');
    code(() => parseConfigFile('cluster:\n  auto_join: true\n', 'd.yaml'), 'INVALID_ARGUMENT', 'unknown key "cluster.auto_join"');
  });

  it('reads [security]: TLS on unless tls = false, tls_dir; a tls that is not a boolean is refused', () => {
    assert.deepEqual((({ tls, tlsDir }) => ({ tls, tlsDir }))(resolveDaemonConfig({}, {}, null)), { tls: true, tlsDir: null });
    const off = resolveDaemonConfig(parseConfigFile('[security]\ntls = false\ntls_dir = "/etc/galleonfs/tls"\n', 'd.toml'), {}, null);
    assert.deepEqual([off.tls, off.tlsDir], [false, '/etc/galleonfs/tls']);
    assert.equal(resolveDaemonConfig(parseConfigFile('[security]\ntls = false\n', 'd.toml'), { tls: true }, null).tls, true, 'a flag overrides the file');
    code(() => parseConfigFile('[security]\ntls = "no"\n', 'd.toml'), 'INVALID_ARGUMENT', '"security.tls" has the wrong type');
  });

  it('reads [daemon] mount_point (flags override it)', () => {
    assert.equal(resolveDaemonConfig(parseConfigFile('daemon:\n  mount_point: /mnt/galleonfs\n', 'd.yaml'), {}, null).mountPoint, '/mnt/galleonfs');
    assert.equal(resolveDaemonConfig({ mountPoint: '/a' }, { mountPoint: '/b' }, null).mountPoint, '/b');
    assert.equal(resolveDaemonConfig({}, {}, null).mountPoint, null);
  });

  it('reads [security] key_file, kms_address and kms_key; a KMS needs both and a URL', () => {
    const cfg = resolveDaemonConfig(parseConfigFile('[security]\nkey_file = "/etc/galleonfs/cluster.key"\nkms_address = "http://127.0.0.1:8200"\nkms_key = "galleon"\n', 'd.toml'), {}, null);
    assert.equal(cfg.keyFile, '/etc/galleonfs/cluster.key');
    assert.deepEqual(cfg.kms, { address: 'http://127.0.0.1:8200', keyName: 'galleon' });
    code(() => resolveDaemonConfig({ kmsAddress: 'http://127.0.0.1:8200' }, {}, null), 'INVALID_ARGUMENT', 'needs both its address and a key name');
    code(() => resolveDaemonConfig({ kmsAddress: '127.0.0.1:8200', kmsKey: 'k' }, {}, null), 'INVALID_ARGUMENT', 'is not an http(s) URL');
    code(() => resolveDaemonConfig({ kmsAddress: 'http://h:1', kmsKey: 'a b' }, {}, null), 'INVALID_ARGUMENT', 'is not a transit key name');
  });

  it('reads [security] freshness (best-effort unless told; a flag overrides the file); another value is refused naming both modes', () => {
    assert.equal(resolveDaemonConfig({}, {}, null).freshness, 'best-effort', 'a single surviving node stays readable by default');
    assert.equal(resolveDaemonConfig(parseConfigFile('[security]\nfreshness = "strict"\n', 'd.toml'), {}, null).freshness, 'strict');
    assert.equal(resolveDaemonConfig({ freshness: 'strict' }, { freshness: 'best-effort' }, null).freshness, 'best-effort');
    code(() => resolveDaemonConfig({}, { freshness: 'paranoid' }, null), 'INVALID_ARGUMENT', 'freshness: "paranoid" is not one of best-effort, strict');
    code(() => parseConfigFile('[security]\nfreshness = true\n', 'd.toml'), 'INVALID_ARGUMENT', '"security.freshness" has the wrong type');
  });

  it('rejects malformed files and wrongly typed values', () => {
    code(() => parseConfigFile('[daemon\nx=1', 'broken.toml'), 'INVALID_ARGUMENT', 'broken.toml: not valid TOML');
    code(() => parseConfigFile('daemon: [1, 2', 'broken.yaml'), 'INVALID_ARGUMENT', 'broken.yaml: not valid YAML');
    code(() => parseConfigFile('[daemon]\nblock_size = true\n', 'd.toml'), 'INVALID_ARGUMENT', '"daemon.block_size" has the wrong type');
    code(() => parseConfigFile('daemon = 3\n', 'd.toml'), 'INVALID_ARGUMENT', '"daemon" must be a section');
  });

  it('validates values wherever they come from', () => {
    code(() => resolveDaemonConfig({}, { blockSize: 3000 }, null), 'INVALID_ARGUMENT', 'not a power of two');
    code(() => resolveDaemonConfig({}, { blockSize: '2M' }, null), 'INVALID_ARGUMENT', 'not a power of two between 4096 and 1048576');
    code(() => resolveDaemonConfig({}, { blockSize: 256 }, null), 'INVALID_ARGUMENT', 'block-size');
    code(() => resolveDaemonConfig({}, { blockSize: 'big' }, null), 'INVALID_SIZE', 'invalid block size "big"');
    code(() => resolveDaemonConfig({ replicationStrategy: 'eventual' }, {}, null), 'INVALID_ARGUMENT', '"eventual" is not one of synchronous, asynchronous');
    code(() => resolveDaemonConfig({}, { persistenceLevel: 'extreme' }, null), 'INVALID_ARGUMENT', 'persistence-level');
    code(() => resolveDaemonConfig({}, { roles: 'metadata,vfs' }, null), 'INVALID_ARGUMENT', '"vfs" is not one of metadata, data');
    code(() => resolveDaemonConfig({}, { roles: '' }, null), 'INVALID_ARGUMENT', 'at least one role');
    code(() => resolveDaemonConfig({}, { roles: 'data' }, null), 'INVALID_ARGUMENT', 'needs the cluster\'s addresses');
    code(() => resolveDaemonConfig({}, { bindAddress: 'localhost' }, null), 'INVALID_ARGUMENT', 'invalid bind address "localhost"');
    code(() => resolveDaemonConfig({}, { ipcAddress: '127.0.0.1:8080' }, null), 'INVALID_ARGUMENT', 'must differ');
    code(() => resolveDaemonConfig({}, { peerAddresses: '10.0.0.1' }, null), 'INVALID_ARGUMENT', 'invalid peer address');
    code(() => resolveDaemonConfig({ targetVoters: 4 }, {}, null), 'INVALID_ARGUMENT', 'cluster.target_voters');
    code(() => resolveDaemonConfig({}, { nodeId: 'bad id!' }, null), 'INVALID_ARGUMENT', 'not a valid node id');
  });
});

describe('cli/deploy/daemon.toml', () => {
  it('is a valid config file with the documented keys', async () => {
    const { readFile } = await import('node:fs/promises');
    const file = new URL('../../cli/deploy/daemon.toml', import.meta.url);
    const cfg = resolveDaemonConfig(parseConfigFile(await readFile(file, 'utf8'), 'daemon.toml'), {}, 'daemon.toml');
    assert.equal(cfg.storagePath, '/var/lib/galleonfs');
    assert.equal(cfg.ipcAddress, '127.0.0.1:8090');
    assert.deepEqual(cfg.roles, ['metadata', 'data']);
    assert.equal(cfg.targetVoters, 3);
    assert.deepEqual([cfg.heartbeatIntervalMs, cfg.leaseTtlMs, cfg.dataNodeDownAfterMs], [1000, 4000, 10_000]);
    assert.equal(cfg.nodeTokenFile, '/var/lib/galleonfs/node-token');
    assert.deepEqual([cfg.tls, cfg.tlsDir], [true, '/var/lib/galleonfs/tls']);
  });
});
