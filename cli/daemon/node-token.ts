/**
 * The cluster's node credential (issue #12): one token shared by the cluster's nodes, in a file
 * only its owner can read (0600). Whoever can read it is the cluster — the bootstrap path for the
 * first admin (`galleon user create` with it, which `galleon up` does) goes through this file, so
 * only someone on a node's machine with the daemon's user can begin. A node that starts a new
 * cluster makes it when missing; a joining node must be given the cluster's (copy the file).
 * When mutual TLS lands (x-tls), node-to-node calls authenticate by certificate instead and this
 * token remains only for the local bootstrap.
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { ErrorCode, GalleonError } from '../../proto/errors.js';
import { newToken, tokenPrefix } from '../../proto/auth-token.js';

export async function loadNodeToken(file: string, createIfMissing: boolean): Promise<string> {
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `node token file ${file} can be read by other users (mode ${(st.mode & 0o777).toString(8)})`, {
        hint: `chmod 600 ${file}: it is the cluster's credential`,
      });
    }
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!createIfMissing) {
      throw new GalleonError(ErrorCode.FAILED_PRECONDITION, `node token file ${file} does not exist`, {
        hint: 'a node joining a cluster needs the cluster\'s node token: copy the file from a member (mode 0600)',
      });
    }
    text = newToken();
    await writeFile(file, `${text}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
  }
  if (!text.startsWith(tokenPrefix) || !/^[A-Za-z0-9_-]{20,256}$/.test(text)) {
    throw new GalleonError(ErrorCode.INVALID_ARGUMENT, `node token file ${file} does not hold a galleon token`, { hint: 'remove it to have a new one made on a new cluster, or copy the cluster\'s' });
  }
  return text;
}
