import { strict as assert } from 'node:assert';
import { parseLabelChanges, parseLabels } from '../../cli/lib/labels.js';
import { parseHostPort, parsePeerList } from '../../cli/lib/address.js';
import { parseStorageClassText } from '../../cli/lib/storage-class-file.js';
import { renderError, ExitCode } from '../../cli/lib/errors.js';
import { parseCacheTimeout } from '../../cli/lib/vfs-views.js';
import { GalleonError, isGalleonError } from '../../proto/errors.js';

const specJson = JSON.stringify({
  name: 'ultra-fast-ssd',
  provisioner: 'galleonfs.io/nvme-ssd',
  parameters: { disk_type: 'nvme', fs_type: 'xfs', encryption: 'false', raid_level: '1' },
  reclaim_policy: 'Delete',
  volume_binding_mode: 'Immediate',
  allowed_topologies: ['zone-a', 'zone-b'],
  mount_options: ['noatime', 'nodiratime', 'nobarrier'],
});

const specYaml = `
name: secure-distributed
provisioner: galleonfs.io/distributed
parameters:
  encryption: "true"
  encryption_algorithm: "AES-256-GCM"
  replication: "5"
reclaim_policy: Retain
volume_binding_mode: WaitForFirstConsumer
allowed_topologies: [zone-a, zone-b, zone-c]
mount_options: [noatime, sync]
`;

describe('cli/lib parsing', () => {
  it('parses labels and label changes', () => {
    assert.deepEqual(parseLabels(['team=web', 'tier=', 'a.b/c=x=y']), { team: 'web', tier: '', 'a.b/c': 'x=y' });
    assert.deepEqual(parseLabelChanges(['team=db', 'tier-']), { team: 'db', tier: null });
    for (const bad of ['team', '=x', '-x=1']) assert.throws(() => parseLabels([bad]), (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
    assert.throws(() => parseLabelChanges([]), (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
  });

  it('parses host:port addresses and peer lists', () => {
    assert.deepEqual(parseHostPort('http://127.0.0.1:8090/', 'x'), { host: '127.0.0.1', port: 8090 });
    assert.deepEqual(parseHostPort('[::1]:80', 'x'), { host: '::1', port: 80 });
    assert.deepEqual(parsePeerList(' 10.0.1.10:8081,,10.0.1.11:8082 '), ['10.0.1.10:8081', '10.0.1.11:8082']);
    for (const bad of ['8090', 'host:', 'host:70000', 'host:0']) assert.throws(() => parseHostPort(bad, 'x'), (e) => isGalleonError(e, 'INVALID_ARGUMENT'));
    assert.deepEqual(parseHostPort('127.0.0.1:0', 'x', true), { host: '127.0.0.1', port: 0 });
  });

  it('reads the spec\'s JSON storage class example', () => {
    assert.deepEqual(parseStorageClassText(specJson, 'ultra.json'), {
      name: 'ultra-fast-ssd', provisioner: 'galleonfs.io/nvme-ssd',
      parameters: { disk_type: 'nvme', fs_type: 'xfs', encryption: 'false', raid_level: '1' },
      reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate', allowedTopologies: ['zone-a', 'zone-b'],
      mountOptions: ['noatime', 'nodiratime', 'nobarrier'], encryption: false,
    });
  });

  it('reads the spec\'s YAML storage class example, taking encryption and replicas from its parameters', () => {
    const spec = parseStorageClassText(specYaml, 'secure.yaml');
    assert.equal(spec.name, 'secure-distributed');
    assert.equal(spec.encryption, true);
    assert.equal(spec.replicas, 5);
    assert.equal(spec.reclaimPolicy, 'Retain');
    assert.deepEqual(spec.allowedTopologies, ['zone-a', 'zone-b', 'zone-c']);
  });

  it('rejects unknown keys, bad enums and malformed files, naming the problem', () => {
    const cases: [string, string, string][] = [
      ['{"name":"x","replica":3}', 'x.json', 'unknown key "replica"'],
      ['{"name":"x","reclaim_policy":"Keep"}', 'x.json', 'unknown reclaim policy "Keep"'],
      ['{"provisioner":"p"}', 'x.json', 'name must be a non-empty string'],
      ['{"name":', 'x.json', 'not valid JSON'],
      ['- a\n- b', 'x.yaml', 'expected one object'],
      ['name: x\nreplicas: 0', 'x.yaml', 'replicas must be a whole number'],
    ];
    for (const [text, file, part] of cases) {
      assert.throws(() => parseStorageClassText(text, file), (e) => isGalleonError(e, 'INVALID_ARGUMENT') && e.message.includes(part), part);
    }
  });

  it('renders any error as one line with a hint and an exit code by error class', () => {
    const r = renderError(new GalleonError('VOLUME_NOT_FOUND', 'volume "x" not found', { hint: 'list volumes with: galleon volume list' }), 'volume:get');
    assert.equal(r.line, 'Error: volume "x" not found — list volumes with: galleon volume list');
    assert.equal(r.exitCode, ExitCode.NotFound);
    const parse = renderError(new Error('Nonexistent flag: --bogus\nSee more help with --help'), 'volume:list');
    assert.equal(parse.line, 'Error: Nonexistent flag: --bogus — see `galleon volume list --help`');
    assert.equal(parse.exitCode, ExitCode.Usage);
    const multi = renderError(new Error('Parsing --replicas \n\tExpected an integer but received: abc\nSee more help with --help'), 'volume:create');
    assert.equal(multi.line, 'Error: Parsing --replicas: Expected an integer but received: abc — see `galleon volume create --help`');
    const missing = renderError(new Error('Missing 1 required arg:\nvolume  Volume name or UUID.\nSee more help with --help'), 'volume:get');
    assert.equal(missing.line, 'Error: Missing 1 required arg: volume Volume name or UUID. — see `galleon volume get --help`');
    // oclif's preamble for a missing required flag (issue #10: "The following error occurred: Missing required flag size").
    const flag = renderError(new Error('The following error occurred:\n  Missing required flag size\nSee more help with --help'), 'volume:expand');
    assert.equal(flag.line, 'Error: missing required flag --size — see `galleon volume expand --help`');
    assert.equal(flag.exitCode, ExitCode.Usage);
    assert.equal(renderError(new GalleonError('DAEMON_UNREACHABLE', 'x'), undefined).exitCode, ExitCode.Unavailable);
    assert.equal(renderError(new GalleonError('VOLUME_EXISTS', 'x'), undefined).exitCode, ExitCode.Conflict);
    assert.equal(renderError(new GalleonError('INTERNAL', 'a\nb'), undefined).line, 'Error: a');
  });
});

describe('parseCacheTimeout (--cache-timeout of vfs mount and volume mount)', () => {
  it('takes seconds to the millisecond, from 0 (strict) to 60; absent stays absent', () => {
    assert.equal(parseCacheTimeout(undefined), undefined);
    assert.equal(parseCacheTimeout('0'), 0);
    assert.equal(parseCacheTimeout('1'), 1);
    assert.equal(parseCacheTimeout('0.25'), 0.25);
    assert.equal(parseCacheTimeout(' 60 '), 60);
  });

  it('refuses anything else with one INVALID_ARGUMENT naming the flag and the range', () => {
    for (const bad of ['', '-1', '61', '60.001', '0.0001', '1s', 'abc', '1e1', '.5', 'NaN']) {
      assert.throws(() => parseCacheTimeout(bad), (err: unknown) => isGalleonError(err, 'INVALID_ARGUMENT') && /^--cache-timeout ".*" is not a number of seconds from 0 to 60$/.test(err.message), bad);
    }
  });
});
