/**
 * Issue #10 finding 9: raw Node and gRPC text never reaches the user (the real binary; the only
 * daemon started here fails at once because its port is taken, and is gone when the test ends).
 */
import { strict as assert } from 'node:assert';
import { access, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { osFreePort } from '../../cli/local/ports.js';
import { makeTempDir, runCli } from './helpers.js';

describe('galleon: one clear line instead of Node text', function () {
  this.timeout(90_000);
  let root = '';
  before(async () => { root = await makeTempDir('galleon-messages-'); await writeFile(join(root, 'afile'), 'x'); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  const ports = async (): Promise<string[]> => ['--ipc-address', `127.0.0.1:${await osFreePort()}`, '--data-address', `127.0.0.1:${await osFreePort()}`];

  it('a storage path that is a file, or under one (was EEXIST / ENOTDIR: … mkdir)', async () => {
    const file = join(root, 'afile');
    const a = await runCli(['daemon', 'start', '--storage-path', file, '--bind-address', `127.0.0.1:${await osFreePort()}`, ...await ports()]);
    assert.deepEqual([a.code, a.stderr], [2, `Error: cannot use ${file} as the storage path: a file (not a folder) is in the way — choose a path that is a folder or does not exist yet\n`]);
    const b = await runCli(['daemon', 'start', '-d', '--storage-path', join(file, 'x'), '--bind-address', `127.0.0.1:${await osFreePort()}`, ...await ports()]);
    assert.deepEqual([b.code, b.stderr], [2, `Error: cannot use ${join(file, 'x')} as the storage path: part of the path is a file, not a folder — choose a path whose parents are folders\n`]);
    const c = await runCli(['up', '--dir', join(file, 'x')]);
    assert.deepEqual([c.code, c.stderr], [2, `Error: cannot use ${join(file, 'x')} as the cluster folder: part of the path is a file, not a folder — choose a path whose parents are folders\n`]);
  });

  it('--base-port that puts ports past 65535 (was options.port should be >= 0 and < 65536), nothing created', async () => {
    const dir = join(root, 'ports');
    const r = await runCli(['up', '--dir', dir, '--base-port', '70000', '--nodes', '1']);
    assert.deepEqual([r.code, r.stderr], [2, 'Error: --base-port 70000 puts ports outside 1-65535 (data ports reach 70200) — use 1 to 65335, or 0 to let the OS pick every port\n']);
    await assert.rejects(access(dir), 'the folder was not created');
  });

  it('a bind port that is taken: the daemon\'s one line, no stray gRPC line', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      const taken = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
      const r = await runCli(['daemon', 'start', '--insecure-plaintext', '--storage-path', join(root, 'node'), '--bind-address', taken, ...await ports()]);
      assert.equal(r.code, 3);
      assert.equal(r.stderr, `Error: cannot listen on ${taken} — pick a free port (or port 0) and a local interface\n`);
    } finally {
      blocker.close();
    }
  });
});
