import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { hasPromtool, promtool } from '../helpers/prometheus';

/** The alert rules and scrape config are valid for Prometheus, and every alert's unit tests pass. */
const OPS = path.resolve(__dirname, '..', '..', 'ops', 'prometheus');
interface Panel {
  targets?: { expr: string }[];
  panels?: Panel[];
}

const describeIf = hasPromtool('ops/prometheus checks') ? describe : describe.skip;

describeIf('ops/prometheus: promtool', () => {
  it('alerts.yml passes `promtool check rules`', () => {
    const r = promtool(['check', 'rules', path.join(OPS, 'alerts.yml')]);
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it('alerts.test.yml passes `promtool test rules` (firing and quiet cases for every alert)', () => {
    const r = promtool(['test', 'rules', path.join(OPS, 'alerts.test.yml')]);
    expect(r.output).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it("every Grafana dashboard query is valid PromQL (the dashboard's variables filled in)", () => {
    const dashboard = JSON.parse(fs.readFileSync(path.resolve(OPS, '..', 'grafana', 'dashboards', 'meterline.json'), 'utf8')) as { panels: Panel[] };
    const exprs = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const filled = exprs.map((e) => e.replaceAll('$__rate_interval', '1m').replaceAll('$job', 'meterline').replaceAll('$instance', '.*'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-dashboard-rules-'));
    try {
      const file = path.join(dir, 'dashboard-queries.yml');
      fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: filled.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
      const r = promtool(['check', 'rules', file]);
      expect(r.output).toContain(`SUCCESS: ${filled.length} rules found`);
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prometheus.yml passes `promtool check config`, alert rules included', () => {
    const r = promtool(['check', 'config', path.join(OPS, 'prometheus.yml')]);
    expect(r.output).toContain('SUCCESS: 1 rule files found');
    expect(r.status).toBe(0);
  });
});

/** Debian's prometheus-alertmanager package provides amtool; skipped (loudly) without it. */
const hasAmtool = spawnSync('amtool', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasAmtool) process.stderr.write('\n*** SKIPPING ops/alertmanager check: amtool not installed (apt-get install -y prometheus-alertmanager) ***\n\n');

(hasAmtool ? describe : describe.skip)('ops/alertmanager: amtool', () => {
  it('alertmanager.yml passes `amtool check-config`', () => {
    const r = spawnSync('amtool', ['check-config', path.resolve(OPS, '..', 'alertmanager', 'alertmanager.yml')], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });
});
