/**
 * What the npm package ships and needs (`npm run build` first): a coherent file list, and the
 * embedded ClickHouse engine (chdb, ~540 MB) optional, with a clear message when it is missing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT, runCli } from '../helpers/cli';

const HIDE_CHDB = path.join(PROJECT_ROOT, 'test', 'helpers', 'hide-chdb.js');

describe('the npm package', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    license: string;
    bin: Record<string, string>;
    main: string;
    types: string;
    dependencies: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
  let files: string[];

  beforeAll(() => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  }, 60_000);

  it('ships an Apache-2.0 LICENSE, as package.json declares', () => {
    expect(pkg.license).toBe('Apache-2.0');
    expect(files).toContain('LICENSE');
    expect(fs.readFileSync(path.join(PROJECT_ROOT, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
  });

  it('ships every bin with the code it runs, and no launcher whose code stays behind', () => {
    for (const bin of Object.values(pkg.bin)) expect(files).toContain(bin);
    expect(files).not.toContain('bin/meterline-bench');
    expect(files.filter((f) => f.startsWith('bench/') || f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining([pkg.main, pkg.types, 'dist/cli/main.js', 'schemas/usage-event.v2.avsc']));
  });

  it('does not force the embedded ClickHouse engine on its users: chdb is an optional peer', () => {
    expect(pkg.dependencies.chdb).toBeUndefined();
    expect(pkg.peerDependenciesMeta?.chdb?.optional).toBe(true);
  });
});

describe('without the chdb package', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-nochdb-'));
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('embedded mode says how to get it, in one line', async () => {
    const r = await runCli(['migrate'], { env: { METERLINE_DATA_DIR: dataDir, NODE_OPTIONS: `--require ${HIDE_CHDB}` } });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('embedded ClickHouse needs the chdb package: npm install chdb, or set CLICKHOUSE_URL to use a ClickHouse server');
  });

  it('commands that need no ClickHouse still run', async () => {
    const r = await runCli(['sample', '-n', '2'], { env: { METERLINE_DATA_DIR: dataDir, NODE_OPTIONS: `--require ${HIDE_CHDB}` } });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
  });
});
