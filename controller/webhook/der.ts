// The few ASN.1 DER encodings an X.509 certificate needs (ITU-T X.690): tag, length, value. Pure.
// Node's crypto signs and parses certificates but cannot build one; this is the building half.

/** One encoded element: tag byte(s), length and contents. */
export type Der = Buffer;

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** An element with the given tag byte around `contents`. */
export function tlv(tag: number, contents: Buffer): Der {
  return Buffer.concat([Buffer.from([tag]), encodeLength(contents.length), contents]);
}

export function sequence(...items: readonly Der[]): Der {
  return tlv(0x30, Buffer.concat(items));
}

export function set(...items: readonly Der[]): Der {
  return tlv(0x31, Buffer.concat(items));
}

export function boolean(v: boolean): Der {
  return tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
}

/** A non-negative INTEGER from its big-endian bytes (minimal form, a 0x00 in front when the top bit is set). */
export function unsignedInteger(bytes: Buffer): Der {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const body = bytes.subarray(start);
  const top = body[0];
  const padded = top === undefined ? Buffer.from([0]) : (top & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), body]) : body;
  return tlv(0x02, padded);
}

export function smallInteger(n: number): Der {
  if (!Number.isInteger(n) || n < 0 || n > 127) throw new RangeError(`smallInteger takes 0..127, got ${n}`);
  return tlv(0x02, Buffer.from([n]));
}

/** A BIT STRING of whole bytes (no unused bits): keys and signatures. */
export function bitString(bytes: Buffer): Der {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

/**
 * A named-bit BIT STRING (KeyUsage): bit 0 is the most significant bit of the first byte; DER drops trailing
 * zero bits and says how many bits of the last byte are unused.
 */
export function namedBits(bits: readonly number[]): Der {
  if (bits.length === 0) return tlv(0x03, Buffer.from([0]));
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of bits) bytes.writeUInt8(bytes.readUInt8(Math.floor(b / 8)) | (0x80 >> (b % 8)), Math.floor(b / 8));
  const unused = 7 - (highest % 8);
  return tlv(0x03, Buffer.concat([Buffer.from([unused]), bytes]));
}

export function octetString(bytes: Buffer): Der {
  return tlv(0x04, bytes);
}

/** An OBJECT IDENTIFIER from its dotted form, e.g. "2.5.4.3". */
export function oid(dotted: string): Der {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isInteger(a) || a < 0)) throw new Error(`not an object identifier: ${dotted}`);
  const out: number[] = [];
  const push = (v: number): void => {
    const chunk: number[] = [v & 0x7f];
    for (let rest = Math.floor(v / 128); rest > 0; rest = Math.floor(rest / 128)) chunk.unshift(0x80 | (rest & 0x7f));
    out.push(...chunk);
  };
  const [first = 0, second = 0, ...rest] = arcs;
  push(first * 40 + second);
  for (const a of rest) push(a);
  return tlv(0x06, Buffer.from(out));
}

export function utf8String(s: string): Der {
  return tlv(0x0c, Buffer.from(s, 'utf8'));
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** RFC 5280 §4.1.2.5: UTCTime for the years 1950 to 2049, GeneralizedTime after; whole seconds, UTC. */
export function time(ms: number): Der {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${two(year % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${String(year).padStart(4, '0')}${rest}`, 'ascii'));
}

/** [n] EXPLICIT: a constructed context-specific tag around one element. */
export function explicit(n: number, inner: Der): Der {
  return tlv(0xa0 | n, inner);
}

/** [n] IMPLICIT of a primitive element: the contents with the tag replaced. */
export function implicitPrimitive(n: number, contents: Buffer): Der {
  return tlv(0x80 | n, contents);
}

/** The elements inside a constructed element (a SEQUENCE's items), each with its tag and length. */
export function children(element: Der): Der[] {
  const out: Der[] = [];
  const header = headerLength(element, 0);
  let pos = header.offset;
  const end = header.offset + header.length;
  while (pos < end) {
    const h = headerLength(element, pos);
    out.push(element.subarray(pos, h.offset + h.length));
    pos = h.offset + h.length;
  }
  return out;
}

/** Where the contents of the element at `pos` start, and how long they are (single-byte tags only). */
function headerLength(buf: Buffer, pos: number): { offset: number; length: number } {
  const first = buf[pos + 1];
  if (first === undefined) throw new Error('DER element truncated');
  if (first < 0x80) return { offset: pos + 2, length: first };
  const n = first & 0x7f;
  if (n === 0 || n > 4) throw new Error('DER length not supported');
  let length = 0;
  for (let i = 0; i < n; i++) length = length * 256 + (buf[pos + 2 + i] ?? 0);
  if (pos + 2 + n + length > buf.length) throw new Error('DER element truncated');
  return { offset: pos + 2 + n, length };
}
