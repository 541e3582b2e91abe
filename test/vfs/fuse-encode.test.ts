/** The mount layer's pure parts: the wire encoders (encode.ts) and the errno mapping (errno.ts). */
import assert from 'node:assert/strict';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { decodeTime, encodeStat, fuseOptionString, splitNs, statWords, UTIME_NOW, UTIME_OMIT } from '../../vfs/fuse/encode.js';
import { EIO, errnoOf, fsError } from '../../vfs/fuse/errno.js';

describe('vfs/fuse encode', () => {
  it('writes a 64-bit inode and ns times into the 22-word stat layout', () => {
    const w = encodeStat({ ino: 2n ** 40n + 5n, mode: 0o100644, nlink: 1, uid: 7, gid: 8, size: 2 ** 33 + 1,
      atimeNs: 1_500_000_000_123_456_789n, mtimeNs: -1n, ctimeNs: 0n });
    assert.equal(w.length, statWords);
    assert.deepEqual([w[3], w[4]], [1, 2]); // size low, high
    assert.deepEqual([w[7], w[8]], [5, 256]); // ino low, high
    assert.deepEqual([w[13], w[14], w[15]], [1_500_000_000, 0, 123_456_789]);
    assert.deepEqual([w[16], w[17], w[18]], [0xffffffff, 0xffffffff, 999_999_999]); // -1 ns = -1 s + 999999999 ns
  });

  it('splits negative ns with floor division', () => {
    assert.deepEqual(splitNs(-1n), { sec: -1n, nsec: 999_999_999 });
    assert.deepEqual(splitNs(1_000_000_001n), { sec: 1n, nsec: 1 });
  });

  it('decodes UTIME_NOW and UTIME_OMIT', () => {
    assert.equal(decodeTime(0, UTIME_NOW), 'now');
    assert.equal(decodeTime(0, UTIME_OMIT), 'omit');
    assert.equal(decodeTime(2, 5), 2_000_000_005n);
  });

  it('keeps zero timeouts and adds big_writes, escapes commas in fsname', () => {
    const o = fuseOptionString({ fsname: 'galleon:a,b', attrTimeoutSec: 0, entryTimeoutSec: 0, readOnly: true });
    assert.match(o, /attr_timeout=0,entry_timeout=0,negative_timeout=0/);
    assert.match(o, /big_writes,max_write=131072/);
    assert.match(o, /fsname=galleon:a\\,b/);
    assert.match(o, /,ro(,|$)/);
    assert.throws(() => fuseOptionString({ fsname: 'x', maxWriteBytes: 1 << 20 }), RangeError);
    assert.throws(() => fuseOptionString({ fsname: 'x', attrTimeoutSec: -1 }), RangeError);
    assert.match(o, /max_background=64,congestion_threshold=48/);
    assert.match(fuseOptionString({ fsname: 'x', maxBackgroundRequests: 1 }), /max_background=1,congestion_threshold=1/);
    for (const bad of [0, 1.5, 1025]) assert.throws(() => fuseOptionString({ fsname: 'x', maxBackgroundRequests: bad }), RangeError);
  });
});

describe('vfs/fuse errnoOf', () => {
  it('an FsError is an errno answer without stack frames (cheap: every new name\'s lookup makes one), and leaves the stack limit as it was', () => {
    const before = Error.stackTraceLimit;
    const e = fsError('ENOENT', 'no such entry');
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.message, 'no such entry');
    assert.equal(e.stack, 'FsError: no such entry');
    assert.equal(Error.stackTraceLimit, before);
    assert.throws(() => fsError('ENOTANERRNO'), TypeError);
    assert.equal(Error.stackTraceLimit, before, 'restored when the name is refused too');
    assert.ok((new Error('x').stack ?? '').includes('\n    at '), 'other errors keep their frames');
  });

  it('maps POSIX names, GalleonError codes and details, and everything else to EIO', () => {
    assert.deepEqual(errnoOf(fsError('ENOENT')), { errno: -2, unexpected: false });
    assert.deepEqual(errnoOf(Object.assign(new Error('x'), { code: 'ENOTEMPTY' })), { errno: -39, unexpected: false });
    assert.deepEqual(errnoOf(new GalleonError(ErrorCode.NO_SPACE, 'full')), { errno: -28, unexpected: false });
    assert.deepEqual(errnoOf(new GalleonError(ErrorCode.INTERNAL, 'x', { details: { errno: 'EXDEV' } })), { errno: -18, unexpected: false });
    assert.deepEqual(errnoOf(new GalleonError(ErrorCode.NOT_LEADER, 'x')), { errno: EIO, unexpected: true });
    assert.deepEqual(errnoOf(new TypeError('bug')), { errno: EIO, unexpected: true });
    assert.deepEqual(errnoOf('a string'), { errno: EIO, unexpected: true });
    assert.throws(() => fsError('ENOPE'), TypeError);
  });
});
