/**
 * Alerts reach Alertmanager and stay on until resolved, with real binaries (Debian's prometheus
 * and prometheus-alertmanager; skipped loudly without them): a worker-shaped /metrics (the real
 * registry) reports one failed push; Prometheus evaluates ops/prometheus/alerts.yml (with `for`
 * shortened) and sends to an Alertmanager running ops/alertmanager/alertmanager.yml (timings
 * shortened, a webhook receiver added to each receiver). The page routes to `meterline-pages`;
 * settling the push (the gauge back to 0) sends "resolved". Everything listens on 127.0.0.1 only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { createMetrics } from '../../src/runtime/metrics';
import { PROJECT_ROOT } from '../helpers/cli';
import { freePort } from '../helpers/prometheus';
import { waitFor } from '../helpers/wait';

const ALERTMANAGER = 'prometheus-alertmanager';
const have = (bin: string) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
const available = have('prometheus') && have(ALERTMANAGER);
if (!available) process.stderr.write('\n*** SKIPPING alert delivery: prometheus / prometheus-alertmanager not installed (apt-get install -y prometheus prometheus-alertmanager) ***\n\n');

interface Notification {
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: { status: string; labels: Record<string, string> }[];
}

function listen(handler: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(handler);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

function startProcess(bin: string, args: string[], readyUrl: string): Promise<ChildProcess> {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  return waitFor(
    `${bin} ready`,
    async () => {
      if (child.exitCode !== null) throw new Error(`${bin} exited ${child.exitCode}: ${stderr}`);
      return (await fetch(readyUrl).catch(() => null))?.ok === true;
    },
    30_000,
    200,
  ).then(() => child);
}

async function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

(available ? describe : describe.skip)('alert delivery through Alertmanager', () => {
  let dir: string;
  let worker: http.Server;
  let receiver: http.Server;
  let alertmanager: ChildProcess | undefined;
  let prometheus: ChildProcess | undefined;
  const notifications: Notification[] = [];
  const metrics = createMetrics({ defaultMetrics: false });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-alerting-'));
    const w = await listen((req, res) => {
      void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
    });
    worker = w.server;
    const r = await listen((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        notifications.push(JSON.parse(body) as Notification);
        res.writeHead(200).end();
      });
    });
    receiver = r.server;

    // Alertmanager: the shipped routing, with a webhook on every receiver and test-sized timings.
    const am = YAML.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'ops', 'alertmanager', 'alertmanager.yml'), 'utf8')) as {
      route: Record<string, unknown> & { routes?: Record<string, unknown>[] };
      receivers: Record<string, unknown>[];
    };
    for (const route of [am.route, ...(am.route.routes ?? [])]) Object.assign(route, { group_wait: '1s', group_interval: '1s' });
    for (const rcv of am.receivers) rcv.webhook_configs = [{ url: `http://127.0.0.1:${r.port}/`, send_resolved: true }];
    fs.writeFileSync(path.join(dir, 'alertmanager.yml'), YAML.stringify(am));
    const amPort = await freePort();
    alertmanager = await startProcess(
      ALERTMANAGER,
      [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'am')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address='],
      `http://127.0.0.1:${amPort}/-/ready`,
    );

    // Prometheus: the shipped alert rules (`for` shortened) and alerting block, pointed at the processes above.
    const rules = YAML.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'ops', 'prometheus', 'alerts.yml'), 'utf8')) as { groups: { rules: Record<string, unknown>[] }[] };
    for (const rule of rules.groups.flatMap((g) => g.rules)) if (rule.for) rule.for = '2s';
    fs.writeFileSync(path.join(dir, 'alerts.yml'), YAML.stringify(rules));
    const prom = YAML.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'ops', 'prometheus', 'prometheus.yml'), 'utf8')) as {
      global: Record<string, string>;
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    prom.global = { scrape_interval: '1s', evaluation_interval: '1s' };
    prom.alerting.alertmanagers[0]!.static_configs[0]!.targets = [`127.0.0.1:${amPort}`];
    prom.scrape_configs.find((j) => j.job_name === 'meterline')!.static_configs[0]!.targets = [`127.0.0.1:${w.port}`];
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify(prom));
    const promPort = await freePort();
    prometheus = await startProcess(
      'prometheus',
      [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'prom')}`, `--web.listen-address=127.0.0.1:${promPort}`],
      `http://127.0.0.1:${promPort}/-/ready`,
    );
  }, 60_000);

  afterAll(async () => {
    await stopProcess(prometheus);
    await stopProcess(alertmanager);
    worker?.close();
    receiver?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const failedPushes = (status: 'firing' | 'resolved') =>
    notifications.find((n) => n.alerts.some((a) => a.labels.alertname === 'MeterlineStripeFailures' && a.status === status));

  it('pages for a failed push until it is settled, then sends resolved', async () => {
    metrics.pushesFailed.set(1);
    await waitFor('a firing MeterlineStripeFailures notification', () => failedPushes('firing') !== undefined, 60_000, 200);
    expect(failedPushes('firing')).toMatchObject({ receiver: 'meterline-pages', status: 'firing' });
    expect(failedPushes('firing')!.alerts[0]!.labels).toMatchObject({ severity: 'page', job: 'meterline' });
    // Still firing while the ledger says so: no "resolved" arrives on its own.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(failedPushes('resolved')).toBeUndefined();

    metrics.pushesFailed.set(0);
    await waitFor('a resolved MeterlineStripeFailures notification', () => failedPushes('resolved') !== undefined, 60_000, 200);
    expect(failedPushes('resolved')!.receiver).toBe('meterline-pages');
  }, 120_000);
});
