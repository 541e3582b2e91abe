/**
 * A process that holds a FUSE mount of an in-memory file system until it is killed: the
 * kill -9 tests' victim. Usage: node --import tsx test/support/fuse-child.ts <mount-point>.
 * Prints `mounted` on stdout once the kernel has initialised the mount.
 */
import { mountFs } from '../../vfs/fuse/mount.js';
import { MemFs } from './memfs.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: fuse-child.ts <mount-point>');
await mountFs(dir, new MemFs(), { fsname: 'galleon:child', attrTimeoutSec: 0, entryTimeoutSec: 0 });
process.stdout.write('mounted\n');
// The binding's async handles do not keep the loop alive (a daemon's servers do): this does.
setInterval(() => undefined, 60_000);
