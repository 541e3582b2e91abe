import assert from 'node:assert/strict';
import { GalleonError, ErrorCode, httpStatusOf } from '../../proto/errors.js';

describe('proto/errors', () => {
  it('round-trips a GalleonError through JSON with its code and hint', () => {
    const err = new GalleonError(ErrorCode.VOLUME_NOT_FOUND, 'no volume "x"', { hint: 'list volumes with `galleon volume list`' });
    const back = GalleonError.fromJSON(JSON.parse(JSON.stringify(err)));
    assert.equal(back.code, ErrorCode.VOLUME_NOT_FOUND);
    assert.equal(back.hint, err.hint);
    assert.equal(httpStatusOf(back.code), 404);
  });
  it('turns an unknown payload into an INTERNAL error instead of trusting it', () => {
    assert.equal(GalleonError.fromJSON({ code: 'NOPE', message: 'x' }).code, ErrorCode.INTERNAL);
  });
});
