/**
 * End to end: `galleon up` (three daemons with the metadata and data roles), then
 * `galleon volume write-block` / `read-block` through the real binary — the bytes travel CLI →
 * admin endpoint → BlockClient → the PG's primary → replicas, and back. Bad inputs give one
 * line with a hint and a non-zero exit.
 */
import { strict as assert } from 'node:assert';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterStatus, Volume } from '../../proto/metadata-types.js';
import type { UpResult } from '../../cli/local/cluster.js';
import type { BlockWriteResult } from '../../cli/daemon/block-ops.js';
import { cliJson, killClusterDir, makeTempDir, runCli, waitFor } from './helpers.js';
import { upClientEnv } from '../support/tls.js';

describe('galleon volume write-block / read-block on a real local cluster (integration)', function () {
  this.timeout(120_000);
  let root = '';
  let clusterDir = '';
  let env: Record<string, string> = {};
  let vol: Volume;
  const json = <T>(args: string[]): Promise<T> => cliJson<T>(args, env);

  before(async function () {
    this.timeout(180_000);
    root = await makeTempDir('galleon-cli-blocks-');
    clusterDir = join(root, 'cluster');
    const r = await runCli(['up', '--no-first-volume', '--dir', clusterDir, '--nodes', '3', '--base-port', '0', '--json']);
    assert.equal(r.code, 0, `galleon up failed: ${r.stderr}`);
    const up = JSON.parse(r.stdout) as UpResult;
    // `up` made an admin and wrote its token (issue #12), and the operator's client certificate: the commands use both.
    env = { GALLEON_ADDRESS: up.cluster.daemonAddress, ...upClientEnv(clusterDir) };
    await waitFor('three data nodes up', 30_000, async () => {
      const s = await json<ClusterStatus>(['cluster', 'status']);
      return s.dataNodes.filter((n) => n.state === 'up').length === 3;
    });
    vol = await json<Volume>(['volume', 'create', '--name', 'blk', '--size', '1M', '--block-size', '4K']);
  });

  after(async function () {
    this.timeout(60_000);
    if (clusterDir !== '') {
      await runCli(['down', '--dir', clusterDir, '--purge'], {}, 30_000).catch(() => undefined);
      await killClusterDir(clusterDir);
    }
    if (root !== '') await killClusterDir(root);
  });

  it('writes a block and reads it back (string, file, --out, --json base64 and hex)', async () => {
    const w = await runCli(['volume', 'write-block', 'blk', '3', '--data', 'hello galleon'], env);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /^wrote 13 bytes to block 3 of blk: replicated, pg \d+, seq \d+, epoch \d+\n$/);
    const r = await runCli(['volume', 'read-block', 'blk', '3'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello galleon');

    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
    const inFile = join(root, 'in.bin');
    const outFile = join(root, 'out.bin');
    await writeFile(inFile, bytes);
    const ack = await json<BlockWriteResult>(['volume', 'write-block', vol.id, '255', '--file', inFile, '--inode', '2']);
    assert.equal(ack.bytes, 4096);
    assert.equal(ack.concern, 'replicated');
    const out = await runCli(['volume', 'read-block', 'blk', '255', '--inode', '2', '--out', outFile], env);
    assert.equal(out.code, 0, out.stderr);
    assert.ok((await readFile(outFile)).equals(bytes));
    const hex = await json<{ data: string; encoding: string; bytes: number }>(['volume', 'read-block', 'blk', '255', '--inode', '2', '--encoding', 'hex']);
    assert.equal(hex.encoding, 'hex');
    assert.ok(Buffer.from(hex.data, 'hex').equals(bytes));
    const b64 = await json<{ data: string }>(['volume', 'read-block', 'blk', '3']);
    assert.equal(Buffer.from(b64.data, 'base64').toString(), 'hello galleon');
  });

  it('upgrades a concern weaker than the class default, and honours a stronger one', async () => {
    const weak = await json<BlockWriteResult>(['volume', 'write-block', 'blk', '4', '--data', 'x', '--concern', 'acknowledged']);
    assert.equal(weak.requestedConcern, 'acknowledged');
    assert.equal(weak.concern, 'replicated');
    const human = await runCli(['volume', 'write-block', 'blk', '4', '--data', 'x', '--concern', 'durable'], env);
    assert.match(human.stdout, /replicated \(upgraded from durable: the volume's default\)/);
    // All three nodes share one zone here: distributed cannot be met, and says so.
    const dist = await runCli(['volume', 'write-block', 'blk', '4', '--data', 'x', '--concern', 'distributed'], env);
    assert.notEqual(dist.code, 0);
    assert.match(dist.stderr, /write concern distributed cannot be met/);
  });

  it('gives a volume the block size it was created with, else the daemon\'s default (128K), shown by volume get', async () => {
    assert.equal(vol.blockSizeBytes, 4096);
    const byDefault = await json<Volume>(['volume', 'create', '--name', 'dflt', '--size', '1M']);
    assert.equal(byDefault.blockSizeBytes, 131072);
    const big = await json<Volume>(['volume', 'create', '--name', 'big', '--size', '16M', '--block-size', '1M']);
    assert.equal(big.blockSizeBytes, 1024 * 1024);
    const shown = await runCli(['volume', 'get', 'big'], env);
    assert.match(shown.stdout, /^Block size: +1048576$/m);
    // A 1 MiB block goes through the data plane whole.
    const file = join(root, 'one-mib');
    await writeFile(file, Buffer.alloc(1024 * 1024, 7));
    const w = await runCli(['volume', 'write-block', 'big', '2', '--file', file], env);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /^wrote 1048576 bytes to block 2 of big/);
  });

  it('bad inputs: one line with a hint, non-zero exit', async () => {
    const cases: [string[], RegExp][] = [
      [['volume', 'write-block', 'nope', '0', '--data', 'x'], /volume.*nope/i],
      [['volume', 'write-block', 'blk', '256', '--data', 'x'], /block 256 is beyond volume blk \(256 blocks of 4096 bytes\)/],
      [['volume', 'read-block', 'blk', '9999'], /block 9999 is beyond volume blk/],
      [['volume', 'write-block', 'blk', '0', '--data', 'x'.repeat(4097)], /--data is 4097 bytes, more than a block of volume blk \(4096 bytes\)/],
      [['volume', 'write-block', 'blk', '0', '--data', 'x', '--concern', 'sometimes'], /unknown write concern "sometimes"/],
      [['volume', 'write-block', 'blk', '0'], /--data STRING or --file PATH/],
      [['volume', 'write-block', 'blk', '-1', '--data', 'x'], /./],
      [['volume', 'create', '--name', 'odd', '--block-size', '3000'], /block size "3000" is not a power of two from 4 KiB to 1 MiB/],
      [['volume', 'create', '--name', 'odd', '--block-size', '2M'], /block size "2M" is not a power of two from 4 KiB to 1 MiB/],
    ];
    // A block never written is not an error: it reads as zeros (recovery.integration.test.ts).
    const unwritten = await runCli(['volume', 'read-block', 'blk', '77', '--json'], env);
    assert.equal(unwritten.code, 0, unwritten.stderr);
    assert.equal((JSON.parse(unwritten.stdout) as { written: boolean }).written, false);
    for (const [args, re] of cases) {
      const r = await runCli(args, env);
      assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
      const lines = r.stderr.trim().split('\n');
      assert.ok(lines.length <= 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
  });
});
