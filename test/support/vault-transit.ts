/**
 * A small local implementation of the part of HashiCorp Vault's transit engine a KMS client
 * uses for envelope encryption — enough to test `VaultTransitProvider` against a real HTTP
 * server (a real port, real requests), not a stub of our own client:
 *
 *   POST /v1/transit/keys/:name          create a key (version 1)
 *   POST /v1/transit/keys/:name/rotate   add a version; new encrypts use it
 *   POST /v1/transit/encrypt/:name       {plaintext: b64}  → {data: {ciphertext: "vault:vN:…", key_version}}
 *   POST /v1/transit/decrypt/:name       {ciphertext}      → {data: {plaintext: b64}}
 *   POST /v1/transit/rewrap/:name        {ciphertext}      → {data: {ciphertext: "vault:vLatest:…"}}
 *
 * Every request needs `X-Vault-Token`; errors are `{errors: [...]}` with 400/403/404, as Vault
 * answers. Ciphertexts are AES-256-GCM under the key version named in the prefix.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const maxRequestBytes = 64 * 1024;

export interface VaultTransitServer {
  address: string;
  token: string;
  /** Requests served, by operation (for tests that check what the client asked). */
  calls: Record<string, number>;
  close(): Promise<void>;
}

function seal(key: Buffer, plaintext: Buffer): string {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64');
}

function open(key: Buffer, b64: string): Buffer {
  const b = Buffer.from(b64, 'base64');
  const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
  d.setAuthTag(b.subarray(b.length - 16));
  return Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxRequestBytes) throw new Error('request too large');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : JSON.parse(text) as Record<string, unknown>;
}

export async function startVaultTransit(token = `s.${randomBytes(12).toString('hex')}`): Promise<VaultTransitServer> {
  const keys = new Map<string, Buffer[]>();
  const calls: Record<string, number> = {};
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const decrypt = (versions: Buffer[], ciphertext: unknown): Buffer => {
    const m = typeof ciphertext === 'string' ? /^vault:v(\d+):(.+)$/.exec(ciphertext) : null;
    const key = m === null ? undefined : versions[Number(m[1]) - 1];
    if (m === null || key === undefined) throw new Error('invalid ciphertext: no prefix or unknown key version');
    return open(key, m[2] ?? '');
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.headers['x-vault-token'] !== token) return send(res, 403, { errors: ['permission denied'] });
    const m = /^\/v1\/transit\/(keys|encrypt|decrypt|rewrap)\/([\w.-]+)(\/rotate)?$/.exec(req.url ?? '');
    if (req.method !== 'POST' || m === null) return send(res, 404, { errors: [] });
    const [, op, name = '', rotate] = m;
    const opName = `${op}${rotate ?? ''}`;
    calls[opName] = (calls[opName] ?? 0) + 1;
    const body = await readJson(req);
    const versions = keys.get(name);
    if (op === 'keys' && rotate === undefined) {
      if (versions === undefined) keys.set(name, [randomBytes(32)]);
      return send(res, 204, {});
    }
    if (versions === undefined) return send(res, 400, { errors: [`encryption key not found: ${name}`] });
    if (rotate !== undefined) {
      versions.push(randomBytes(32));
      return send(res, 204, {});
    }
    const latest = versions.length;
    const current = versions[latest - 1] as Buffer;
    try {
      if (op === 'encrypt') {
        const pt = Buffer.from(typeof body.plaintext === 'string' ? body.plaintext : '', 'base64');
        return send(res, 200, { data: { ciphertext: `vault:v${latest}:${seal(current, pt)}`, key_version: latest } });
      }
      if (op === 'decrypt') return send(res, 200, { data: { plaintext: decrypt(versions, body.ciphertext).toString('base64') } });
      return send(res, 200, { data: { ciphertext: `vault:v${latest}:${seal(current, decrypt(versions, body.ciphertext))}`, key_version: latest } });
    } catch (err) {
      return send(res, 400, { errors: [(err as Error).message] });
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 400, { errors: [(err as Error).message] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `http://127.0.0.1:${port}`, token, calls,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
