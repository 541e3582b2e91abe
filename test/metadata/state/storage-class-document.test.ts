import assert from 'node:assert/strict';
import { isGalleonError } from '../../../proto/errors.js';
import type { StorageClassSpec } from '../../../proto/metadata-types.js';
import { parseStorageClassDocument } from '../../../metadata/state/logic/storage-class-document.js';
import { buildStorageClass } from '../../../metadata/state/logic/storage-classes.js';

const jsonExample = `{
  "name": "ultra-fast-ssd",
  "provisioner": "galleonfs.io/nvme-ssd",
  "parameters": { "disk_type": "nvme", "fs_type": "xfs", "encryption": "false", "raid_level": "1" },
  "reclaim_policy": "Delete",
  "volume_binding_mode": "Immediate",
  "allowed_topologies": ["zone-a", "zone-b"],
  "mount_options": ["noatime", "nodiratime", "nobarrier"],
  "replicas": 1,
  "write_concern": "durable"
}`;

const yamlExample = `name: secure-distributed
provisioner: galleonfs.io/distributed
parameters:
  encryption: "true"
  encryption_algorithm: "AES-256-GCM"
  key_management: "external-kms"
  replication: "5"
  consistency_level: "strong"
reclaim_policy: Retain
volume_binding_mode: WaitForFirstConsumer
allowed_topologies:
  - zone-a
  - zone-b  
  - zone-c
mount_options:
  - noatime
  - sync
`;

describe('metadata/state storage-class documents', () => {
  it('reads the JSON format', () => {
    const spec = parseStorageClassDocument(jsonExample, 'ultra.json');
    assert.deepEqual(spec, {
      name: 'ultra-fast-ssd', provisioner: 'galleonfs.io/nvme-ssd',
      parameters: { disk_type: 'nvme', encryption: 'false', fs_type: 'xfs', raid_level: '1' },
      encryption: false, replicas: 1, writeConcern: 'durable', reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate',
      allowedTopologies: ['zone-a', 'zone-b'], mountOptions: ['noatime', 'nodiratime', 'nobarrier'],
    } satisfies StorageClassSpec);
  });

  it('reads the YAML format, taking replicas from parameters.replication', () => {
    const spec = parseStorageClassDocument(yamlExample, 'secure.yaml');
    assert.equal(spec.name, 'secure-distributed');
    assert.equal(spec.encryption, true);
    assert.equal(spec.replicas, 5);
    assert.equal(spec.reclaimPolicy, 'Retain');
    assert.equal(spec.volumeBindingMode, 'WaitForFirstConsumer');
    assert.deepEqual(spec.allowedTopologies, ['zone-a', 'zone-b', 'zone-c']);
    assert.equal(spec.parameters?.key_management, 'external-kms');
    const sc = buildStorageClass(spec, 0);
    assert.deepEqual([sc.encryptionAlgorithm, sc.replicas, sc.writeConcern, sc.zoneSpread], ['AES-256-GCM', 5, 'replicated', 'prefer']);
  });

  it('tells JSON from YAML by content when the extension says nothing', () => {
    assert.equal(parseStorageClassDocument(jsonExample, 'class.conf').name, 'ultra-fast-ssd');
    assert.equal(parseStorageClassDocument(yamlExample, 'class.conf').name, 'secure-distributed');
  });

  it('accepts our keys at the top level or in parameters, and numbers in parameters', () => {
    const spec = parseStorageClassDocument('name: a\nparameters:\n  replicas: 3\n  zone_spread: require\nwrite_concern: distributed\n', 'a.yml');
    assert.deepEqual([spec.replicas, spec.zoneSpread, spec.writeConcern], [3, 'require', 'distributed']);
  });

  it('accepts camelCase keys as the API spells them, and encryption at the top level', () => {
    const spec = parseStorageClassDocument('{"name":"a","reclaimPolicy":"Retain","writeConcern":"durable","encryption":true}', 'a.json');
    assert.deepEqual([spec.reclaimPolicy, spec.writeConcern, spec.encryption], ['Retain', 'durable', true]);
  });

  const bad: [string, string, string, RegExp][] = [
    ['a key given in both spellings', 'x.json', '{"name":"a","reclaim_policy":"Delete","reclaimPolicy":"Retain"}', /given twice/],
    ['encryption not a boolean', 'x.yaml', 'name: a\nencryption: yes please\n', /encryption must be true or false/],
    ['encryption disagreeing with parameters', 'x.yaml', 'name: a\nencryption: true\nparameters:\n  encryption: "false"\n', /disagrees with parameters.encryption/],
    ['unknown top-level key', 'x.yaml', 'name: a\nreclaim_polcy: Delete\n', /unknown key "reclaim_polcy"/],
    ['no name', 'x.yaml', 'provisioner: p\n', /name must be a non-empty string/],
    ['bad name', 'x.yaml', 'name: Not OK\n', /invalid storage class name/],
    ['unknown write concern', 'x.yaml', 'name: a\nwrite_concern: eventually\n', /unknown write concern "eventually"/],
    ['unknown zone spread', 'x.yaml', 'name: a\nparameters:\n  zone_spread: sometimes\n', /unknown zone spread/],
    ['replicas not a number', 'x.yaml', 'name: a\nreplicas: three\n', /replicas must be a whole number/],
    ['replicas out of range', 'x.yaml', 'name: a\nparameters:\n  replication: "9"\n', /replication must be a whole number from 1 to 7/],
    ['replicas zero', 'x.json', '{"name": "a", "replicas": 0}', /replicas must be a whole number/],
    ['replica counts disagree', 'x.yaml', 'name: a\nreplicas: 2\nparameters:\n  replication: "3"\n', /disagrees/],
    ['encryption not a boolean', 'x.yaml', 'name: a\nparameters:\n  encryption: maybe\n', /encryption must be "true" or "false"/],
    ['unsupported algorithm', 'x.yaml', 'name: a\nparameters:\n  encryption: "true"\n  encryption_algorithm: ROT13\n', /unsupported encryption algorithm "ROT13"/],
    ['concern needs more replicas', 'x.yaml', 'name: a\nreplicas: 1\nwrite_concern: replicated\n', /needs at least 2 replicas/],
    ['bad reclaim policy', 'x.yaml', 'name: a\nreclaim_policy: Recycle\n', /unknown reclaim policy "Recycle"/],
    ['bad binding mode', 'x.yaml', 'name: a\nvolume_binding_mode: Later\n', /unknown volume binding mode/],
    ['topologies not a list', 'x.yaml', 'name: a\nallowed_topologies: zone-a\n', /allowed_topologies must be a list/],
    ['parameters not a mapping', 'x.yaml', 'name: a\nparameters: [1, 2]\n', /parameters must be a mapping/],
    ['nested parameter', 'x.yaml', 'name: a\nparameters:\n  deep: {x: 1}\n', /parameters.deep must be a string/],
    ['broken JSON', 'x.json', '{"name": "a",', /not valid JSON/],
    ['broken YAML', 'x.yaml', 'name: [a\n', /not valid YAML/],
    ['duplicate YAML key', 'x.yaml', 'name: a\nname: b\n', /not valid YAML/],
    ['a list, not a mapping', 'x.yaml', '- name: a\n', /expected one object/],
    ['empty file', 'x.yaml', '', /expected one object/],
  ];
  for (const [what, file, text, message] of bad) {
    it(`rejects ${what} with INVALID_ARGUMENT naming the file`, () => {
      assert.throws(() => parseStorageClassDocument(text, file), (err) => {
        assert.ok(isGalleonError(err, 'INVALID_ARGUMENT'), String(err));
        assert.match(err.message, message);
        assert.ok(err.message.startsWith(`${file}: `));
        assert.ok(!err.message.includes('\n'));
        assert.ok((err.hint ?? '').length > 0);
        return true;
      });
    });
  }
});
