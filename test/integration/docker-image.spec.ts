/**
 * No Docker engine here: the final image of the Dockerfile is assembled in a temporary directory
 * from its own instructions (each COPY of the final stage; the deps stage's `npm ci` run as
 * written; dist/ from `npm run build`, as the build stage makes it), then the CLI runs from it.
 */
import { execFileSync, execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/cli';
import { copyParts, parseDockerfile } from '../helpers/dockerfile';

const stages = parseDockerfile(fs.readFileSync(path.join(PROJECT_ROOT, 'Dockerfile'), 'utf8'));
const final = stages[stages.length - 1]!;

/** Runs a stage's COPY (from the context) and RUN instructions in `dir`; returns what it took. */
function runStage(name: string, dir: string): void {
  const stage = stages.find((s) => s.name === name);
  if (!stage) throw new Error(`no stage ${name}`);
  for (const i of stage.instructions) {
    if (i.op === 'COPY') {
      const c = copyParts(i.args);
      if (c.from) throw new Error(`stage ${name} copies from ${c.from}: not simulated`);
      for (const s of c.sources) fs.cpSync(path.join(PROJECT_ROOT, s), path.join(dir, c.dest.endsWith('/') ? path.basename(s) : c.dest), { recursive: true });
    } else if (i.op === 'RUN') {
      // The npm cache is already warm on this machine: use it rather than the network.
      execSync(i.args, { cwd: dir, stdio: 'pipe', env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' } });
    }
  }
}

describe('the Docker image, assembled without Docker', () => {
  let dir: string;
  let image: string;
  const measured: Record<string, number> = {};

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-image-'));
    image = path.join(dir, 'app');
    fs.mkdirSync(image);
    const t = Date.now();
    for (const i of final.instructions) {
      if (i.op !== 'COPY') continue;
      const c = copyParts(i.args);
      const dest = path.join(image, c.dest.replace(/^\.\/?/, ''));
      for (const s of c.sources) {
        const target = c.dest.endsWith('/') ? path.join(dest, path.basename(s)) : dest;
        if (c.from === null) fs.cpSync(path.join(PROJECT_ROOT, s), target, { recursive: true });
        else if (c.from === 'build' && s === '/app/dist') fs.cpSync(path.join(PROJECT_ROOT, 'dist'), target, { recursive: true });
        else {
          const stageDir = path.join(dir, c.from);
          if (!fs.existsSync(stageDir)) {
            fs.mkdirSync(stageDir);
            runStage(c.from, stageDir);
          }
          fs.cpSync(path.join(stageDir, path.relative('/app', s)), target, { recursive: true });
        }
      }
    }
    measured.assembleMs = Date.now() - t;
    measured.nodeModulesMB = Math.round(Number(execFileSync('du', ['-sm', path.join(image, 'node_modules')], { encoding: 'utf8' }).split('\t')[0]));
  }, 240_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`docker image simulation: ${JSON.stringify(measured)}\n`);
  });

  const cli = (args: string[]) =>
    execFileSync(process.execPath, ['bin/meterline', ...args], { cwd: image, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_ENV: 'production', HOME: image } });

  it('holds production dependencies only, without the embedded ClickHouse engine or sources', () => {
    expect(fs.existsSync(path.join(image, 'node_modules', 'kafkajs'))).toBe(true);
    for (const absent of ['chdb', 'jest', 'typescript', '@swc']) expect(fs.existsSync(path.join(image, 'node_modules', absent))).toBe(false);
    for (const absent of ['src', 'test', 'tsconfig.json', 'tsconfig.build.json']) expect(fs.existsSync(path.join(image, absent))).toBe(false);
  });

  it('runs the CLI: --help, and the schema check from the shipped schemas', () => {
    expect(cli(['--help'])).toMatch(/Usage: meterline/);
    expect(cli(['schemas', 'check'])).toMatch(/all compatible/);
  });
});
