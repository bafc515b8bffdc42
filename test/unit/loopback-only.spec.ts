import fs from 'node:fs';
import path from 'node:path';

// Tests and benchmarks send traffic only to 127.0.0.0/8 (or to hosts in network namespaces a test
// creates itself). Looking up this machine's own interface addresses is how a test ends up
// connecting beyond loopback, so no test or benchmark may do it.

const ROOT = path.resolve(__dirname, '..', '..');

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return /\.(ts|js|sh)$/.test(e.name) ? [rel] : [];
  });
}

describe('tests and benchmarks stay on loopback', () => {
  const files = [...sources('test'), ...sources('bench')].filter((f) => f !== path.join('test', 'unit', 'loopback-only.spec.ts'));

  it('no test or benchmark looks up the machine’s network interfaces', () => {
    expect(files.length).toBeGreaterThan(20);
    expect(files.filter((f) => /networkInterfaces\s*\(/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')))).toEqual([]);
  });

  it('no test or benchmark names a non-loopback IPv4 address to connect to', () => {
    const offenders: string[] = [];
    for (const f of files) {
      const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
      for (const m of text.matchAll(/(?:https?:\/\/|host:\s*['"]|['"])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?=[:'"/])/g)) {
        const ip = m[1]!;
        // 127.0.0.0/8 is loopback; 0.0.0.0 is only ever a bind address (HTTP_HOST), never a destination.
        if (!ip.startsWith('127.') && ip !== '0.0.0.0') offenders.push(`${f}: ${ip}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
