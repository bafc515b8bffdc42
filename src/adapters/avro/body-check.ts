import { isUtf8 } from 'node:buffer';
import * as avro from 'avsc';

/**
 * Structural check of untrusted Avro binary against its writer type, run before avsc decodes
 * it. avsc trusts lengths and block counts: a map claiming 2^50 entries in a 30-byte message
 * makes it loop ~forever, and invalid UTF-8 silently becomes U+FFFD (two different bad ids would
 * collapse into one). After a check passes, every length, count and branch index is in range,
 * every string is valid UTF-8, and the value ends exactly where the check returned.
 */
export type BodyCheck = (buf: Buffer, pos: number) => number;

export class MalformedBody extends Error {
  constructor(message: string, readonly at: number) {
    super(message);
  }
}

/** A bound on items of zero-width types (e.g. an array of nulls), which no byte count limits. */
const MAX_ITEMS = 1_000_000;

let varintValue = 0;

/** Reads a zigzag varint at `pos` into `varintValue`; returns the position after it. */
function varint(buf: Buffer, pos: number, maxBytes: number): number {
  let acc = 0;
  let mul = 1;
  for (let i = 0; i < maxBytes; i += 1) {
    if (pos >= buf.length) throw new MalformedBody('truncated', pos);
    const b = buf[pos++]!;
    acc += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      // Past 2^53 the float accumulator (avsc's too) is inexact: -(2^53 - 2) read back positive.
      // Zigzag values up to 2^53 - 1 (|n| <= 2^52) decode exactly; anything larger is refused.
      if (acc > Number.MAX_SAFE_INTEGER) throw new MalformedBody('integer exceeds 2^53', pos);
      varintValue = acc % 2 === 0 ? acc / 2 : -(acc + 1) / 2;
      return pos;
    }
    mul *= 128;
  }
  throw new MalformedBody(`varint longer than ${maxBytes} bytes`, pos);
}

function need(buf: Buffer, pos: number, n: number): number {
  if (n < 0 || pos + n > buf.length) throw new MalformedBody(n < 0 ? `negative length ${n}` : `length ${n} runs past the end`, pos);
  return pos + n;
}

function checkLength(buf: Buffer, pos: number): number {
  const p = varint(buf, pos, 10);
  need(buf, p, varintValue);
  return p;
}

const checkString: BodyCheck = (buf, pos) => {
  const p = checkLength(buf, pos);
  const end = p + varintValue;
  for (let i = p; i < end; i += 1) {
    if (buf[i]! >= 0x80) {
      if (!isUtf8(buf.subarray(p, end))) throw new MalformedBody('string is not valid UTF-8', p);
      break;
    }
  }
  return end;
};

const checkBytes: BodyCheck = (buf, pos) => {
  const p = checkLength(buf, pos);
  return p + varintValue;
};

export function compileBodyCheck(type: avro.Type): BodyCheck {
  return compile(type, new Map());
}

function compile(type: avro.Type, seen: Map<avro.Type, BodyCheck>): BodyCheck {
  const known = seen.get(type);
  if (known) return known;
  // Named types may be recursive: register an indirection before compiling the body.
  let body: BodyCheck = () => 0;
  seen.set(type, (buf, pos) => body(buf, pos));
  body = build(type, seen);
  seen.set(type, body);
  return body;
}

function build(type: avro.Type, seen: Map<avro.Type, BodyCheck>): BodyCheck {
  const t = type as avro.Type & Record<string, unknown>;
  const name = type.typeName;
  if (name.startsWith('logical:')) return compile(t.underlyingType as avro.Type, seen);
  if (name.startsWith('union:')) {
    const branches = (t.types as avro.Type[]).map((b) => compile(b, seen));
    return (buf, pos) => {
      const p = varint(buf, pos, 10);
      const branch = branches[varintValue];
      if (!branch) throw new MalformedBody(`union branch ${varintValue} does not exist`, pos);
      return branch(buf, p);
    };
  }
  switch (name) {
    case 'null':
      return (_buf, pos) => pos;
    case 'boolean':
      return (buf, pos) => {
        need(buf, pos, 1);
        if (buf[pos]! > 1) throw new MalformedBody(`boolean byte ${buf[pos]}`, pos);
        return pos + 1;
      };
    case 'int':
      return (buf, pos) => {
        const p = varint(buf, pos, 5);
        if (varintValue > 2147483647 || varintValue < -2147483648) throw new MalformedBody('int out of range', pos);
        return p;
      };
    case 'long':
      return (buf, pos) => varint(buf, pos, 10);
    case 'float':
      return (buf, pos) => need(buf, pos, 4);
    case 'double':
      return (buf, pos) => need(buf, pos, 8);
    case 'bytes':
      return checkBytes;
    case 'string':
      return checkString;
    case 'fixed': {
      const size = t.size as number;
      return (buf, pos) => need(buf, pos, size);
    }
    case 'enum': {
      const count = (t.symbols as string[]).length;
      return (buf, pos) => {
        const p = varint(buf, pos, 10);
        if (varintValue < 0 || varintValue >= count) throw new MalformedBody(`enum index ${varintValue} out of range`, pos);
        return p;
      };
    }
    case 'array': {
      const items = t.itemsType as avro.Type;
      return blocks(compile(items, seen), minWidth(items, new Set()));
    }
    case 'map': {
      const values = t.valuesType as avro.Type;
      const value = compile(values, seen);
      return blocks((buf, pos) => value(buf, checkString(buf, pos)), 1 + minWidth(values, new Set()));
    }
    case 'record':
    case 'error': {
      const fields = (t.fields as { name: string; type: avro.Type }[]).map((f) => ({
        name: f.name,
        check: compile(f.type, seen),
      }));
      return (buf, pos) => {
        let p = pos;
        for (const field of fields) {
          try {
            p = field.check(buf, p);
          } catch (err) {
            if (err instanceof MalformedBody) throw new MalformedBody(`${field.name}: ${err.message}`, err.at);
            throw err;
          }
        }
        return p;
      };
    }
    default:
      throw new Error(`cannot check Avro type ${name}`);
  }
}

/** Array/map blocks: a count (negative: followed by the block's byte size), until a 0 count. */
function blocks(item: BodyCheck, itemWidth: number): BodyCheck {
  return (buf, pos) => {
    let p = pos;
    let total = 0;
    for (;;) {
      p = varint(buf, p, 10);
      let count = varintValue;
      if (count === 0) return p;
      let blockEnd = -1;
      if (count < 0) {
        count = -count;
        p = checkLength(buf, p);
        blockEnd = p + varintValue;
      }
      total += count;
      if (total > MAX_ITEMS || count * itemWidth > buf.length - p) {
        throw new MalformedBody(`block of ${count} items cannot fit in the ${buf.length - p} bytes left`, p);
      }
      for (let i = 0; i < count; i += 1) p = item(buf, p);
      if (blockEnd >= 0 && p !== blockEnd) throw new MalformedBody('block size does not match its items', p);
    }
  };
}

/** Fewest bytes any value of `type` encodes to. */
function minWidth(type: avro.Type, visiting: Set<avro.Type>): number {
  const t = type as avro.Type & Record<string, unknown>;
  const name = type.typeName;
  if (name.startsWith('logical:')) return minWidth(t.underlyingType as avro.Type, visiting);
  if (name.startsWith('union:')) return 1;
  switch (name) {
    case 'null':
      return 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    case 'fixed':
      return t.size as number;
    case 'record':
    case 'error': {
      if (visiting.has(type)) return 0;
      visiting.add(type);
      const sum = (t.fields as { type: avro.Type }[]).reduce((n, f) => n + minWidth(f.type, visiting), 0);
      visiting.delete(type);
      return sum;
    }
    default:
      return 1;
  }
}
