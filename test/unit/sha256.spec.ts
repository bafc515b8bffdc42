import { createHash } from 'node:crypto';
import { sha256Hex } from '../../src/domain/sha256';

describe('sha256Hex (the body hash stored with every ledger row)', () => {
  it('is createHash("sha256") over the UTF-8 bytes, in hex — stored hashes keep matching', () => {
    for (const text of ['', 'tenant-0', 'tab\there', 'ünïcödé ✓ 𝄞 雪', '\u0000\u0001', 'x'.repeat(100_000)]) {
      expect(sha256Hex(text)).toBe(createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex'));
    }
  });

  it('a known vector', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
