import fs from 'node:fs';
import path from 'node:path';
import { copyParts, parseDockerfile, type Stage } from '../helpers/dockerfile';

const ROOT = path.resolve(__dirname, '..', '..');
const stages = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const final = stages[stages.length - 1]!;
const runs = (s: Stage) => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
const copies = (s: Stage) => s.instructions.filter((i) => i.op === 'COPY').map((i) => copyParts(i.args));
const stageNamed = (name: string) => stages.find((s) => s.name === name);

describe('the Dockerfile', () => {
  it('is multi-stage: the final image is built from the results of earlier stages', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(copies(final).some((c) => c.from !== null)).toBe(true);
  });

  it('installs dependencies with npm ci from the lock file, never npm install', () => {
    const all = stages.flatMap(runs);
    expect(all.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(all.filter((r) => /\bnpm (install|i)\b/.test(r))).toEqual([]);
  });

  it('caches the dependency layer: only package.json and the lock file are copied before npm ci', () => {
    for (const stage of stages) {
      const at = stage.instructions.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
      if (at < 0) continue;
      const before = stage.instructions.slice(0, at).filter((i) => i.op === 'COPY').map((i) => copyParts(i.args));
      expect(before.flatMap((c) => c.sources).sort()).toEqual(['package-lock.json', 'package.json']);
      const sourcesAt = stage.instructions.findIndex((i) => i.op === 'COPY' && copyParts(i.args).sources.includes('src'));
      if (sourcesAt >= 0) expect(sourcesAt).toBeGreaterThan(at);
    }
  });

  it('puts only production dependencies in the final image', () => {
    const modules = copies(final).find((c) => c.sources.some((s) => s.endsWith('node_modules')));
    expect(modules?.from).toBeTruthy();
    const from = stageNamed(modules!.from!)!;
    expect(runs(from).find((r) => /\bnpm ci\b/.test(r))).toMatch(/--omit=dev\b/);
    expect(runs(final).filter((r) => /\bnpm\b/.test(r))).toEqual([]);
  });

  it('ships no sources, TypeScript configs or tests in the final image', () => {
    const shipped = copies(final).flatMap((c) => c.sources.map((s) => path.basename(s)));
    for (const s of shipped) expect(s).not.toMatch(/^(src|test|bench|tsconfig.*\.json|\.)$|\.ts$/);
    expect(shipped).toEqual(expect.arrayContaining(['node_modules', 'dist', 'schemas']));
  });

  it('runs with NODE_ENV=production as a non-root user', () => {
    const env = final.instructions.filter((i) => i.op === 'ENV').map((i) => i.args);
    expect(env.some((e) => /^NODE_ENV[= ]production$/.test(e))).toBe(true);
    const users = final.instructions.map((i, n) => ({ ...i, n })).filter((i) => i.op === 'USER');
    const user = users[users.length - 1];
    expect(user?.args).toBeDefined();
    expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
    const entry = final.instructions.findIndex((i) => i.op === 'ENTRYPOINT' || i.op === 'CMD');
    expect(user!.n).toBeLessThan(entry);
  });
});
