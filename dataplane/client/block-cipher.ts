/**
 * AES-256-GCM of one block body, in the client: the data nodes only ever see what `sealBlock`
 * returns. The rules and the proofs are in README.md ("Encryption"); in short:
 *
 * - The key of a write is a per-writer subkey: HKDF-SHA256(volume data key, salt = volume id,
 *   info = label | writer id). Writer ids come from the metadata service (`allocateKeyWriter`,
 *   a Raft counter per volume that only grows), so no two writers ever share a subkey.
 * - The nonce is the writer's 96-bit counter, which only grows within the one process that holds
 *   the writer id (`NonceSequence`); a restarted client gets a new writer id. So a (subkey,
 *   nonce) pair is never used twice: reuse is impossible by construction, not improbable.
 * - The associated data binds the body to its address (volume, inode, block) and to the write's
 *   generation (writer id, counter): a body moved to another address fails authentication.
 *
 * Body layout (all integers big-endian):
 *   magic "GE"(2) | version(1) | reserved(1) | writerId(8) | counter(12) | ciphertext | tag(16)
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { GalleonError, invariant } from '../../proto/errors.js';

export const dataKeyBytes = 32;
export const nonceBytes = 12;
export const tagBytes = 16;
export const sealHeaderBytes = 24;
/** What sealing adds to a block body. */
export const sealOverheadBytes = sealHeaderBytes + tagBytes;
const magic0 = 0x47; // 'G'
const magic1 = 0x45; // 'E'
export const sealVersion = 1;
const subkeyInfo = 'galleon block writer v1';
const aadLabel = Buffer.from('galleon block v1');
/**
 * Blocks one writer id may seal. Far below 2^96 (the counter's room), and far below any GCM
 * invocation bound that matters for one key: a writer that reaches it takes a new writer id.
 */
export const maxSealsPerWriter = 2 ** 48;
/** Writer ids fit 8 bytes; the metadata service hands them out from 1. */
export const maxWriterId = Number.MAX_SAFE_INTEGER;

export interface BlockAddr {
  volumeId: string;
  inode: number;
  blockNo: number;
}

/** The generation of a write: who sealed it and its place in that writer's sequence. */
export interface Generation {
  writerId: number;
  counter: number;
}

/** The per-writer AES key: distinct writer ids give independent keys (HKDF, RFC 5869). */
export function writerKey(dataKey: Buffer, volumeId: string, writerId: number): Buffer {
  invariant(dataKey.length === dataKeyBytes, `data key is ${dataKey.length} bytes, not ${dataKeyBytes}`);
  invariant(Number.isSafeInteger(writerId) && writerId >= 1, `writer id ${writerId}`);
  const info = Buffer.alloc(subkeyInfo.length + 8);
  info.write(subkeyInfo, 0, 'ascii');
  info.writeBigUInt64BE(BigInt(writerId), subkeyInfo.length);
  return Buffer.from(hkdfSync('sha256', dataKey, Buffer.from(volumeId, 'utf8'), info, dataKeyBytes));
}

/** The 96-bit nonce of a writer's `counter`-th seal: the counter itself, big-endian. */
export function nonceOf(counter: number): Buffer {
  invariant(Number.isSafeInteger(counter) && counter >= 0 && counter < maxSealsPerWriter, `nonce counter ${counter}`);
  const n = Buffer.alloc(nonceBytes);
  n.writeUIntBE(counter, nonceBytes - 6, 6);
  return n;
}

/**
 * The counter of one writer id. Only this object hands out counters for its writer id, and
 * only upwards: the pair (writer subkey, nonce) it gives is never given again.
 */
export class NonceSequence {
  private next_ = 0;

  constructor(readonly writerId: number) {
    invariant(Number.isSafeInteger(writerId) && writerId >= 1 && writerId <= maxWriterId, `writer id ${writerId}`);
  }

  /** The next counter, or null when this writer id is used up (take a new one). */
  take(): number | null {
    if (this.next_ >= maxSealsPerWriter) return null;
    return this.next_++;
  }

  get used(): number {
    return this.next_;
  }
}

function aadOf(a: BlockAddr, header: Buffer): Buffer {
  const vol = Buffer.from(a.volumeId, 'utf8');
  const fixed = Buffer.alloc(2 + 8 + 8);
  fixed.writeUInt16BE(vol.length, 0);
  fixed.writeBigUInt64BE(BigInt(a.inode), 2);
  fixed.writeBigUInt64BE(BigInt(a.blockNo), 10);
  // The header carries version, writer id and counter: all of it is authenticated.
  return Buffer.concat([aadLabel, fixed, vol, header]);
}

function headerOf(g: Generation): Buffer {
  const h = Buffer.alloc(sealHeaderBytes);
  h[0] = magic0;
  h[1] = magic1;
  h[2] = sealVersion;
  h.writeBigUInt64BE(BigInt(g.writerId), 4);
  nonceOf(g.counter).copy(h, 12);
  return h;
}

/** Seals a block body under the writer's subkey at generation `g`. */
export function sealBlock(subkey: Buffer, g: Generation, a: BlockAddr, plaintext: Uint8Array): Buffer {
  const header = headerOf(g);
  const c = createCipheriv('aes-256-gcm', subkey, header.subarray(12, 24));
  c.setAAD(aadOf(a, header));
  const out = Buffer.allocUnsafe(sealHeaderBytes + plaintext.byteLength + tagBytes);
  header.copy(out, 0);
  let at = sealHeaderBytes;
  at += c.update(plaintext).copy(out, at);
  at += c.final().copy(out, at);
  c.getAuthTag().copy(out, at);
  invariant(at + tagBytes === out.length, 'sealed body length');
  return out;
}

function integrityError(a: BlockAddr, why: string): GalleonError {
  return new GalleonError('INTEGRITY_ERROR', `block ${a.blockNo} (inode ${a.inode}) of volume ${a.volumeId} failed authentication: ${why}`, {
    hint: 'the stored ciphertext was changed, moved from another address, or sealed under another key; read it from another replica or restore it',
    details: { volumeId: a.volumeId, inode: a.inode, blockNo: a.blockNo },
  });
}

/** The generation a sealed body claims (not yet authenticated), or an INTEGRITY_ERROR. */
export function generationOf(a: BlockAddr, body: Uint8Array): Generation {
  if (body.byteLength < sealOverheadBytes) throw integrityError(a, 'not a sealed block body');
  return generationOfHead(a, body);
}

/**
 * The generation named by the first `sealHeaderBytes` of a sealed body (a replica's block head,
 * server/head-route.ts): a claim only, nothing here is authenticated.
 */
export function generationOfHead(a: BlockAddr, head: Uint8Array): Generation {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length < sealHeaderBytes || b[0] !== magic0 || b[1] !== magic1) throw integrityError(a, 'not a sealed block body');
  if (b[2] !== sealVersion) throw integrityError(a, `unknown seal version ${b[2]}`);
  const writerId = Number(b.readBigUInt64BE(4));
  // The nonce's upper 6 bytes are always zero (counters stay below maxSealsPerWriter).
  if (b.readUIntBE(12, 6) !== 0 || writerId < 1 || !Number.isSafeInteger(writerId)) throw integrityError(a, 'malformed seal header');
  return { writerId, counter: b.readUIntBE(18, 6) };
}

/** Opens a sealed body read at address `a`; `subkey` is the key of the writer the body names. */
export function openBlock(subkey: Buffer, a: BlockAddr, body: Uint8Array): Buffer {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  generationOf(a, b);
  const header = b.subarray(0, sealHeaderBytes);
  const d = createDecipheriv('aes-256-gcm', subkey, header.subarray(12, 24));
  d.setAAD(aadOf(a, header));
  d.setAuthTag(b.subarray(b.length - tagBytes));
  const out = d.update(b.subarray(sealHeaderBytes, b.length - tagBytes));
  try {
    d.final();
  } catch {
    throw integrityError(a, 'the GCM tag does not match');
  }
  return out;
}

